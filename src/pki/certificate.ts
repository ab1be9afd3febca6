/**
 * The outer X.509 Certificate (RFC 5280 §4.1.1) and the signature AlgorithmIdentifiers we use.
 * The tbsCertificate comes from tbs.ts; the signature value comes from the HSM.
 */
import { bitString, derNull, oid, sequence } from "./der.ts";
import { OID } from "./oids.ts";

/** The signature algorithms a CA key may use (RFC 4055 §5, RFC 5758 §3.2). */
export const SIGNATURE_ALGORITHMS = ["sha256WithRSAEncryption", "ecdsa-with-SHA256"] as const;
export type SignatureAlgorithmName = (typeof SIGNATURE_ALGORITHMS)[number];

const ALGORITHM_IDENTIFIERS: Record<SignatureAlgorithmName, Buffer> = {
  // RFC 4055 §5: the parameters of sha256WithRSAEncryption MUST be NULL.
  sha256WithRSAEncryption: sequence(oid(OID.sha256WithRSAEncryption), derNull()),
  // RFC 5758 §3.2: ecdsa-with-SHA256 MUST omit the parameters.
  "ecdsa-with-SHA256": sequence(oid(OID.ecdsaWithSHA256)),
};

/**
 * The DER AlgorithmIdentifier for `alg` (RSA with NULL parameters, ECDSA without). Returns a
 * shared precomputed Buffer: do not mutate it. Throws on an unknown name.
 */
export function algorithmIdentifier(alg: SignatureAlgorithmName): Buffer {
  const der = ALGORITHM_IDENTIFIERS[alg];
  if (!der) throw new Error(`unknown signature algorithm: ${String(alg)}`);
  return der;
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * (RFC 5280 §4.1.1). `tbs` is the tbsCertificate DER, `signatureValue` the raw signature
 * (PKCS#1 v1.5 octets for RSA, the DER Ecdsa-Sig-Value for ECDSA per RFC 5480 §2.2 — convert a
 * PKCS#11 r||s first). Returns the certificate DER.
 */
export function encodeCertificate(tbs: Uint8Array, alg: SignatureAlgorithmName, signatureValue: Uint8Array): Buffer {
  return sequence(tbs, algorithmIdentifier(alg), bitString(signatureValue));
}
