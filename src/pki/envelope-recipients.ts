/**
 * One RecipientInfo per reader (issue 15 §2): the content-encryption key wrapped for a certificate —
 * ECDH ephemeral-static with the X9.63 KDF and AES key wrap for EC P-256 (RFC 5753 §3.1,
 * dhSinglePass-stdDH-sha256kdf-scheme + id-aes256-wrap) or RSAES-OAEP with SHA-256 for RSA (RFC 8017
 * §7.1, RFC 4055 §4) — and back. Every primitive is node:crypto's (OpenSSL), called synchronously:
 * sealing to n readers is n × (ephemeral key, ECDH, one SHA-256, one key wrap) and a few hundred
 * octets of DER, with no promise or thread-pool hop per reader; sealEnvelope may hand the ECDH
 * half to its helper thread first (src/pki/key-agreement-pool.ts) and pass the results in.
 */
import { constants, publicEncrypt } from "node:crypto";
import { aesKeyUnwrap, aesKeyWrap } from "./aes-key-wrap.ts";
import { bytesEqual } from "./der-cursor.ts";
import {
  ENVELOPE_OID, EnvelopeError, KDF_HASH_BY_SCHEME, WRAP_KEY_BYTES, eccCmsSharedInfo, keyAgreeRecipientInfo, keyTransRecipientInfo, readAlgorithm, readOaepHash,
  type HashName, type ReadRecipientInfo, type RecipientIdentifier,
} from "./envelope-asn1.ts";
import type { RecipientKeyAgent } from "./envelope-key-agent.ts";
import { agreeKey, type KeyAgreement } from "./key-agreement-pool.ts";
import { describePublicKey, publicKeyFromSpki } from "./public-key.ts";
import { x963Kdf, type X963Hash } from "./x963-kdf.ts";
import { readRecipientCertificate, type RecipientCertificateFields } from "./recipient-certificate.ts";

/** How a sealed RecipientInfo names the reader (RFC 5652 §6.2.1): issuer+serial (default) or subjectKeyIdentifier. */
export type RecipientIdentifierChoice = "issuerAndSerialNumber" | "subjectKeyIdentifier";

/** The reader's key as a certificate states it, read once per seal. */
export type RecipientKey =
  | { kind: "ec"; spki: Uint8Array; certificate: RecipientCertificateFields; /** uncompressed point 04‖X‖Y (SEC 1 §2.3.3) */ point: Buffer }
  | { kind: "rsa"; spki: Uint8Array; certificate: RecipientCertificateFields };

/** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 octets: 00 04 X Y) } header (RFC 5480 §2). */
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex");
/** node:crypto digest names of the KDF hashes (RFC 5753 §7.1.4). */
const NODE_HASH: Readonly<Record<HashName, X963Hash>> = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };
/** What we seal with: dhSinglePass-stdDH-sha256kdf-scheme, id-aes256-wrap, no ukm (RFC 5753 §3.1.1). */
const SEAL_SCHEME = ENVELOPE_OID.dhSinglePassStdDhSha256Kdf;
const SEAL_WRAP = ENVELOPE_OID.aes256Wrap;
/** ECC-CMS-SharedInfo of every seal (RFC 5753 §7.2): the same octets for each reader, so encoded once. */
const SEAL_SHARED_INFO = eccCmsSharedInfo(SEAL_WRAP, WRAP_KEY_BYTES[SEAL_WRAP]);

/** keyUsage bits (RFC 5280 §4.2.1.3) of a certificate, or undefined when the extension is absent. */
function keyUsageBits(cert: RecipientCertificateFields): number | undefined {
  const ku = cert.extensions.get("2.5.29.15");
  if (!ku) return undefined;
  // extnValue is the BIT STRING TLV: 03 len unused b0 [b1].
  const v = ku.value;
  return ((v[3] ?? 0) << 8) | (v[4] ?? 0);
}

/** The subjectKeyIdentifier (RFC 5280 §4.2.1.2) of a certificate, or undefined. */
export function subjectKeyIdentifierOf(cert: RecipientCertificateFields): Uint8Array | undefined {
  const ext = cert.extensions.get("2.5.29.14");
  // extnValue is the OCTET STRING TLV of KeyIdentifier (short form length for ≤127 octets).
  return ext ? ext.value.subarray(2) : undefined;
}

/**
 * Reads a recipient certificate and checks it can receive a content key: EC P-256 with keyUsage
 * keyAgreement, or RSA with keyUsage keyEncipherment (RFC 5280 §4.2.1.3, RFC 5753 §3, RFC 8551
 * §4.4.2), when keyUsage is present. @throws EnvelopeError "BAD_RECIPIENT_CERTIFICATE".
 */
export function recipientKeyOf(der: Uint8Array): RecipientKey {
  let certificate: RecipientCertificateFields;
  try {
    certificate = readRecipientCertificate(der);
  } catch (err) {
    throw new EnvelopeError(`recipient certificate does not parse: ${(err as Error).message}`, "BAD_RECIPIENT_CERTIFICATE");
  }
  const ku = keyUsageBits(certificate);
  // An uncompressed P-256 key has exactly this DER prefix (RFC 5480 §2): no key object needed.
  const key = bytesEqual(certificate.spki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX) && certificate.spki.length === 91
    ? { algorithm: "EC", namedCurve: "P-256" }
    : describePublicKey(certificate.spki);
  if (key.algorithm === "EC") {
    if (key.namedCurve !== "P-256") throw new EnvelopeError(`recipient key is EC ${key.namedCurve}; only P-256 is supported`, "BAD_RECIPIENT_CERTIFICATE");
    if (ku !== undefined && !(ku & 0x0800)) throw new EnvelopeError("recipient EC certificate lacks keyUsage keyAgreement", "BAD_RECIPIENT_CERTIFICATE");
    return { kind: "ec", spki: certificate.spki, certificate, point: ecPointOf(certificate.spki) };
  }
  if (key.algorithm === "RSA") {
    if (ku !== undefined && !(ku & 0x2000)) throw new EnvelopeError("recipient RSA certificate lacks keyUsage keyEncipherment", "BAD_RECIPIENT_CERTIFICATE");
    return { kind: "rsa", spki: certificate.spki, certificate };
  }
  throw new EnvelopeError(`recipient key algorithm ${key.algorithm} cannot receive a content key`, "BAD_RECIPIENT_CERTIFICATE");
}

/** The identifier a RecipientInfo uses for `cert`. @throws EnvelopeError when SKI is asked for and absent. */
export function recipientIdentifierOf(cert: RecipientCertificateFields, choice: RecipientIdentifierChoice = "issuerAndSerialNumber"): RecipientIdentifier {
  if (choice === "issuerAndSerialNumber") return { type: "issuerAndSerialNumber", issuer: cert.issuer, serialNumber: cert.serial };
  const keyIdentifier = subjectKeyIdentifierOf(cert);
  if (!keyIdentifier) throw new EnvelopeError("recipient certificate has no subjectKeyIdentifier", "BAD_RECIPIENT_CERTIFICATE");
  return { type: "subjectKeyIdentifier", keyIdentifier };
}

/** Whether `rid` names `cert` (RFC 5652 §6.2.1: issuer Name and serial, or subjectKeyIdentifier). */
export function ridMatches(rid: RecipientIdentifier, cert: RecipientCertificateFields): boolean {
  if (rid.type === "issuerAndSerialNumber") return bytesEqual(rid.issuer, cert.issuer) && bytesEqual(rid.serialNumber, cert.serial);
  const ski = subjectKeyIdentifierOf(cert);
  return ski !== undefined && bytesEqual(rid.keyIdentifier, ski);
}

/** KEK = X9.63 KDF(Z, ECC-CMS-SharedInfo) (RFC 5753 §7.2) for the key wrap `wrapOid`, with the peer's ukm if any. */
function keyEncryptionKey(z: Uint8Array, hash: HashName, wrapOid: string, ukm?: Uint8Array): Buffer {
  const kekBytes = WRAP_KEY_BYTES[wrapOid];
  return x963Kdf(NODE_HASH[hash], z, eccCmsSharedInfo(wrapOid, kekBytes, ukm), kekBytes);
}

/** The subjectPublicKey point of an EC SubjectPublicKeyInfo (RFC 5480 §2.2): the BIT STRING content. */
function ecPointOf(spki: Uint8Array): Buffer {
  // SEQUENCE { AlgorithmIdentifier, BIT STRING }: an uncompressed P-256 point is the last 65 octets.
  const tail = Buffer.from(spki.subarray(spki.length - 65));
  if (tail[0] === 0x04 && spki[spki.length - 66] === 0x00) return tail;
  const jwk = publicKeyFromSpki(spki).export({ format: "jwk" });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
}

/**
 * The RecipientInfo (DER) carrying `cek` to the holder of `certificate` (DER, or as read by
 * {@link recipientKeyOf}): kari with a fresh P-256 ephemeral key per reader (RFC 5753 §3.1.1:
 * Z = ECDH x-coordinate, KEK = X9.63-KDF-SHA-256(Z, SharedInfo), encryptedKey = AES-256 key wrap),
 * or ktri with RSAES-OAEP-SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.1). An EC reader's key agreement
 * may come done (`agreement`, from startKeyAgreements in src/pki/key-agreement-pool.ts); its Z is zeroed here.
 */
export function recipientInfoFor(cek: Uint8Array, certificate: Uint8Array | RecipientKey, choice?: RecipientIdentifierChoice, agreement?: KeyAgreement): Buffer {
  const key = certificate instanceof Uint8Array ? recipientKeyOf(certificate) : certificate;
  const rid = recipientIdentifierOf(key.certificate, choice);
  if (key.kind === "ec") {
    const { ephemeralPoint, z } = agreement ?? agreeKey(key.point);
    const kek = x963Kdf("sha256", z, SEAL_SHARED_INFO, 32);
    z.fill(0);
    const encryptedKey = aesKeyWrap(kek, cek);
    kek.fill(0);
    return keyAgreeRecipientInfo({ ephemeralPoint, scheme: SEAL_SCHEME, wrapOid: SEAL_WRAP, rid, encryptedKey });
  }
  const publicKey = publicKeyFromSpki(key.spki);
  const encryptedKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, cek);
  return keyTransRecipientInfo({ rid, hash: "SHA-256", encryptedKey });
}

/** The encrypted key addressed to `cert` in `ri`, or undefined. */
export function encryptedKeyFor(ri: ReadRecipientInfo, cert: RecipientCertificateFields): Uint8Array | undefined {
  if (ri.kind === "ktri") return ridMatches(ri.rid, cert) ? ri.encryptedKey : undefined;
  if (ri.kind === "kari") return ri.recipientEncryptedKeys.find((k) => ridMatches(k.rid, cert))?.encryptedKey;
  return undefined;
}

/**
 * Recovers the content-encryption key from the RecipientInfo `ri` addressed to the agent's
 * certificate (RFC 5652 §6.2.1/§6.2.2 decryption side): the agent does the private-key step.
 * @throws EnvelopeError "UNSUPPORTED_ALGORITHM", "KEY_AGENT" (agent lacks the operation or fails),
 *   "AUTHENTICATION_FAILED" (key unwrap integrity).
 */
export async function contentKeyFrom(ri: ReadRecipientInfo, encryptedKey: Uint8Array, agent: RecipientKeyAgent): Promise<Uint8Array> {
  if (ri.kind === "ktri") {
    const alg = ri.keyEncryptionAlgorithm;
    if (alg.oid !== ENVELOPE_OID.rsaesOaep) {
      throw new EnvelopeError(`key transport ${alg.oid} is not RSAES-OAEP (PKCS#1 v1.5 key transport is refused, RFC 8017 §7.2 note)`, "UNSUPPORTED_ALGORITHM");
    }
    if (!agent.rsaOaepDecrypt) throw new EnvelopeError("the key agent cannot decrypt RSA-OAEP", "KEY_AGENT");
    const hash = readOaepHash(alg.parameters);
    try {
      return await agent.rsaOaepDecrypt(encryptedKey, hash);
    } catch (err) {
      throw new EnvelopeError(`RSA-OAEP decryption of the content key failed: ${(err as Error).message}`, "KEY_AGENT");
    }
  }
  if (ri.kind !== "kari") throw new EnvelopeError("unsupported RecipientInfo type", "UNSUPPORTED_ALGORITHM");
  const hash = KDF_HASH_BY_SCHEME[ri.keyEncryptionAlgorithm.oid];
  if (!hash) throw new EnvelopeError(`key agreement ${ri.keyEncryptionAlgorithm.oid} is not a dhSinglePass-stdDH scheme we read`, "UNSUPPORTED_ALGORITHM");
  const wrap = ri.keyEncryptionAlgorithm.parameters;
  const wrapOid = wrap ? readAlgorithm(wrap, "KeyWrapAlgorithm").oid : undefined;
  if (!wrapOid || !WRAP_KEY_BYTES[wrapOid]) throw new EnvelopeError(`key wrap ${wrapOid} is not AES key wrap`, "UNSUPPORTED_ALGORITHM");
  if (!ri.ephemeralPoint || ri.originatorAlgorithm?.oid !== ENVELOPE_OID.idEcPublicKey) {
    throw new EnvelopeError("key agreement without an ephemeral EC originator key (RFC 5753 §3.1.1)", "UNSUPPORTED_ALGORITHM");
  }
  if (!agent.ecdh) throw new EnvelopeError("the key agent cannot do ECDH", "KEY_AGENT");
  let z: Uint8Array;
  try {
    z = await agent.ecdh(ri.ephemeralPoint);
  } catch (err) {
    throw new EnvelopeError(`ECDH with the recipient key failed: ${(err as Error).message}`, "KEY_AGENT");
  }
  const kek = keyEncryptionKey(z, hash, wrapOid, ri.ukm);
  const cek = aesKeyUnwrap(kek, encryptedKey);
  kek.fill(0);
  if (!cek) throw new EnvelopeError("content key unwrap failed: wrong key or tampered RecipientInfo (RFC 3394 integrity check)", "AUTHENTICATION_FAILED");
  return cek;
}
