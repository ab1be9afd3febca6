/**
 * LRA batches (受付バッチ): the LRA manager signs off the association's open batch, which
 * forwards every approved application in it to the RA in the same transaction; the RA
 * acknowledges receipt.
 */
import type { Knex } from "knex";
import { applicationMachine } from "./application.ts";
import { applyTransition, type Row } from "./machine.ts";
import type { Operator } from "./operator.ts";
import { lraBatchMachine } from "./records.ts";

/**
 * Signs off and forwards LRA batch `batchId` (lra_manager of its association): the batch becomes
 * forwarded and each of its lra_approved applications forwarded, all or nothing.
 * @returns the batch row and the number of applications forwarded.
 * @throws ForbiddenError (role, other association), ConflictError (already forwarded, empty).
 */
export async function forwardLraBatch(db: Knex, op: Operator, batchId: number): Promise<{ batch: Row; applications: number }> {
  return db.transaction(async (trx) => {
    const batch = await applyTransition(trx, lraBatchMachine, "forward", batchId, op, {
      patch: { signed_off_by: op.id, forwarded_at: trx.fn.now() },
    });
    // Lock order: batch, then its applications by id — the same order every writer uses.
    const apps = await trx("applications").where({ lra_batch_id: batchId, state: "lra_approved" }).orderBy("id").select("id");
    for (const a of apps) {
      await applyTransition(trx, applicationMachine, "forward", a.id, op, { details: { lraBatch: batch.batch_no } });
    }
    return { batch, applications: apps.length };
  });
}

/** The RA acknowledges a forwarded LRA batch (ra_officer / ra_approver). */
export async function receiveLraBatch(db: Knex, op: Operator, batchId: number): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, lraBatchMachine, "receive", batchId, op, {
    patch: { received_by: op.id, received_at: trx.fn.now() },
  }));
}
