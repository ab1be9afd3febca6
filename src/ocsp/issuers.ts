/**
 * Our CAs as OCSP sees them: for each CA, issuerNameHash and issuerKeyHash under SHA-1 and
 * SHA-256 (RFC 6960 §4.1.1), computed once from the CA certificate.
 */
import type { Knex } from "knex";
import type { CertIdHashAlgorithm } from "../pki/ocsp-request.ts";
import { certificateSubjectAndSpki, issuerHashes } from "../pki/ocsp-response.ts";
import { toBuffer } from "../store/rows.ts";

export const CERT_ID_HASHES: readonly CertIdHashAlgorithm[] = ["sha1", "sha256"];

export interface OcspIssuer {
  caId: number;
  caName: string;
  hashes: Record<CertIdHashAlgorithm, { issuerNameHash: Buffer; issuerKeyHash: Buffer }>;
}

/** Every CA in certificate_authorities with its CertID hashes. */
export async function loadOcspIssuers(db: Knex): Promise<OcspIssuer[]> {
  const rows = await db("certificate_authorities").select("id", "name", "certificate");
  return rows.map((r) => {
    const { subject, spki } = certificateSubjectAndSpki(toBuffer(r.certificate));
    return {
      caId: Number(r.id),
      caName: r.name,
      hashes: { sha1: issuerHashes("sha1", subject, spki), sha256: issuerHashes("sha256", subject, spki) },
    };
  });
}

/** Lookup key of a CertID's issuer: hash name + issuerNameHash + issuerKeyHash. */
export function issuerKey(hash: CertIdHashAlgorithm, issuerNameHash: Uint8Array, issuerKeyHash: Uint8Array): string {
  return `${hash}:${Buffer.from(issuerNameHash.buffer, issuerNameHash.byteOffset, issuerNameHash.byteLength).toString("hex")}:${Buffer.from(issuerKeyHash.buffer, issuerKeyHash.byteOffset, issuerKeyHash.byteLength).toString("hex")}`;
}
