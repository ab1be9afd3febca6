/**
 * Content encryption of our envelopes (RFC 5083 §2.1, RFC 5084 §3.2): AES-256-GCM under a fresh
 * 96-bit nonce with a 16-octet tag as mac and no authAttrs, by node:crypto in one pass over the
 * content. The ciphertext comes back as its own chunk so the envelope copies it once, into its DER.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { ENVELOPE_OID, encryptedContentInfo, octetStringDer } from "./envelope-asn1.ts";

const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

/**
 * Encrypts `content` under the 32-octet content-encryption key `cek`.
 * @returns authEncryptedContentInfo (id-data, id-aes256-GCM with GCMParameters) followed by the
 *   mac OCTET STRING, as chunks whose concatenation is their DER (the `rest` of authEnvelopedContentInfo).
 */
export function encryptContent(cek: Uint8Array, content: Uint8Array): Uint8Array[] {
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", cek, nonce, { authTagLength: GCM_TAG_BYTES });
  const ciphertext = cipher.update(content);
  const tail = cipher.final(); // empty for GCM, a stream mode: no second copy of the ciphertext
  const chunks = encryptedContentInfo(ENVELOPE_OID.aes256Gcm, nonce, tail.length ? Buffer.concat([ciphertext, tail]) : ciphertext);
  return [...chunks, octetStringDer(cipher.getAuthTag())];
}
