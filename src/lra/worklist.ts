/**
 * The LRA console's worklist (issue 12 §3): received, missing documents, awaiting approval,
 * returned, deliveries to receive and cards to hand over — of this operator's association only
 * (scope applied in the count queries, src/registration/worklists.ts).
 */
import type { Operator } from "../pipeline/operator.ts";
import { applicationWork, type WorkItemSpec } from "../registration/worklists.ts";

/** The LRA worklist of `op` (the manager also sees approvals waiting for the batch sign-off). */
export function lraWorklist(op: Operator): WorkItemSpec[] {
  return [
    applicationWork("received", "受付済（未審査）", "Received, not yet reviewed"),
    applicationWork("missing_documents", "書類不足", "Documents missing"),
    applicationWork("awaiting_approval", "承認待ち（確認完了）", "Awaiting approval (checks complete)"),
    applicationWork("returned", "登録局から差戻し", "Returned by the RA"),
    ...(op.role === "lra_manager" ? [applicationWork("lra_approved", "登録局への送付待ち", "Waiting to be sent to the RA")] : []),
    {
      key: "deliveries", labelJa: "受領待ちのカード配送", label: "Card deliveries to receive", path: "/deliveries",
      count: (db, o) => db("delivery_batches").where({ state: "shipped", lra_id: o.lraId ?? -1 }),
    },
    applicationWork("handover", "カード交付待ち", "Cards awaiting handover"),
  ];
}
