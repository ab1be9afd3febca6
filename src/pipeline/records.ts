/**
 * The pipeline's other records as state machines (DESIGN §3): LRA batches, issuance requests,
 * delivery batches and receipts. The application's own machine is in application.ts.
 */
import { ConflictError } from "./errors.ts";
import type { Machine } from "./machine.ts";
import { assertReplacedCardRevoked } from "./card-replacement-rules.ts";

export const LRA_BATCH_STATES = ["open", "forwarded", "received"] as const;
export type LraBatchState = (typeof LRA_BATCH_STATES)[number];

/** LRA batch: the manager signs off and forwards; the RA acknowledges receipt. */
export const lraBatchMachine = {
  entity: "lra_batch",
  entityJa: "受付バッチ",
  table: "lra_batches",
  states: LRA_BATCH_STATES,
  lraColumn: "lra_id",
  numberColumn: "batch_no",
  stateJa: { open: "作成中", forwarded: "送付済", received: "登録局受領" },
  transitions: {
    forward: {
      from: ["open"], to: "forwarded", roles: ["lra_manager"], event: "lra_batch.forwarded", labelJa: "承認・送付",
      guard: async (row, _op, trx) => {
        const n = await trx("applications").where({ lra_batch_id: row.id, state: "lra_approved" }).count<{ count: number }[]>("* as count");
        if (Number(n[0].count) === 0) throw new ConflictError(`batch ${row.batch_no} has no approved application`, `受付バッチ ${row.batch_no} に承認済みの申込がありません`);
      },
    },
    receive: { from: ["forwarded"], to: "received", roles: ["ra_officer", "ra_approver"], event: "lra_batch.received", labelJa: "受領" },
  },
} as const satisfies Machine<LraBatchState, string>;

export const ISSUANCE_REQUEST_STATES = ["requested", "approved", "issuing", "issued", "failed", "withdrawn"] as const;
export type IssuanceRequestState = (typeof ISSUANCE_REQUEST_STATES)[number];

/**
 * Issuance request: created by one RA officer, approved by another person (two-person rule:
 * guard here, CHECK constraint in the table), then worked by the IA.
 */
export const issuanceRequestMachine = {
  entity: "issuance_request",
  entityJa: "発行依頼",
  table: "issuance_requests",
  states: ISSUANCE_REQUEST_STATES,
  numberColumn: "id",
  stateJa: { requested: "承認待ち", approved: "発行待ち", issuing: "発行中", issued: "発行済", failed: "発行失敗", withdrawn: "取下げ" },
  transitions: {
    approve: {
      from: ["requested"], to: "approved", roles: ["ra_approver"], event: "issuance_request.approved", labelJa: "承認",
      guard: async (row, op, trx) => {
        if (Number(row.created_by) === op.id) {
          throw new ConflictError(
            "two-person rule: the approver of an issuance request must be another person than its creator",
            "発行依頼は作成者以外の承認者が承認してください（二者承認）",
          );
        }
        if (row.corrected_by != null && Number(row.corrected_by) === op.id) {
          throw new ConflictError(
            "two-person rule: the approver of a corrected issuance request must be another person than the one who corrected it",
            "訂正した発行依頼は、訂正者以外の承認者が承認してください（二者承認）",
          );
        }
        // A lost card's replacement: its certificates revoked first (issue 13 §3).
        const app = await trx("applications").where({ id: row.application_id }).first();
        if (app) await assertReplacedCardRevoked(app, trx);
      },
    },
    claim: { from: ["approved"], to: "issuing", roles: ["ia_operator"], event: "issuance_request.claimed", labelJa: "発行開始" },
    complete: { from: ["issuing"], to: "issued", roles: ["ia_operator"], event: "issuance_request.issued", labelJa: "発行完了" },
    fail: { from: ["issuing"], to: "failed", roles: ["ia_operator"], event: "issuance_request.failed", labelJa: "発行失敗" },
    retry: { from: ["failed"], to: "approved", roles: ["ia_operator"], event: "issuance_request.retried", labelJa: "再発行" },
    // The RA's actions on a failed request (issue 12 §1, failed-issuance.ts): retried as approved
    // when the application is unchanged, back to approval when it was corrected.
    ra_retry: { from: ["failed"], to: "approved", roles: ["ra_officer", "ra_approver"], event: "issuance_request.retried", labelJa: "再発行" },
    resubmit: { from: ["failed"], to: "requested", roles: ["ra_officer", "ra_approver"], event: "issuance_request.resubmitted", labelJa: "訂正後の再申請" },
  },
} as const satisfies Machine<IssuanceRequestState, string>;

export const DELIVERY_BATCH_STATES = ["prepared", "shipped", "received"] as const;
export type DeliveryBatchState = (typeof DELIVERY_BATCH_STATES)[number];

/** Delivery batch: the IA ships personalised cards; the LRA (or the RA desk) receives them. */
export const deliveryBatchMachine = {
  entity: "delivery_batch",
  entityJa: "配送バッチ",
  table: "delivery_batches",
  states: DELIVERY_BATCH_STATES,
  lraColumn: "lra_id",
  numberColumn: "batch_no",
  stateJa: { prepared: "準備中", shipped: "発送済", received: "受領済" },
  transitions: {
    ship: { from: ["prepared"], to: "shipped", roles: ["ia_operator"], event: "delivery_batch.shipped", labelJa: "発送" },
    receive: {
      from: ["shipped"], to: "received", roles: ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver"], event: "delivery_batch.received", labelJa: "受領",
      guard: (row, op) => {
        const lraDesk = op.role === "lra_reviewer" || op.role === "lra_manager";
        if ((row.lra_id != null) !== lraDesk) {
          throw new ConflictError("this delivery goes to another desk", "この配送バッチの受領先は別の窓口です");
        }
      },
    },
  },
} as const satisfies Machine<DeliveryBatchState, string>;

export const RECEIPT_STATES = ["issued", "recorded", "accepted", "returned"] as const;
export type ReceiptState = (typeof RECEIPT_STATES)[number];

/** Receipt (受領書): recorded at handover, reviewed by the RA (accepted, or returned to fix). */
export const receiptMachine = {
  entity: "receipt",
  entityJa: "受領書",
  table: "receipts",
  states: RECEIPT_STATES,
  numberColumn: "receipt_no",
  lraOf: async (row, trx) => (await trx("delivery_batches").where({ id: row.delivery_batch_id }).first("lra_id"))?.lra_id ?? null,
  stateJa: { issued: "未回収", recorded: "回収済", accepted: "確認済", returned: "再提出依頼" },
  transitions: {
    record: { from: ["issued", "returned"], to: "recorded", roles: ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver"], event: "receipt.recorded", labelJa: "回収記録" },
    accept: { from: ["recorded"], to: "accepted", roles: ["ra_officer", "ra_approver"], event: "receipt.accepted", labelJa: "確認" },
    return: { from: ["recorded"], to: "returned", roles: ["ra_officer", "ra_approver"], event: "receipt.returned", labelJa: "再提出依頼" },
  },
} as const satisfies Machine<ReceiptState, string>;
