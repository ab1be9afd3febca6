/**
 * The RA console's worklist (issue 12 §3): applications to review, issuance requests to approve,
 * failed issuance requests, receipts to review, revocation requests and incoming LRA batches.
 * The RA serves every association, so nothing is narrowed by association.
 */
import type { Operator } from "../pipeline/operator.ts";
import { applicationWork, type WorkItemSpec } from "../registration/worklists.ts";

/** The RA worklist of `op`. */
export function raWorklist(_op: Operator): WorkItemSpec[] {
  return [
    applicationWork("ra_review", "審査待ちの申込", "Applications to review"),
    { key: "batches", labelJa: "受領待ちの受付バッチ", label: "LRA batches to receive", path: "/batches", count: (db) => db("lra_batches").where({ state: "forwarded" }) },
    { key: "issuance_requested", labelJa: "承認待ちの発行依頼", label: "Issuance requests to approve", path: "/issuance-requests?state=requested", count: (db) => db("issuance_requests").where({ state: "requested" }) },
    { key: "issuance_failed", labelJa: "発行失敗", label: "Failed issuance requests", path: "/issuance-requests?state=failed", count: (db) => db("issuance_requests").where({ state: "failed" }) },
    { key: "receipts", labelJa: "確認待ちの受領書", label: "Receipts to review", path: "/receipts?state=recorded", count: (db) => db("receipts").where({ state: "recorded" }) },
    { key: "revocations", labelJa: "承認待ちの失効申請", label: "Revocation requests to approve", path: "/revocations?state=requested", count: (db) => db("revocation_requests").where({ state: "requested" }) },
    applicationWork("handover", "カード交付待ち（窓口・郵送）", "Cards awaiting handover (desk / mail)"),
  ];
}
