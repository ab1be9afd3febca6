/**
 * The desk's answer to a receipt the RA returned (受領書の再提出): the card was already handed
 * over, so only the receipt is recorded again, pointing at a newly scanned signed receipt. The
 * state change is the receipt machine's own "record" transition (from returned), so role, scope
 * (the delivery batch's association) and state are checked there; the application stays
 * handed_over until the RA accepts the receipt.
 */
import type { Knex } from "knex";
import { z } from "zod";
import { applicationMachine } from "../pipeline/application.ts";
import { ConflictError, parseInput } from "../pipeline/errors.ts";
import { applyTransition, lockRow, type Row } from "../pipeline/machine.ts";
import type { Operator } from "../pipeline/operator.ts";
import { receiptMachine } from "../pipeline/records.ts";

const schema = z.object({ signedReceiptDocumentId: z.coerce.number().int().positive() });

/**
 * Records the returned receipt of application `applicationId` again with the signed receipt
 * document `signedReceiptDocumentId` (uploaded first, kind signed_receipt, not the one returned).
 * @throws ForbiddenError (role, other association), ConflictError (nothing returned, wrong document).
 */
export async function recordReceiptAgain(db: Knex, op: Operator, applicationId: number, input: unknown): Promise<Row> {
  const { signedReceiptDocumentId } = parseInput(schema, input);
  return db.transaction(async (trx) => {
    const app = await lockRow(trx, applicationMachine, applicationId, op);
    const receipt = await trx("receipts").where({ application_id: app.id }).first("id", "state", "signed_document_id");
    if (app.state !== "handed_over" || receipt?.state !== "returned") {
      throw new ConflictError("no returned receipt waits for this application", "再提出を依頼された受領書はありません");
    }
    const doc = await trx("application_documents").where({ id: signedReceiptDocumentId, application_id: app.id, kind: "signed_receipt" }).first("id");
    if (!doc || Number(doc.id) === Number(receipt.signed_document_id)) {
      throw new ConflictError("upload the corrected signed receipt for this application first", "修正した署名済み受領書をこの申込に登録してください");
    }
    return applyTransition(trx, receiptMachine, "record", receipt.id, op, {
      patch: { signed_document_id: doc.id, recorded_by: op.id, recorded_at: trx.fn.now() },
      details: { application: app.application_no, document: Number(doc.id), again: true },
    });
  });
}
