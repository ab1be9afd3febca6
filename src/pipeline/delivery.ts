/**
 * Delivery and handover (HPKI-PROFILE §9.3 steps 5–6): the IA packs the personalised cards of one
 * regional association (or of the RA desk) into a delivery batch with one receipt form (受領書)
 * per card and ships it; the LRA receives the batch, hands each card over in person after an
 * identity check and records the signed receipt; the RA reviews the receipt, which completes the
 * application.
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import { applicationMachine } from "./application.ts";
import { ConflictError, ForbiddenError, parseInput, ValidationError } from "./errors.ts";
import { keptDocumentNumber, refuseMyNumber } from "./identity-check.ts";
import { applyTransition, lockRow, type Row } from "./machine.ts";
import { auditActor, type Operator } from "./operator.ts";
import { deliveryBatchMachine, receiptMachine } from "./records.ts";
import { revokeReplacedCardAtHandover, type RenewalOldCertificates } from "./card-replacement.ts";
import { applyCardTransitionIfDue, type CardTransition } from "./card-lifecycle.ts";
import { lifecycleActorOf } from "./lifecycle.ts";

/** Takes card transition `name` on the cards bound to applications `appIds` that are due for it. */
async function cardsOfApplications(trx: Knex.Transaction, op: Operator, appIds: (number | string)[], name: CardTransition, details: Record<string, unknown>): Promise<void> {
  const labels = await trx("issuance_requests").whereIn("application_id", appIds).whereNotNull("card_label").orderBy("id").pluck("card_label");
  for (const label of labels) await applyCardTransitionIfDue(trx, name, label, lifecycleActorOf(op), { details });
}

/**
 * Packs every issued, not yet packed application of regional association `lraId` (null: the RA
 * desk's direct applications) into a new delivery batch (prepared) with one receipt each.
 * @throws ForbiddenError unless ia_operator; ConflictError when there is nothing to pack.
 */
export async function createDeliveryBatch(db: Knex, op: Operator, lraId: number | null): Promise<{ batch: Row; receipts: Row[] }> {
  if (op.role !== "ia_operator") throw new ForbiddenError(`role ${op.role} may not prepare deliveries`, "配送バッチを作成する権限がありません");
  return db.transaction(async (trx) => {
    const q = trx("applications").where({ state: "issued" }).whereNull("delivery_batch_id").orderBy("id").forUpdate();
    const apps = (await (lraId === null ? q.whereNull("lra_id") : q.where({ lra_id: lraId })).select("*")) as Row[];
    if (!apps.length) throw new ConflictError("no issued card waits for delivery there", "配送待ちのカードはありません");
    const code = lraId === null ? "RA" : (await trx("lras").where({ id: lraId }).first("code")).code;
    const batchNo = `D${code}-${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(2).toString("hex").toUpperCase()}`;
    const [batch] = (await trx("delivery_batches").insert({ batch_no: batchNo, lra_id: lraId, state: "prepared", created_by: op.id }).returning("*")) as Row[];
    await trx("applications").whereIn("id", apps.map((a) => a.id)).update({ delivery_batch_id: batch.id });
    const receipts = (await trx("receipts")
      .insert(apps.map((a) => ({ receipt_no: newReceiptNo(), application_id: a.id, delivery_batch_id: batch.id, state: "issued" })))
      .returning("*")) as Row[];
    await appendAudit(trx, [{
      ...auditActor(op), action: "delivery_batch.prepared", objectType: "delivery_batch", objectId: batchNo,
      details: { lraId, applications: apps.map((a) => a.application_no) },
    }]);
    return { batch, receipts };
  });
}

/** Receipt number printed (and QR-encoded) on the form: "R-" + 12 random base-32 characters. */
function newReceiptNo(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // no 0/O, 1/I: read aloud over the phone
  return `R-${[...randomBytes(12)].map((b) => alphabet[b & 31]).join("")}`;
}

/** Ships a prepared delivery batch: the batch and each of its applications become shipped. */
export async function shipDeliveryBatch(db: Knex, op: Operator, batchId: number): Promise<Row> {
  return db.transaction(async (trx) => {
    const batch = await applyTransition(trx, deliveryBatchMachine, "ship", batchId, op, { patch: { shipped_at: trx.fn.now() } });
    const apps = await trx("applications").where({ delivery_batch_id: batchId }).orderBy("id").select("id");
    for (const a of apps) await applyTransition(trx, applicationMachine, "ship", a.id, op, { details: { deliveryBatch: batch.batch_no } });
    await cardsOfApplications(trx, op, apps.map((a) => a.id), "ship", { deliveryBatch: batch.batch_no });
    return batch;
  });
}

/** The LRA (or the RA desk) acknowledges the arrival of a shipped delivery batch. */
export async function receiveDeliveryBatch(db: Knex, op: Operator, batchId: number): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, deliveryBatchMachine, "receive", batchId, op, {
    patch: { received_by: op.id, received_at: trx.fn.now() },
  }));
}

const handoverSchema = z.object({
  documentType: z.enum(["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"]),
  documentNumber: z.string().transform((s) => s.normalize("NFKC").trim()).pipe(z.string().min(1).max(40)),
  photoMatches: z.union([z.boolean(), z.literal("on")]).transform((v) => v === true || v === "on")
    .refine((v) => v, { message: "confirm that the photo matches the person", params: { messageJa: "顔写真と本人の照合を確認してください。" } }),
  signedReceiptDocumentId: z.coerce.number().int().positive(),
}).superRefine(refuseMyNumber);

/**
 * Hands a card over at the desk (HPKI-PROFILE §9.3 step 6): records the identity check at
 * handover and the scanned signed receipt (uploaded first with addDocument, kind
 * signed_receipt); the application becomes handed_over and its receipt recorded. The delivery
 * batch must have been received at this desk. A replacement card's handover revokes the card it
 * replaces (card-replacement.ts; a renewal's per `opts.renewalOldCertificates`, default revoke).
 */
export async function handOverCard(
  db: Knex,
  op: Operator,
  applicationId: number,
  input: unknown,
  opts: { renewalOldCertificates?: RenewalOldCertificates } = {},
): Promise<Row> {
  const h = parseInput(handoverSchema, input);
  return db.transaction(async (trx) => {
    const app = await lockRow(trx, applicationMachine, applicationId, op);
    const batch = await trx("delivery_batches").where({ id: app.delivery_batch_id }).first("state", "batch_no");
    if (batch?.state !== "received") {
      throw new ConflictError("the delivery batch has not been received at this desk yet", "配送バッチの受領が記録されていません");
    }
    const doc = await trx("application_documents").where({ id: h.signedReceiptDocumentId, application_id: app.id, kind: "signed_receipt" }).first("id");
    if (!doc) throw new ConflictError("the signed receipt must be uploaded for this application first", "署名済み受領書をこの申込に登録してください");
    const check = { documentType: h.documentType, ...keptDocumentNumber(h.documentType, h.documentNumber), photoMatches: true, checkedBy: op.username, checkedAt: new Date().toISOString() };
    const receipt = await trx("receipts").where({ application_id: app.id }).first("id");
    await applyTransition(trx, receiptMachine, "record", receipt.id, op, {
      patch: { handover_check: JSON.stringify(check), signed_document_id: doc.id, recorded_by: op.id, recorded_at: trx.fn.now() },
    });
    const updated = await applyTransition(trx, applicationMachine, "hand_over", app.id, op, { details: { receiptDocument: Number(doc.id) } });
    await cardsOfApplications(trx, op, [app.id], "hand_over", { application: app.application_no, receiptDocument: Number(doc.id) });
    await revokeReplacedCardAtHandover(trx, op, updated, opts.renewalOldCertificates);
    return updated;
  });
}

/**
 * The RA reviews a recorded receipt: accept completes the application; return asks the desk to
 * record it again (note required).
 */
export async function reviewReceipt(db: Knex, op: Operator, receiptId: number, decision: "accept" | "return", note?: string): Promise<Row> {
  const n = note?.normalize("NFC").trim();
  if (decision === "return" && !n) {
    throw new ValidationError([{ field: "note", message: "say what to fix", messageJa: "再提出の理由を入力してください。" }]);
  }
  return db.transaction(async (trx) => {
    const receipt = await applyTransition(trx, receiptMachine, decision, receiptId, op, {
      patch: { reviewed_by: op.id, reviewed_at: trx.fn.now(), review_note: n ?? null },
    });
    if (decision === "accept") {
      await applyTransition(trx, applicationMachine, "complete", Number(receipt.application_id), op, { details: { receipt: receipt.receipt_no } });
      // The signed receipt is the holder's acknowledgement: the card is in use from now on.
      await cardsOfApplications(trx, op, [Number(receipt.application_id)], "activate", { receipt: receipt.receipt_no });
    }
    return receipt;
  });
}
