/**
 * The X.509 signature algorithms hpki-ca accepts when it verifies a signature (CSR proof of
 * possession, certificate paths, CRLs): RSA PKCS #1 v1.5 (RFC 4055 §5) and ECDSA (RFC 5758 §3.2)
 * with SHA-256/384/512. SHA-1 and MD5 are absent on purpose (RFC 9155).
 */
import { OID } from "./oids.ts";

/** Algorithm OID → key type it needs and the node:crypto hash name. */
export const ACCEPTED_SIGNATURE_ALGORITHMS: Readonly<Record<string, { key: "RSA" | "EC"; hash: "sha256" | "sha384" | "sha512" }>> = {
  [OID.sha256WithRSAEncryption]: { key: "RSA", hash: "sha256" },
  "1.2.840.113549.1.1.12": { key: "RSA", hash: "sha384" },
  "1.2.840.113549.1.1.13": { key: "RSA", hash: "sha512" },
  [OID.ecdsaWithSHA256]: { key: "EC", hash: "sha256" },
  "1.2.840.10045.4.3.3": { key: "EC", hash: "sha384" },
  "1.2.840.10045.4.3.4": { key: "EC", hash: "sha512" },
};
