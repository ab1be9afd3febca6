/**
 * Certificate status as OCSP reports it (RFC 6960 §2.2), read from the certificates and
 * revocations tables: good, revoked (revocationTime, revocationReason), or absent (→ unknown).
 * A certificateHold is reported as revoked with reason certificateHold (§2.2); a released hold
 * is good again.
 */
import type { Knex } from "knex";
import { CRL_REASON_CODES, type CrlReason } from "../pki/crl.ts";
import type { OcspCertStatus } from "../pki/ocsp-response.ts";

/** Status of one certificate our CA issued. */
export interface IssuedCertificateStatus {
  serialHex: string;
  status: "good" | "revoked";
  revocationTime: Date | null;
  revocationReason: CrlReason | null;
}

/**
 * Statuses of the issued certificates `serialHexes` (certificates.serial_hex form) of CA `caId`.
 * Serials the CA has not issued are absent from the map (answer: unknown).
 */
export async function certificateStatuses(db: Knex, caId: number, serialHexes: readonly string[]): Promise<Map<string, IssuedCertificateStatus>> {
  const out = new Map<string, IssuedCertificateStatus>();
  if (serialHexes.length === 0) return out;
  const rows = await db("certificates as c")
    .leftJoin("revocations as v", "v.certificate_id", "c.id")
    .where("c.ca_id", caId)
    .where("c.status", "issued")
    .whereIn("c.serial_hex", serialHexes as string[])
    .select("c.serial_hex", "v.reason", "v.revoked_at", "v.released_at");
  for (const r of rows) {
    const revoked = r.reason != null && r.released_at == null;
    out.set(r.serial_hex, {
      serialHex: r.serial_hex,
      status: revoked ? "revoked" : "good",
      revocationTime: revoked ? new Date(r.revoked_at) : null,
      revocationReason: revoked ? (r.reason as CrlReason) : null,
    });
  }
  return out;
}

/** The CertStatus to encode for a status (absent → unknown). */
export function ocspCertStatus(s: IssuedCertificateStatus | undefined): OcspCertStatus {
  if (!s) return { kind: "unknown" };
  if (s.status === "good") return { kind: "good" };
  return { kind: "revoked", revocationTime: s.revocationTime!, revocationReason: CRL_REASON_CODES[s.revocationReason!] };
}
