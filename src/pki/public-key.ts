/**
 * Public-key and signature-algorithm description (RFC 5280 §4.1.2.7 SubjectPublicKeyInfo,
 * RFC 3279 / RFC 4055 / RFC 5480 / RFC 5758 / RFC 8410 algorithm identifiers). Key details come
 * from node:crypto's own SPKI parser, so nothing here interprets key material by hand.
 */
import { createPublicKey } from "node:crypto";

/** Signature algorithm OIDs → names (OpenSSL spelling). */
export const SIGNATURE_ALGORITHM_NAMES: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.10": "rsassaPss",
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
  "1.2.840.10040.4.3": "dsa-with-SHA1",
  "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
  "1.3.101.112": "ED25519",
  "1.3.101.113": "ED448",
};

/** node:crypto / OpenSSL curve names → NIST names used in policies (RFC 5480 §2.1.1.1). */
const CURVE_NAMES: Readonly<Record<string, string>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

/** What a SubjectPublicKeyInfo holds. `algorithm` is "RSA", "EC", or node's key type otherwise. */
export interface PublicKeyDescription {
  algorithm: "RSA" | "EC" | string;
  /** RSA modulus length in bits; for EC, the curve's field size (256 for P-256). */
  bits?: number;
  /** RSA public exponent. */
  publicExponent?: number;
  /** EC named curve: "P-256", "P-384", "P-521", or node's name for other curves. */
  namedCurve?: string;
}

/**
 * Describes a DER SubjectPublicKeyInfo. Throws node:crypto's error when the SPKI does not parse
 * (e.g. corrupted key, unknown algorithm); callers wrap it in their own error type.
 */
export function describePublicKey(spkiDer: Uint8Array): PublicKeyDescription {
  const key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
      return { algorithm: "RSA", bits: d.modulusLength, publicExponent: d.publicExponent === undefined ? undefined : Number(d.publicExponent) };
    case "ec": {
      const curve = d.namedCurve ?? "unknown";
      const bits = { prime256v1: 256, secp384r1: 384, secp521r1: 521 }[curve];
      return { algorithm: "EC", namedCurve: CURVE_NAMES[curve] ?? curve, ...(bits ? { bits } : {}) };
    }
    default:
      return { algorithm: (key.asymmetricKeyType ?? "unknown").toUpperCase() };
  }
}
