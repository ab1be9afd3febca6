/**
 * Revoking certificates (DESIGN §5, RFC 5280 §5.3.1): one transaction finds the certificate by
 * issuer and serial, writes or updates its revocations row and appends the audit record. A
 * certificateHold can later become a permanent revocation, or be released with removeFromCRL,
 * after which the certificate leaves the next CRL (and may be revoked again).
 *
 * An end-entity certificate is looked up in `certificates`; an issuing-CA certificate (revoked by
 * the root, listed on the ARL) in `certificate_authorities`.
 *
 * Every path that changes a status (CLI, the IA revocation worker for console and emergency
 * requests) goes through revokeCertificate, and it marks the certificate's pre-signed OCSP
 * response unusable in the same transaction (src/ocsp/presigned-state.ts): responders sign live
 * until it is re-signed. Re-signing and the CRL follow after commit (src/ia/status-after-revocation.ts).
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { invalidatePresignedResponse } from "../ocsp/presigned-state.ts";
import { mirrorRevocation } from "../pipeline/certificate-lifecycle.ts";
import { canonicalSerialHex } from "../pki/serial.ts";
import type { Actor } from "../audit/actor.ts";
import type { CrlReason } from "../pki/crl.ts";

/** Reasons an operator may give (RFC 5280 §5.3.1); removeFromCRL releases a certificateHold. */
export const REVOCATION_REASONS = [
  "unspecified",
  "keyCompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  "privilegeWithdrawn",
  "removeFromCRL",
] as const satisfies readonly CrlReason[];
export type RevocationReason = (typeof REVOCATION_REASONS)[number];
/** Only a CA certificate can be revoked for cACompromise (the root revoking an issuing CA). */
const CA_ONLY_REASONS = ["cACompromise"] as const;

/** Why a revocation was refused; `message` carries English then Japanese. */
export type RevocationErrorCode = "UNKNOWN_CA" | "UNKNOWN_SERIAL" | "ALREADY_REVOKED" | "BAD_REASON" | "NOT_ON_HOLD" | "BAD_DATE" | "BAD_SERIAL";

/** A refused revocation request: nothing was written. */
export class RevocationError extends Error {
  constructor(
    readonly code: RevocationErrorCode,
    english: string,
    japanese: string,
  ) {
    super(`${english} / ${japanese}`);
    this.name = "RevocationError";
  }
}

export interface RevocationRequest {
  /** Issuer CA name (`hpki ca list`). */
  caName: string;
  /** Serial number in hex; case, colons, spaces and leading zero octets do not matter. */
  serialHex: string;
  reason: string;
  /** invalidityDate (RFC 5280 §5.3.2): when the key is known or suspected compromised; not in the future. */
  invalidityDate?: Date;
}

/** What happened: a new revocation, a hold, a hold made permanent, or a hold released. */
export interface RevocationOutcome {
  caName: string;
  serialHex: string;
  reason: RevocationReason | "cACompromise";
  action: "revoked" | "held" | "hold-converted" | "hold-released";
  revokedAt: Date;
  invalidityDate: Date | null;
  /** "end-entity" for a subscriber certificate, "ca" for an issuing-CA certificate (ARL). */
  subject: "end-entity" | "ca";
}

/**
 * Revokes (or holds, or releases) the certificate `req.serialHex` issued by `req.caName`, in one
 * transaction with its audit record ("certificate.revoked" | "certificate.held" |
 * "certificate.hold-converted" | "certificate.hold-released"). `now` is injectable for tests.
 * @throws RevocationError UNKNOWN_CA, BAD_SERIAL, UNKNOWN_SERIAL (no issued certificate with that
 *   serial from that CA), BAD_REASON, BAD_DATE (invalidityDate in the future or invalid),
 *   ALREADY_REVOKED, NOT_ON_HOLD (removeFromCRL without an active hold). Nothing is written then.
 */
export async function revokeCertificate(db: Knex, req: RevocationRequest, by: Actor, now: () => Date = () => new Date()): Promise<RevocationOutcome> {
  const serialHex = normaliseSerialHex(req.serialHex);
  const at = now();
  if (req.invalidityDate && (Number.isNaN(req.invalidityDate.getTime()) || req.invalidityDate.getTime() > at.getTime())) {
    throw new RevocationError("BAD_DATE", "invalidityDate must be a valid date that is not in the future", "無効日（invalidityDate）は未来でない正しい日時を指定してください");
  }
  return db.transaction(async (trx) => {
    // FOR SHARE: a CRL generator (FOR UPDATE on this row) either sees this change or starts after
    // it, and updated_at below is read from the database clock after the lock (crls.revocations_as_of).
    const ca = await trx("certificate_authorities").where({ name: req.caName }).forShare().first("id", "name");
    if (!ca) throw new RevocationError("UNKNOWN_CA", `no CA named "${req.caName}" (see \`hpki ca list\`)`, `CA「${req.caName}」は存在しません`);
    const target = await findTarget(trx, Number(ca.id), serialHex);
    if (!target) {
      throw new RevocationError("UNKNOWN_SERIAL", `CA "${req.caName}" has issued no certificate with serial ${serialHex}`,
        `CA「${req.caName}」はシリアル番号 ${serialHex} の証明書を発行していません`);
    }
    const reason = checkReason(req.reason, target.subject);
    const existing = await trx("revocations").where(target.column, target.id).forUpdate().first();
    const held = existing && existing.reason === "certificateHold" && existing.released_at == null;
    const active = existing && existing.released_at == null;
    let action: RevocationOutcome["action"];
    let revokedAt = at;
    let invalidityDate = req.invalidityDate ?? null;
    if (reason === "removeFromCRL") {
      if (!held) {
        throw new RevocationError("NOT_ON_HOLD", `serial ${serialHex} is not on hold (certificateHold): removeFromCRL only releases a hold`,
          `シリアル番号 ${serialHex} は一時停止（certificateHold）中ではありません`);
      }
      await trx("revocations").where({ id: existing.id }).update({ released_at: at, updated_at: trx.raw("clock_timestamp()") });
      action = "hold-released";
      revokedAt = new Date(existing.revoked_at);
      invalidityDate = existing.invalidity_date ? new Date(existing.invalidity_date) : null;
    } else if (active && !(held && reason !== "certificateHold")) {
      throw new RevocationError("ALREADY_REVOKED", `serial ${serialHex} is already revoked (${existing.reason})`,
        `シリアル番号 ${serialHex} は既に失効しています（${existing.reason}）`);
    } else if (held) {
      // Hold made permanent: the certificate has been unusable since the hold, so revocationDate stays.
      revokedAt = new Date(existing.revoked_at);
      await trx("revocations").where({ id: existing.id }).update({ reason, invalidity_date: invalidityDate, actor: by.actor, updated_at: trx.raw("clock_timestamp()") });
      action = "hold-converted";
    } else {
      const row = {
        ca_id: ca.id,
        serial_hex: serialHex,
        serial: Buffer.from(serialHex, "hex"),
        reason,
        revoked_at: at,
        invalidity_date: invalidityDate,
        actor: by.actor,
        not_after: target.notAfter,
        released_at: null,
        updated_at: trx.raw("clock_timestamp()"),
      };
      // A released hold keeps its row: revoking again reuses it.
      if (existing) await trx("revocations").where({ id: existing.id }).update(row);
      else await trx("revocations").insert({ ...row, [target.column]: target.id });
      action = reason === "certificateHold" ? "held" : "revoked";
    }
    // Same transaction: no pre-signed OCSP response made before this change is served after it.
    if (target.subject === "end-entity") await invalidatePresignedResponse(trx, Number(ca.id), serialHex);
    const objectId = `${req.caName}:${serialHex}`;
    const details = { reason, invalidityDate: invalidityDate?.toISOString() };
    // An end-entity certificate's lifecycle (issue 13 §1) follows in the same transaction; its
    // transition writes the audit record. Otherwise (CA certificates, rows it cannot explain) audit here.
    const mirrored = target.subject === "end-entity" && await mirrorRevocation(trx, target.id, action, reason, by, { objectId, details });
    if (!mirrored) {
      await appendAudit(trx, [{
        ...by,
        action: `certificate.${action}`,
        objectType: target.subject === "ca" ? "ca-certificate" : "certificate",
        objectId,
        details,
      }]);
    }
    return { caName: req.caName, serialHex, reason, action, revokedAt, invalidityDate, subject: target.subject };
  });
}

/**
 * Uppercase hex of the minimal magnitude with an even number of digits (the form stored in
 * serial_hex), from hex with optional colons, spaces or 0x. @throws RevocationError BAD_SERIAL.
 */
export function normaliseSerialHex(input: string): string {
  const hex = canonicalSerialHex(input);
  if (hex === null) throw new RevocationError("BAD_SERIAL", `"${input}" is not a serial number in hex`, `「${input}」は16進のシリアル番号ではありません`);
  return hex;
}

interface Target {
  column: "certificate_id" | "subject_ca_id";
  id: number;
  notAfter: Date;
  subject: "end-entity" | "ca";
}

async function findTarget(trx: Knex.Transaction, caId: number, serialHex: string): Promise<Target | null> {
  const cert = await trx("certificates").where({ ca_id: caId, serial_hex: serialHex, status: "issued" }).forUpdate().first("id", "not_after");
  if (cert) return { column: "certificate_id", id: Number(cert.id), notAfter: new Date(cert.not_after), subject: "end-entity" };
  const sub = await trx("certificate_authorities").where({ parent_id: caId, serial_hex: serialHex }).forUpdate().first("id", "not_after");
  if (sub) return { column: "subject_ca_id", id: Number(sub.id), notAfter: new Date(sub.not_after), subject: "ca" };
  return null;
}

function checkReason(reason: string, subject: Target["subject"]): RevocationOutcome["reason"] {
  const allowed: readonly string[] = subject === "ca" ? [...REVOCATION_REASONS, ...CA_ONLY_REASONS] : REVOCATION_REASONS;
  if (!allowed.includes(reason)) {
    throw new RevocationError("BAD_REASON", `unknown revocation reason "${reason}" (one of: ${allowed.join(", ")})`,
      `失効理由「${reason}」は使用できません（${allowed.join(", ")}）`);
  }
  return reason as RevocationOutcome["reason"];
}
