/**
 * Issuance requests (発行依頼): the RA creates one for an approved application, a second person
 * approves it, the IA claims approved requests (FOR UPDATE SKIP LOCKED, so several IA workers
 * share the queue without taking the same request), personalises the card and reports the
 * outcome. A failed request keeps its error and can be retried; the others go on.
 */
import type { Knex } from "knex";
import { applicationMachine } from "./application.ts";
import { appendAudit } from "../audit/log.ts";
import { ForbiddenError } from "./errors.ts";
import { applyTransition, type Row } from "./machine.ts";
import { auditActor, type Operator } from "./operator.ts";
import { issuanceRequestMachine } from "./records.ts";

/** Certificate profiles a request asks for, from the application's choices. */
export function requestedProfiles(app: Record<string, unknown>): string[] {
  return [...(app.request_sign ? ["sign"] : []), ...(app.request_auth ? ["auth-person"] : [])];
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

/** What the IA needs to personalise one card: the request and its applicant. */
export interface ClaimedRequest {
  request: Row;
  application: Row;
}

/**
 * Claims up to `limit` approved requests for this IA worker (state issuing, attempts + 1) —
 * FOR UPDATE SKIP LOCKED, oldest first. Requests left in "issuing" by a crashed worker are
 * resumed with `resumable` (issuance onto a card is idempotent per request).
 */
export async function claimIssuanceRequests(db: Knex, op: Operator, limit: number): Promise<ClaimedRequest[]> {
  if (op.role !== "ia_operator") throw new ForbiddenError(`role ${op.role} may not issue`, "発行する権限がありません");
  return db.transaction(async (trx) => {
    const ids = await trx("issuance_requests").where({ state: "approved" }).orderBy("id").limit(limit).forUpdate().skipLocked().select("id");
    const out: ClaimedRequest[] = [];
    for (const { id } of ids) {
      const request = await applyTransition(trx, issuanceRequestMachine, "claim", id, op);
      await trx("issuance_requests").where({ id }).increment("attempts", 1);
      const application = (await trx("applications").where({ id: request.application_id }).first()) as Row;
      out.push({ request, application });
    }
    return out;
  });
}

/** How long a request may sit in "issuing" untouched before another worker may resume it. */
export const ISSUING_STALE_AFTER_MS = 10 * 60_000;

/**
 * Takes over requests left in "issuing" by a worker that stopped: only those untouched for
 * `staleAfterMs` (database clock), so a request another IA process is working on right now is
 * never taken twice; each is re-claimed (updated_at bumped, audited) under FOR UPDATE SKIP LOCKED.
 */
export async function resumableIssuanceRequests(db: Knex, op: Operator, staleAfterMs = ISSUING_STALE_AFTER_MS): Promise<ClaimedRequest[]> {
  if (op.role !== "ia_operator") throw new ForbiddenError(`role ${op.role} may not issue`, "発行する権限がありません");
  return db.transaction(async (trx) => {
    const reqs = (await trx("issuance_requests").where({ state: "issuing" })
      .whereRaw("updated_at < now() - make_interval(secs => ?)", [staleAfterMs / 1000])
      .orderBy("id").forUpdate().skipLocked()) as Row[];
    const out: ClaimedRequest[] = [];
    for (const request of reqs) {
      await trx("issuance_requests").where({ id: request.id }).update({ updated_at: trx.fn.now() });
      await appendAudit(trx, [{
        ...auditActor(op), action: "issuance_request.resumed", objectType: "issuance_request", objectId: String(request.id),
        details: { card: request.card_label ?? null, idleSince: request.updated_at },
      }]);
      out.push({ request, application: (await trx("applications").where({ id: request.application_id }).first()) as Row });
    }
    return out;
  });
}

/** Records a personalised card: request issued, application issued, card bound to the applicant. */
export async function completeIssuanceRequest(
  db: Knex,
  op: Operator,
  requestId: number,
  result: { cardLabel: string; certificates: { caName: string; serialHex: string; profile: string }[] },
): Promise<Row> {
  return db.transaction(async (trx) => {
    const ir = await applyTransition(trx, issuanceRequestMachine, "complete", requestId, op, {
      patch: { card_label: result.cardLabel, issued_at: trx.fn.now(), last_error: null },
      details: { card: result.cardLabel, certificates: result.certificates },
    });
    await applyTransition(trx, applicationMachine, "issue", Number(ir.application_id), op, { details: { card: result.cardLabel } });
    return ir;
  });
}

/** Records a failed personalisation with its error (never a PIN); the request can be retried. */
export async function failIssuanceRequest(db: Knex, op: Operator, requestId: number, error: string): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, issuanceRequestMachine, "fail", requestId, op, {
    patch: { last_error: error.slice(0, 1000) },
    details: { error: error.slice(0, 300) },
  }));
}

/** Puts a failed request back in the queue. */
export async function retryIssuanceRequest(db: Knex, op: Operator, requestId: number): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, issuanceRequestMachine, "retry", requestId, op));
}
