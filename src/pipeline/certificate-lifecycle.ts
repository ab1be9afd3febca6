/**
 * The certificate lifecycle after issuance (issue 13 §1; RFC 5280 §5.3.1 reasons; HPKI CP §4.9)
 * as data, run by lifecycle.ts on `certificates.lifecycle_state`:
 *
 *   issued ──hold (certificateHold)──▶ on_hold ──release (removeFromCRL)──▶ issued
 *   issued ──revoke──▶ revoked           on_hold ──convert_hold──▶ revoked
 *   issued | on_hold ──supersede (reason superseded: renewal, reissue)──▶ superseded
 *   issued | on_hold ──expire (notAfter passed)──▶ expired
 *
 * The revocations table stays the truth for CRLs and OCSP; this state mirrors it in the same
 * transaction (src/ia/revocation.ts revokeCertificate is the only path that revokes) and adds
 * expiry, so the card page shows where each certificate stands. Events go to certificate_events.
 * An issuance intent (status 'intent') has lifecycle_state 'issued' from the start: it counts only
 * once status is 'issued'.
 */
import type { Knex } from "knex";
import { applyLifecycle, type Lifecycle, type LifecycleActor, type LifecycleOptions, type LifecycleRole, type LifecycleStep } from "./lifecycle.ts";

export const CERTIFICATE_STATES = ["issued", "on_hold", "revoked", "expired", "superseded"] as const;
export type CertificateState = (typeof CERTIFICATE_STATES)[number];

// Revocation is requested and approved in the consoles (revocation requests, two-person rule) and
// carried out by the IA's worker or the CLI; the lifecycle records what revokeCertificate did.
const REVOKERS: LifecycleRole[] = ["ia_operator", "ia", "system"];

export const certificateLifecycle = {
  entity: "certificate",
  entityJa: "証明書",
  table: "certificates",
  stateColumn: "lifecycle_state",
  keyColumn: "id",
  historyTable: "certificate_events",
  historyColumn: "certificate_id",
  states: CERTIFICATE_STATES,
  stateJa: { issued: "有効", on_hold: "一時停止", revoked: "失効", expired: "有効期限切れ", superseded: "更新により失効" },
  stateEn: { issued: "valid", on_hold: "on hold", revoked: "revoked", expired: "expired", superseded: "superseded" },
  transitions: {
    hold: { from: ["issued"], to: "on_hold", roles: REVOKERS, event: "certificate.held", labelJa: "一時停止", labelEn: "hold" },
    release: { from: ["on_hold"], to: "issued", roles: REVOKERS, event: "certificate.hold-released", labelJa: "一時停止解除", labelEn: "release hold" },
    revoke: { from: ["issued", "expired"], to: "revoked", roles: REVOKERS, event: "certificate.revoked", labelJa: "失効", labelEn: "revoke" },
    convert_hold: { from: ["on_hold"], to: "revoked", roles: REVOKERS, event: "certificate.hold-converted", labelJa: "失効（一時停止から）", labelEn: "revoke held" },
    supersede: { from: ["issued", "on_hold", "expired"], to: "superseded", roles: REVOKERS, event: "certificate.superseded", labelJa: "更新による失効", labelEn: "supersede" },
    expire: { from: ["issued", "on_hold"], to: "expired", roles: REVOKERS, event: "certificate.expired", labelJa: "期限切れ", labelEn: "expire" },
  },
} as const satisfies Lifecycle<CertificateState, string>;

export type CertificateTransition = keyof typeof certificateLifecycle.transitions;

/**
 * The transition that mirrors a revocation outcome of revokeCertificate: "held", "hold-released",
 * "revoked" or "hold-converted" with its reason (superseded → supersede).
 */
export function transitionForRevocation(action: "revoked" | "held" | "hold-converted" | "hold-released", reason: string): CertificateTransition {
  if (action === "held") return "hold";
  if (action === "hold-released") return "release";
  if (reason === "superseded") return "supersede";
  return action === "hold-converted" ? "convert_hold" : "revoke";
}

/** Takes certificate transition `name` on certificate `id` inside `trx` (history + audit). */
export function applyCertificateTransition(
  trx: Knex.Transaction,
  name: CertificateTransition,
  id: number,
  actor: LifecycleActor,
  opts: LifecycleOptions = {},
): Promise<LifecycleStep> {
  return applyLifecycle(trx, certificateLifecycle, name, id, actor, opts);
}

/**
 * Mirrors a revocation of revokeCertificate onto certificate `id` (same transaction): takes the
 * matching transition with its history row and audit record and returns true — or, when the
 * certificate is not in a state that transition leaves from (a row the lifecycle does not explain)
 * or the actor's role is not a revoker, changes nothing and returns false, and the caller audits
 * the revocation itself.
 */
export async function mirrorRevocation(
  trx: Knex.Transaction,
  id: number,
  action: "revoked" | "held" | "hold-converted" | "hold-released",
  reason: string,
  actor: LifecycleActor,
  opts: LifecycleOptions,
): Promise<boolean> {
  const name = transitionForRevocation(action, reason);
  const t = certificateLifecycle.transitions[name];
  const row = await trx("certificates").where({ id }).first("lifecycle_state");
  if (!row || !(t.from as readonly string[]).includes(row.lifecycle_state) || !(t.roles as readonly string[]).includes(actor.role)) return false;
  await applyCertificateTransition(trx, name, id, actor, opts);
  return true;
}

/**
 * Marks issued (or held) certificates whose notAfter has passed as expired (one transaction,
 * certificate_events rows and one audit record per certificate). @returns how many.
 */
export async function expireCertificates(db: Knex, actor: LifecycleActor, now: Date = new Date()): Promise<number> {
  return db.transaction(async (trx) => {
    const due = await trx("certificates").where({ status: "issued" }).whereIn("lifecycle_state", ["issued", "on_hold"]).where("not_after", "<", now)
      .orderBy("id").forUpdate().select("id");
    for (const c of due) await applyCertificateTransition(trx, "expire", Number(c.id), actor, { details: { at: now.toISOString() } });
    return due.length;
  });
}
