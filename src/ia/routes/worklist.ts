/**
 * The IA console's worklist (issue 12 §3): approved issuance requests in the queue, failed ones,
 * and deliveries (issued cards not yet batched, batches prepared but not shipped).
 */
import type { WorkItemSpec } from "../../registration/worklists.ts";

/** The IA worklist (the same for every IA operator: the IA serves every association). */
export function iaWorklist(): WorkItemSpec[] {
  return [
    { key: "queue", labelJa: "発行待ち（承認済みの発行依頼）", label: "Approved requests in the queue", path: "/queue", count: (db) => db("issuance_requests").whereIn("state", ["approved", "issuing"]) },
    { key: "failed", labelJa: "発行失敗", label: "Failed issuance requests", path: "/queue#failed", count: (db) => db("issuance_requests").where({ state: "failed" }) },
    { key: "to_batch", labelJa: "配送待ちのカード", label: "Issued cards to put in a delivery", path: "/deliveries", count: (db) => db("applications").where({ state: "issued" }).whereNull("delivery_batch_id") },
    { key: "to_ship", labelJa: "発送待ちの配送", label: "Deliveries to ship", path: "/deliveries", count: (db) => db("delivery_batches").where({ state: "prepared" }) },
  ];
}
