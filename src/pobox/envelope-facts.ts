/**
 * What the box may know of an envelope it cannot open (issue 15 §5–§7): that it is a CMS
 * AuthEnvelopedData (RFC 5083 §2.1), how many recipient infos it carries, the SHA-256 of its
 * encrypted content (a forward must leave those bytes unchanged, §6), and the organisation
 * recipient (our OtherRecipientInfo, src/pki/pre-recipient.ts) whose capsule the box re-encrypts.
 * Reads the DER only; never decrypts.
 */
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { decodePreRecipient, ID_ORI_UMBRAL, type PreRecipient } from "../pki/pre-recipient.ts";

/** id-ct-authEnvelopedData (RFC 5083 §1.1). */
export const ID_CT_AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23";

export interface EnvelopeFacts {
  /** Recipient infos in the envelope (ktri, kari, … and ori). */
  recipientCount: number;
  /** SHA-256 of the encrypted content octets (authEncryptedContentInfo.encryptedContent). */
  contentSha256: Buffer;
  /** The organisation recipient, when the envelope was sent to a facility. */
  organisation?: PreRecipient;
}

/** Refusal of an upload that is not an envelope. */
export class NotAnEnvelopeError extends Error {
  readonly messageJa = "CMS AuthEnvelopedData（暗号化文書）ではありません";
  constructor(detail: string) {
    super(`not a CMS AuthEnvelopedData: ${detail}`);
  }
}

/** Reads the facts of `der`. @throws NotAnEnvelopeError. */
export function envelopeFacts(der: Uint8Array): EnvelopeFacts {
  const ci = asn1js.fromBER(new Uint8Array(der));
  if (ci.offset === -1 || ci.offset !== der.length) throw new NotAnEnvelopeError("not one DER value");
  const outer = ci.result;
  if (!(outer instanceof asn1js.Sequence) || outer.valueBlock.value.length !== 2) throw new NotAnEnvelopeError("ContentInfo expected");
  const [type, wrapped] = outer.valueBlock.value;
  if (!(type instanceof asn1js.ObjectIdentifier) || type.valueBlock.toString() !== ID_CT_AUTH_ENVELOPED_DATA) throw new NotAnEnvelopeError("content type is not id-ct-authEnvelopedData");
  const inner = (wrapped as asn1js.Constructed).valueBlock?.value?.[0];
  if (!(inner instanceof asn1js.Sequence)) throw new NotAnEnvelopeError("AuthEnvelopedData is not a SEQUENCE");
  const fields = inner.valueBlock.value;
  let i = 1; // version
  if (fields[i]?.idBlock.tagClass === 3 && fields[i].idBlock.tagNumber === 0) i++; // originatorInfo [0]
  const recipients = fields[i++];
  const eci = fields[i];
  if (!(recipients instanceof asn1js.Set) || !(eci instanceof asn1js.Sequence)) throw new NotAnEnvelopeError("recipientInfos / authEncryptedContentInfo missing");
  let content: ArrayBuffer;
  try {
    content = new pkijs.EncryptedContentInfo({ schema: eci }).getEncryptedContent();
  } catch (e) {
    throw new NotAnEnvelopeError(`authEncryptedContentInfo: ${(e as Error).message}`);
  }
  if (content.byteLength === 0) throw new NotAnEnvelopeError("no encrypted content (detached content is not accepted)");
  let organisation: PreRecipient | undefined;
  for (const ri of recipients.valueBlock.value) {
    // ori [4] IMPLICIT OtherRecipientInfo ::= SEQUENCE { oriType OBJECT IDENTIFIER, oriValue ANY }
    if (ri.idBlock.tagClass !== 3 || ri.idBlock.tagNumber !== 4) continue;
    const [oriType, oriValue] = (ri as asn1js.Constructed).valueBlock.value;
    if (!(oriType instanceof asn1js.ObjectIdentifier) || oriType.valueBlock.toString() !== ID_ORI_UMBRAL || !oriValue) continue;
    try {
      organisation = decodePreRecipient(new Uint8Array(oriValue.toBER(false)));
    } catch (e) {
      throw new NotAnEnvelopeError(`organisation recipient: ${(e as Error).message}`);
    }
  }
  return { recipientCount: recipients.valueBlock.value.length, contentSha256: createHash("sha256").update(new Uint8Array(content)).digest(), organisation };
}
