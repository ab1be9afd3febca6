/**
 * What the box may know of an envelope it cannot open (issue 15 §5–§7), read with the envelope
 * module (src/pki/envelope.ts): that it is a CMS AuthEnvelopedData (RFC 5083 §2.1), how many
 * readers it names, the digest of its encrypted content and mac (a forward must keep them byte for
 * byte, §6), and the organisation recipient (our OtherRecipientInfo, src/pki/pre-recipient.ts)
 * whose capsule the box re-encrypts. Never decrypts.
 */
import { readAuthEnvelopedData } from "../pki/envelope-asn1.ts";
import { EnvelopeError, envelopeSummary, forwardedRecipients } from "../pki/envelope.ts";
import { preRecipientOfInfo, type PreRecipient } from "../pki/pre-recipient.ts";

export interface EnvelopeFacts {
  /** Readers named: one per ktri / kari RecipientEncryptedKey, plus the organisation recipient. */
  recipientCount: number;
  /** SHA-256 over authEncryptedContentInfo and mac (envelopeSummary.contentDigest). */
  contentSha256: Buffer;
  /** The organisation recipient, when the envelope was sent to a facility. */
  organisation?: PreRecipient;
}

/** Refusal of an upload that is not an envelope. */
export class NotAnEnvelopeError extends Error {
  readonly messageJa = "CMS AuthEnvelopedData（暗号化文書）として読めません";
  constructor(detail: string) {
    super(`not a usable CMS AuthEnvelopedData: ${detail}`);
  }
}

/** The organisation recipient among the OtherRecipientInfos, if any. @throws NotAnEnvelopeError on a malformed one. */
function organisationOf(der: Uint8Array): PreRecipient | undefined {
  for (const ri of readAuthEnvelopedData(der).recipientInfos) {
    if (ri.kind !== "other") continue;
    try {
      const r = preRecipientOfInfo(ri.der);
      if (r) return r;
    } catch (e) {
      throw new NotAnEnvelopeError(`organisation recipient: ${(e as Error).message}`);
    }
  }
  return undefined;
}

/** Reads the facts of `der`. @throws NotAnEnvelopeError. */
export function envelopeFacts(der: Uint8Array): EnvelopeFacts {
  try {
    const s = envelopeSummary(der);
    const organisation = organisationOf(der);
    return { recipientCount: s.recipients.length + (organisation ? 1 : 0), contentSha256: Buffer.from(s.contentDigest, "hex"), organisation };
  } catch (e) {
    if (e instanceof EnvelopeError) throw new NotAnEnvelopeError(e.message);
    throw e;
  }
}

/**
 * Checks that `forwarded` is `original` with readers added and nothing else changed (content, mac
 * and every earlier RecipientInfo byte for byte). Returns how many readers were added.
 * @throws NotAnEnvelopeError naming what changed.
 */
export function addedReaders(original: Uint8Array, forwarded: Uint8Array): number {
  try {
    const added = forwardedRecipients(original, forwarded).length;
    const org = (d: Uint8Array) => (organisationOf(d) ? 1 : 0);
    return added + org(forwarded) - org(original);
  } catch (e) {
    if (e instanceof EnvelopeError) throw new NotAnEnvelopeError(e.message);
    throw e;
  }
}
