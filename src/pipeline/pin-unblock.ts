/**
 * PIN unblock requests (PINロック解除, issue 13 §2; HPKI CP §3.4/§4.9-style re-identification):
 *
 *   requested ──approve (RA approver, not the requester)──▶ approved ──execute (IA, card present)──▶ done
 *       └──reject (RA)──▶ rejected
 *
 * The holder asks at the LRA desk (face to face: the identity document and the photo checked
 * again, recorded with the request) or at the RA by mail (the documents received, noted). Filing
 * a request for an active card records it as PIN-locked ("reported" by the holder). The unblock
 * itself — SO login and C_InitPIN with the card present, a new PIN mailer — is src/ia/card-pins.ts.
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import { applyCardTransition } from "./card-lifecycle.ts";
import { ConflictError, ForbiddenError, NotFoundError, parseInput, ValidationError } from "./errors.ts";
import { lifecycleActorOf, lockLifecycleRow } from "./lifecycle.ts";
import { cardLifecycle } from "./card-lifecycle.ts";
import { applyTransition, type Machine, type Row } from "./machine.ts";
import { auditActor, isLraRole, type Operator } from "./operator.ts";

export const PIN_UNBLOCK_STATES = ["requested", "approved", "rejected", "done"] as const;
export type PinUnblockState = (typeof PIN_UNBLOCK_STATES)[number];

/** Two-person rule: the approver is not the operator who filed the request. */
function notTheRequester(row: Row, op: Operator): void {
  if (Number(row.requested_by) === op.id) {
    throw new ForbiddenError("the request must be approved by another person than its requester (two-person rule)", "申請者本人は承認できません（二者承認）");
  }
}

export const pinUnblockMachine = {
  entity: "pin_unblock_request",
  entityJa: "PINロック解除申請",
  table: "pin_unblock_requests",
  states: PIN_UNBLOCK_STATES,
  lraColumn: "lra_id",
  numberColumn: "request_no",
  stateJa: { requested: "承認待ち", approved: "承認済（発行局での解除待ち）", rejected: "却下", done: "解除済" },
  transitions: {
    approve: { from: ["requested"], to: "approved", roles: ["ra_approver"], event: "pin_unblock_request.approved", labelJa: "承認", guard: notTheRequester },
    reject: { from: ["requested"], to: "rejected", roles: ["ra_officer", "ra_approver"], event: "pin_unblock_request.rejected", labelJa: "却下" },
    execute: { from: ["approved"], to: "done", roles: ["ia_operator"], event: "pin_unblock_request.executed", labelJa: "ロック解除" },
  },
} as const satisfies Machine<PinUnblockState, string>;

const identitySchema = z.object({
  documentType: z.enum(["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"]),
  documentNumber: z.string().transform((s) => s.normalize("NFKC").trim()).pipe(z.string().min(1).max(40)),
  photoMatches: z.union([z.boolean(), z.literal("on")]).transform((v) => v === true || v === "on")
    .refine((v) => v, { message: "confirm that the photo matches the person", params: { messageJa: "顔写真と本人の照合を確認してください。" } }),
});

const requestSchema = z.object({
  reason: z.string().max(500).optional(),
  /** LRA desk: the identity re-check, face to face. */
  identityCheck: identitySchema.optional(),
  /** RA by mail: what was received (the request form, a copy of the identity document…). */
  documentsNote: z.string().max(1000).optional(),
});

/**
 * Files a PIN unblock request for card `cardLabel`: at the LRA desk (lra_reviewer/lra_manager,
 * identity re-checked face to face: identityCheck required) or at the RA by mail (ra_officer /
 * ra_approver: documentsNote required). An active (or handed-over) card is recorded PIN-locked as
 * reported; a card must be PIN-locked or become so. Audited "pin_unblock_request.created".
 * @throws ValidationError, NotFoundError (card, or another association's), ConflictError (card state,
 *   an open request already), ForbiddenError (role).
 */
export async function createPinUnblockRequest(db: Knex, op: Operator, cardLabel: string, input: unknown): Promise<Row> {
  const v = parseInput(requestSchema, input);
  const lraDesk = isLraRole(op.role);
  if (!lraDesk && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not file a PIN unblock request`, "PINロック解除を申請する権限がありません");
  }
  if (lraDesk && !v.identityCheck) {
    throw new ValidationError([{ field: "identityCheck", message: "at the desk, check the holder's identity again", messageJa: "窓口では本人確認をやり直してください。" }]);
  }
  if (!lraDesk && !v.documentsNote?.trim()) {
    throw new ValidationError([{ field: "documentsNote", message: "note the documents received by mail", messageJa: "郵送で受け取った書類を記録してください。" }]);
  }
  const actor = lifecycleActorOf(op);
  return db.transaction(async (trx) => {
    const card = await lockLifecycleRow(trx, cardLifecycle, cardLabel, actor);
    if (card.status === "active" || card.status === "handed_over") {
      await applyCardTransition(trx, "pin_lock", cardLabel, actor, { details: { source: "reported", reason: v.reason ?? "reported by the holder" } });
    } else if (card.status !== "pin_locked") {
      throw new ConflictError(`card ${cardLabel} is ${card.status}: only a PIN-locked card in use can be unblocked`,
        `カード ${cardLabel} は「${cardLifecycle.stateJa[card.status as keyof typeof cardLifecycle.stateJa] ?? card.status}」のためPINロック解除できません`);
    }
    const open = await trx("pin_unblock_requests").where({ card_id: card.id }).whereIn("state", ["requested", "approved"]).first("request_no");
    if (open) throw new ConflictError(`card ${cardLabel} already has an open PIN unblock request ${open.request_no}`, `カード ${cardLabel} には処理中のPINロック解除申請（${open.request_no}）があります`);
    const lra = await trx("issuance_requests as ir").join("applications as a", "a.id", "ir.application_id").where("ir.card_label", cardLabel)
      .orderBy("ir.id", "desc").first("a.lra_id");
    const requestNo = `PU-${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(3).toString("hex").toUpperCase()}`;
    const identity = v.identityCheck ? { ...v.identityCheck, checkedBy: op.username, checkedAt: new Date().toISOString() } : null;
    const [row] = (await trx("pin_unblock_requests").insert({
      request_no: requestNo, card_id: card.id, lra_id: lra?.lra_id ?? null, channel: lraDesk ? "lra_desk" : "ra_mail", state: "requested",
      identity_check: identity ? JSON.stringify(identity) : null, documents_note: v.documentsNote ?? null, reason: v.reason ?? null, requested_by: op.id,
    }).returning("*")) as Row[];
    await appendAudit(trx, [{
      ...auditActor(op), action: "pin_unblock_request.created", objectType: "pin_unblock_request", objectId: requestNo,
      details: { card: cardLabel, channel: row.channel, identityDocument: identity?.documentType ?? null },
    }]);
    return row;
  });
}

/** The RA decides on a request: approve (ra_approver, not the requester) or reject. */
export async function decidePinUnblockRequest(db: Knex, op: Operator, id: number, decision: "approve" | "reject", note?: string): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, pinUnblockMachine, decision, id, op, {
    patch: decision === "approve" ? { approved_by: op.id, approved_at: trx.fn.now() } : {},
    details: note ? { note: note.normalize("NFC").slice(0, 500) } : {},
  }));
}

/** PIN unblock requests in `state` (all when undefined), newest first, with the card label. */
export async function listPinUnblockRequests(db: Knex, op: Operator, state?: string): Promise<Record<string, unknown>[]> {
  const q = db("pin_unblock_requests as p").join("cards as c", "c.id", "p.card_id").orderBy("p.id", "desc").limit(500)
    .select("p.id", "p.request_no", "p.state", "p.channel", "p.lra_id", "p.requested_by", "p.approved_by", "p.created_at", "p.executed_at", "c.label as card_label", "c.status as card_state");
  if (state) q.where("p.state", state);
  if (isLraRole(op.role)) q.where("p.lra_id", op.lraId ?? -1);
  return (await q).map((r) => ({
    id: Number(r.id), requestNo: r.request_no, state: r.state, stateJa: pinUnblockMachine.stateJa[r.state as PinUnblockState] ?? r.state,
    channel: r.channel, cardLabel: r.card_label, cardState: r.card_state, requestedBy: Number(r.requested_by),
    approvedBy: r.approved_by == null ? null : Number(r.approved_by), createdAt: r.created_at, executedAt: r.executed_at ?? null,
  }));
}

/** The request `id` (for the IA's execution), with its card label. @throws NotFoundError. */
export async function pinUnblockRequest(db: Knex | Knex.Transaction, id: number): Promise<Row & { card_label: string }> {
  const r = await db("pin_unblock_requests as p").join("cards as c", "c.id", "p.card_id").where("p.id", id).first("p.*", "c.label as card_label");
  if (!r) throw new NotFoundError(`PIN unblock request ${id} not found`, `PINロック解除申請が見つかりません（${id}）`);
  return r;
}
