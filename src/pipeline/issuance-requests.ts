/**
 * Issuance requests (発行依頼): the RA creates one for an approved application, a second person
 * approves it, the IA claims approved requests under a lease (issuance-lease.ts: FOR UPDATE SKIP
 * LOCKED, a fencing token, a heartbeat — one worker per request), personalises the card and
 * reports the outcome. A failed request keeps its error and can be retried, or its application
 * withdrawn; the others go on.
 */
import type { Knex } from "knex";
import { applicationMachine } from "./application.ts";
import { appendAudit } from "../audit/log.ts";
import { ConflictError, ForbiddenError } from "./errors.ts";
import { fenced, ISSUANCE_LEASE_MS, leaseHolder, NEW_LEASE_SQL, type IssuanceLease } from "./issuance-lease.ts";
import { applyTransition, type Row } from "./machine.ts";
import { auditActor, type Operator } from "./operator.ts";
import { issuanceRequestMachine } from "./records.ts";

/** Certificate profiles a request asks for, from the application's choices (enc: issue 15 §1). */
export function requestedProfiles(app: Record<string, unknown>): string[] {
  return [...(app.request_sign ? ["sign"] : []), ...(app.request_auth ? ["auth-person"] : []), ...(app.request_enc ? ["enc"] : [])];
}

/**
 * Creates the issuance request of an ra_approved application (state requested; the application
 * becomes issuance_requested). @throws ConflictError when the application is not ra_approved.
 */
export async function createIssuanceRequest(db: Knex, op: Operator, applicationId: number): Promise<Row> {
  return db.transaction(async (trx) => {
    const app = await applyTransition(trx, applicationMachine, "request_issuance", applicationId, op);
    const [ir] = (await trx("issuance_requests")
      .insert({ application_id: app.id, state: "requested", profiles: JSON.stringify(requestedProfiles(app)), created_by: op.id })
      .returning("*")) as Row[];
    return ir;
  });
}

/** Approves an issuance request: ra_approver, never its creator (two-person rule). */
export async function approveIssuanceRequest(db: Knex, op: Operator, requestId: number): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, issuanceRequestMachine, "approve", requestId, op, {
    patch: { approved_by: op.id, approved_at: trx.fn.now() },
  }));
}

/** What the IA needs to personalise one card: the request, its applicant and the worker's lease. */
export interface ClaimedRequest {
  request: Row;
  application: Row;
  lease: IssuanceLease;
  /** True when the request was taken over from a worker whose lease had expired. */
  retaken: boolean;
}

/**
 * Claims up to `limit` requests for this IA worker, oldest first, under FOR UPDATE SKIP LOCKED:
 * approved ones (state issuing, audited "issuance_request.claimed") and "issuing" ones whose lease
 * has expired — their worker died or stalled (audited "issuance_request.resumed" with the previous
 * holder). Each gets a new lease (see issuance-lease.ts) and attempts + 1. Only what can be taken
 * is returned: a request under a live lease of another worker is never counted.
 * @throws ForbiddenError for roles other than ia_operator.
 */
export async function claimIssuanceRequests(
  db: Knex,
  op: Operator,
  limit: number,
  opts: { leaseMs?: number; holder?: string } = {},
): Promise<ClaimedRequest[]> {
  if (op.role !== "ia_operator") throw new ForbiddenError(`role ${op.role} may not issue`, "発行する権限がありません");
  const leaseMs = opts.leaseMs ?? ISSUANCE_LEASE_MS;
  const holder = opts.holder ?? leaseHolder();
  return db.transaction(async (trx) => {
    const rows = (await trx("issuance_requests")
      .where({ state: "approved" })
      .orWhere((w) => w.where({ state: "issuing" }).where((x) => x.whereNull("lease_expires_at").orWhereRaw("lease_expires_at <= now()")))
      .orderBy("id").limit(limit).forUpdate().skipLocked()
      .select("id", "state", "lease_holder", "lease_expires_at", "card_label")) as Row[];
    const out: ClaimedRequest[] = [];
    for (const row of rows) {
      const id = Number(row.id);
      const retaken = row.state === "issuing";
      if (retaken) {
        await appendAudit(trx, [{
          ...auditActor(op), action: "issuance_request.resumed", objectType: "issuance_request", objectId: String(id),
          details: { card: row.card_label ?? null, previousHolder: row.lease_holder ?? null, leaseExpiredAt: row.lease_expires_at ?? null, holder },
        }]);
      } else {
        await applyTransition(trx, issuanceRequestMachine, "claim", id, op, { details: { holder } });
      }
      const updated = await trx.raw(
        `UPDATE issuance_requests SET attempts = attempts + 1, updated_at = now(), ${NEW_LEASE_SQL} WHERE id = ? RETURNING *`,
        [leaseMs / 1000, holder, id],
      );
      const request = updated.rows[0] as Row;
      const application = (await trx("applications").where({ id: request.application_id }).first()) as Row;
      out.push({ request, application, lease: { requestId: id, token: Number(request.lease_token), leaseMs }, retaken });
    }
    return out;
  });
}

/**
 * Records a personalised card: request issued, application issued, card bound to the applicant —
 * only while `lease` holds (else LeaseLostError, nothing written). The lease ends here.
 */
export async function completeIssuanceRequest(
  db: Knex,
  op: Operator,
  lease: IssuanceLease,
  result: { cardLabel: string; certificates: { caName: string; serialHex: string; profile: string }[] },
): Promise<Row> {
  return fenced(db, lease, async (trx) => {
    const ir = await applyTransition(trx, issuanceRequestMachine, "complete", lease.requestId, op, {
      patch: { card_label: result.cardLabel, issued_at: trx.fn.now(), last_error: null, lease_expires_at: null },
      details: { card: result.cardLabel, certificates: result.certificates },
    });
    await applyTransition(trx, applicationMachine, "issue", Number(ir.application_id), op, { details: { card: result.cardLabel } });
    return ir;
  });
}

/**
 * Records a failed personalisation with its error (never a PIN) while `lease` holds (else
 * LeaseLostError); the request can be retried or its application withdrawn.
 */
export async function failIssuanceRequest(db: Knex, op: Operator, lease: IssuanceLease, error: string): Promise<Row> {
  return fenced(db, lease, (trx) => applyTransition(trx, issuanceRequestMachine, "fail", lease.requestId, op, {
    patch: { last_error: error.slice(0, 1000), lease_expires_at: null },
    details: { error: error.slice(0, 300) },
  }));
}

/**
 * Withdraws the issuance request of an application being withdrawn, inside the caller's
 * transaction (DESIGN §3 withdraw): allowed while the request is requested, approved or failed —
 * never while a worker holds it ("issuing") or once issued. Its card, if one was bound, is
 * released: "void" when nothing of this request is left on it, else "inspect" (a person checks
 * and wipes it before any reuse). Certificates already issued for the request are listed in the
 * audit record for revocation. No request: nothing to do.
 * @throws ConflictError when the request is issuing or issued.
 */
export async function withdrawIssuanceRequestOf(trx: Knex.Transaction, op: Operator, applicationId: number): Promise<void> {
  const ir = (await trx("issuance_requests").where({ application_id: applicationId }).forUpdate().first()) as Row | undefined;
  if (!ir) return;
  if (!["requested", "approved", "failed"].includes(ir.state)) {
    throw new ConflictError(
      `issuance request ${ir.id} is ${ir.state}; an application can be withdrawn while its issuance request is requested, approved or failed`,
      `発行依頼 ${ir.id} は「${issuanceRequestMachine.stateJa[ir.state as keyof typeof issuanceRequestMachine.stateJa] ?? ir.state}」のため、申込を取り下げられません（発行失敗・承認待ち・発行待ちのときに取り下げられます）`,
    );
  }
  const live = await trx("issuance_card_keys").where({ request_id: ir.id }).whereNotIn("step", ["removed", "abandoned"]).select("profile", "step", "card_label");
  const certificates = await trx("certificates").where("request_key", "like", `ir:${ir.id}:%`).select("serial_hex", "status", "profile");
  const card = (ir.card_label as string | null) ?? null;
  const cardStatus = live.length || certificates.length ? "inspect" : "void";
  await trx("issuance_requests").where({ id: ir.id }).update({ state: "withdrawn", version: Number(ir.version) + 1, updated_at: trx.fn.now(), lease_expires_at: null });
  if (card) await trx("cards").where({ label: card }).update({ status: cardStatus });
  await appendAudit(trx, [{
    ...auditActor(op), action: "issuance_request.withdrawn", objectType: "issuance_request", objectId: String(ir.id),
    details: {
      from: ir.state, card, cardStatus: card ? cardStatus : null,
      keysOnCard: live.map((k) => k.profile),
      certificatesToRevoke: certificates.filter((c) => c.status === "issued").map((c) => ({ serial: c.serial_hex, profile: c.profile })),
    },
  }]);
}

/** Puts a failed request back in the queue. */
export async function retryIssuanceRequest(db: Knex, op: Operator, requestId: number): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, issuanceRequestMachine, "retry", requestId, op));
}
