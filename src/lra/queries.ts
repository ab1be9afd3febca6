/**
 * Read queries of the LRA console's own pages (deliveries, handover). Scoped on the server: an
 * LRA operator sees only its association's rows; the auditor sees every association's.
 */
import type { Row } from "../pipeline/machine.ts";
import { isLraRole, type Operator } from "../pipeline/operator.ts";
import type { Db } from "../store/db.ts";

export interface DeliveryWithCards {
  delivery: Row;
  /** The applications in the batch, each with its receipt (受領書) row. */
  items: { application: Row; receipt: Row | undefined }[];
}

/** Delivery batches shipped to the operator's association (shipped and received), newest first. */
export async function listDeliveries(db: Db, op: Operator, limit = 50): Promise<DeliveryWithCards[]> {
  const q = db("delivery_batches").whereIn("state", ["shipped", "received"]).whereNotNull("lra_id").orderByRaw("(state = 'shipped') desc, id desc").limit(limit);
  if (isLraRole(op.role)) q.where({ lra_id: op.lraId });
  const deliveries = (await q.select("*")) as Row[];
  if (!deliveries.length) return [];
  const ids = deliveries.map((d) => d.id);
  const apps = (await db("applications").whereIn("delivery_batch_id", ids).orderBy("id").select("*")) as Row[];
  const receipts = (await db("receipts").whereIn("delivery_batch_id", ids).select("*")) as Row[];
  return deliveries.map((delivery) => {
    return {
      delivery,
      items: apps
        .filter((a) => Number(a.delivery_batch_id) === Number(delivery.id))
        .map((application) => ({ application, receipt: receipts.find((r) => Number(r.application_id) === Number(application.id)) })),
    };
  });
}

/** The delivery batch and receipt of an application (scope: call readApplication first). */
export async function handoverRecords(db: Db, app: Row): Promise<{ delivery: Row | undefined; receipt: Row | undefined; signedReceipts: Row[] }> {
  const delivery = app.delivery_batch_id == null ? undefined : ((await db("delivery_batches").where({ id: app.delivery_batch_id }).first()) as Row | undefined);
  const receipt = (await db("receipts").where({ application_id: app.id }).first()) as Row | undefined;
  const signedReceipts = (await db("application_documents")
    .where({ application_id: app.id, kind: "signed_receipt" })
    .orderBy("id")
    .select("id", "application_id", "kind", "filename", "media_type", "size_bytes", "sha256", "created_at")) as Row[];
  return { delivery, receipt, signedReceipts };
}
