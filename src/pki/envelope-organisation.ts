/**
 * Envelopes to facilities (組織暗号, issue 15 §7): the same AuthEnvelopedData as sealEnvelope
 * (src/pki/envelope.ts, RFC 5083 + AES-256-GCM), whose content key is also encapsulated to each
 * facility's Umbral organisation key in our OtherRecipientInfo (src/pki/pre-recipient.ts). Person
 * readers get the usual kari/ktri RecipientInfos, so one envelope may go to both.
 *
 * Opening as a designee: the box's capsule fragment yields the content key (src/pki/pre.ts
 * openReencrypted), then decryptContent authenticates and decrypts.
 */
import { randomBytes } from "node:crypto";
import { authEnvelopedContentInfo } from "./envelope-asn1.ts";
import { encryptContent } from "./envelope-content.ts";
import { recipientInfoFor } from "./envelope-recipients.ts";
import { encapsulate } from "./pre.ts";
import { encodePreRecipientInfo } from "./pre-recipient.ts";

/** RecipientInfo ori [4] IMPLICIT OtherRecipientInfo { oriType, oriValue } (RFC 5652 §6.2.5) for a facility key. */
export async function organisationRecipientInfo(cek: Uint8Array, facilityKey: Uint8Array): Promise<Buffer> {
  const { capsule, encryptedKey } = await encapsulate(facilityKey, cek);
  return encodePreRecipientInfo({ facilityKey, capsule, encryptedKey });
}

/**
 * Seals `content` for person certificates `readers` and for facilities by their Umbral
 * organisation keys `facilityKeys` (at least one reader in all). Returns the DER ContentInfo.
 */
export async function sealForOrganisations(content: Uint8Array, readers: readonly Uint8Array[], facilityKeys: readonly Uint8Array[]): Promise<Uint8Array> {
  if (readers.length + facilityKeys.length === 0) throw new Error("an envelope needs at least one reader");
  const cek = randomBytes(32);
  try {
    const recipientInfos = [
      ...readers.map((r) => recipientInfoFor(cek, r)),
      ...(await Promise.all(facilityKeys.map((k) => organisationRecipientInfo(cek, k)))),
    ];
    return authEnvelopedContentInfo({ recipientInfos, rest: encryptContent(cek, content) });
  } finally {
    cek.fill(0);
  }
}
