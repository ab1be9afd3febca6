/**
 * When a pre-signed OCSP response (ocsp_responses) may be used — one rule shared by the
 * repository's responder, the static export and the pre-signer (issue 11 §2):
 *
 *   a pre-signed response is current iff nobody invalidated it since it was signed
 *   (invalidated_at IS NULL) AND the status it carries is the certificate's status now
 *   (revocations: none or a released hold → good; otherwise revoked with the same reason and
 *   revocation time, to the second as encoded in GeneralizedTime).
 *
 * The second half makes staleness a property of the lookup, not of each writer: a pre-signer that
 * read "good", then stored its response after a revocation committed, stores a response this rule
 * refuses until it is re-signed.
 *
 * The revocation transaction itself (invalidatePresignedResponse, called by revokeCertificate)
 * sets invalidated_at and raises OCSP_STATUS_CHANNEL so responders drop cached copies on commit.
 */
import type { Knex } from "knex";

/** FROM-clause fragment: ocsp_responses `r` with the certificate's revocations row `v` (if any). */
export const PRESIGNED_FROM_SQL = `ocsp_responses r
  LEFT JOIN revocations v ON v.ca_id = r.ca_id AND v.serial_hex = r.serial_hex AND v.certificate_id IS NOT NULL`;

/** Condition on `r` and `v` (PRESIGNED_FROM_SQL): the pre-signed response is current (module comment). */
export const PRESIGNED_CURRENT_SQL = `(r.invalidated_at IS NULL AND CASE
    WHEN v.id IS NULL OR v.released_at IS NOT NULL THEN r.status = 'good'
    ELSE r.status = 'revoked' AND r.revocation_reason = v.reason
      AND date_trunc('second', r.revocation_time) = date_trunc('second', v.revoked_at) END)`;

/**
 * Postgres NOTIFY channel raised by a revocation transaction (payload "<caId>:<serialHex>"),
 * delivered on commit: repository processes evict their cached copy of that serial.
 */
export const OCSP_STATUS_CHANNEL = "hpki_ocsp_status";

/**
 * Inside a revocation transaction `trx`: marks the pre-signed responses of (caId, serialHex)
 * unusable (invalidated_at, status_changed_at and written_at from the database clock) and raises
 * OCSP_STATUS_CHANNEL. Until the pre-signer re-signs the row, responders sign live and the export
 * removes the file. Returns whether a pre-signed response existed.
 */
export async function invalidatePresignedResponse(trx: Knex.Transaction, caId: number, serialHex: string): Promise<boolean> {
  const n = await trx("ocsp_responses").where({ ca_id: caId, serial_hex: serialHex }).update({
    invalidated_at: trx.raw("clock_timestamp()"),
    status_changed_at: trx.raw("clock_timestamp()"),
    written_at: trx.raw("clock_timestamp()"),
  });
  await trx.raw(`SELECT pg_notify(?, ?)`, [OCSP_STATUS_CHANNEL, `${caId}:${serialHex}`]);
  return n > 0;
}
