/**
 * The patient side of the medical PO box (issue 15 §8) in PKI terms: the JPKI user-authentication
 * certificate (利用者証明用電子証明書 of the My Number card, issued by J-LIS), the challenge a patient
 * signs with its key, the pseudonym derived from it, and the patient's own encryption certificate.
 *
 * What a real JPKI 利用者証明用 certificate looks like (J-LIS profile, as far as known here; to be
 * confirmed against J-LIS's published profile before production): issuer `C=JP, O=JPKI, OU=JPKI for
 * user authentication, OU=Japan Agency for Local Authority Information Systems`; subject `C=JP,
 * CN=<an issuance string of ~23 characters>` — no name, no address, no 個人番号; RSA-2048,
 * sha256WithRSAEncryption; keyUsage digitalSignature (critical); certificatePolicies
 * 1.2.392.200149.8.5.1.3.30 (**unsure**: taken from a third-party OID list, not from J-LIS's CP);
 * the issuing CA is a self-signed J-LIS root, so the path is root → end entity. Whether an
 * extKeyUsage is present is not known, so none is required.
 *
 * Pure apart from node:crypto; nothing hand-rolled (signatures by node:crypto.verify through
 * path-validation.ts, the pseudonym by node:crypto HMAC).
 */
import { createHash, createHmac } from "node:crypto";
import { encodeCertificate } from "./certificate.ts";
import { selfSignedTbs } from "./cms.ts";
import { OID } from "./oids.ts";
import { verifySignature, type PathValidationPolicy } from "./path-validation.ts";
import { describePublicKey, publicKeyFromSpki } from "./public-key.ts";
import { decodeBasicConstraints, parseCertificate, type ParsedCertificate } from "./x509-parse.ts";

/** certificatePolicies OID of JPKI 利用者証明用電子証明書 (unsure, see the module comment). */
export const JPKI_AUTH_POLICY_OID = "1.2.392.200149.8.5.1.3.30";

/** Path validation of a JPKI authentication certificate: digitalSignature, the JPKI auth policy. */
export const JPKI_AUTH_POLICY: PathValidationPolicy = {
  endEntityPolicy: JPKI_AUTH_POLICY_OID,
  keyUsage: "digitalSignature",
};

const CONTEXT = "hpki-pobox-patient-v1";

/**
 * The bytes a patient signs with the JPKI authentication key: a fixed context, the box's URL, the
 * box's one-time challenge and the SHA-256 of the encryption certificate being registered (empty
 * for a sign-in) — so a signature cannot be replayed elsewhere or carry a swapped key.
 */
export function patientChallengeMessage(p: { box: string; challenge: string; encryptionCertificate?: Uint8Array }): Buffer {
  const key = p.encryptionCertificate ? createHash("sha256").update(p.encryptionCertificate).digest("hex") : "";
  return Buffer.from([CONTEXT, p.box, p.challenge, key].join("\n"), "utf8");
}

/**
 * The signature algorithm OID a JPKI key signs with: sha256WithRSAEncryption for RSA (the card's
 * RSA-2048 key, PKCS #1 v1.5), ecdsa-with-SHA256 for an EC key.
 */
export function challengeSignatureAlgorithm(leaf: ParsedCertificate): string {
  return describePublicKey(leaf.spki).algorithm === "EC" ? OID.ecdsaWithSHA256 : OID.sha256WithRSAEncryption;
}

/** Whether `signature` over `message` verifies with the certificate's key (node:crypto). */
export function challengeSignatureValid(leaf: ParsedCertificate, message: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyFromSpki(leaf.spki);
  return verifySignature(challengeSignatureAlgorithm(leaf), undefined, key, message, signature);
}

/**
 * The patient's pseudonym at this box: HMAC-SHA-256 (RFC 2104) under the box's pseudonym key over
 * the certificate's issuer Name DER and serial number (RFC 5280 §4.1.2.2: unique per issuer), as
 * "PT" + 24 upper-case hex digits (96 bits). Keyed, so a pseudonym shown to a hospital cannot be
 * matched to the JPKI serial (J-LIS's CRL, other services' records) without the box's key.
 */
export function jpkiPseudonym(key: Uint8Array, leaf: ParsedCertificate): string {
  const mac = createHmac("sha256", key).update(CONTEXT).update(Buffer.from([leaf.issuer.length >> 8, leaf.issuer.length & 0xff]))
    .update(leaf.issuer).update(leaf.serial).digest();
  return `PT${mac.subarray(0, 12).toString("hex").toUpperCase()}`;
}

/** Why a patient's encryption certificate is refused. */
export class PatientKeyError extends Error {
  override name = "PatientKeyError";
}

/**
 * Checks a patient's encryption certificate: X.509 v3, EC P-256 key, self-signed with that key
 * (ecdsa-with-SHA256; proof of possession), valid at `at`, not a CA certificate. Its authenticity for senders comes from
 * the box's registration (the JPKI proof), not from the self-signature. @throws PatientKeyError.
 */
export function checkPatientEncryptionCertificate(der: Uint8Array, at: Date): ParsedCertificate {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw new PatientKeyError(`encryption certificate: ${(e as Error).message}`);
  }
  const k = describePublicKey(cert.spki);
  if (k.algorithm !== "EC" || k.namedCurve !== "P-256") throw new PatientKeyError("encryption certificate: the key must be EC P-256");
  const key = publicKeyFromSpki(cert.spki);
  if (!Buffer.from(cert.issuer).equals(Buffer.from(cert.subject)) || !verifySignature(cert.signatureAlgorithm, cert.signatureParameters, key, cert.tbs, cert.signature)) {
    throw new PatientKeyError("encryption certificate: not self-signed with its own key");
  }
  if (at < cert.notBefore || at > cert.notAfter) throw new PatientKeyError("encryption certificate: not valid now");
  const bc = cert.extensions.get(OID.basicConstraints);
  if (bc && decodeBasicConstraints(bc.value).ca) throw new PatientKeyError("encryption certificate: a CA certificate is not an encryption key");
  return cert;
}

/**
 * A patient's encryption certificate for an EC P-256 key: self-signed (RFC 5280 §4.1, selfSignedTbs:
 * CN only, no name of the patient), signed by `sign` (the key's own ECDSA over the tbs) — what
 * senders address with issuerAndSerialNumber and `openssl cms` accepts as a recipient.
 */
export async function patientEncryptionCertificate(p: { spki: Uint8Array; serial: Uint8Array; notBefore: Date; notAfter: Date; sign(tbs: Uint8Array): Promise<Uint8Array> | Uint8Array }): Promise<Buffer> {
  const tbs = selfSignedTbs({ serial: p.serial, commonName: "hpki-pobox patient encryption key", notBefore: p.notBefore, notAfter: p.notAfter, spki: p.spki, alg: "ecdsa-with-SHA256" });
  return encodeCertificate(tbs, "ecdsa-with-SHA256", await p.sign(tbs));
}
