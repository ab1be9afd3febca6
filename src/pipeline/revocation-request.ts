/**
 * The revocation request (失効申請) state machine (DESIGN §3, HPKI-PROFILE §9.5, RFC 5280 §5.3.1),
 * as data — the whole revocation workflow in one table:
 *
 *   (created by an RA officer, or by an LRA operator for a subscriber of its own association)
 *   requested ──approve (a second RA officer: approver ≠ creator)──▶ approved
 *       └──reject (reason)──▶ rejected
 *   approved ──execute (IA worker: revocations rows written, one transaction)──▶ executed
 *       └──fail (unexpected error; nothing revoked)──▶ failed ──retry (an RA approver)──▶ approved
 *
 *   Retry (CP separation of duties): putting a failed request back in the IA's queue re-affirms
 *   the RA's decision to revoke, so it is the RA approver's — the role that authorises execution
 *   — after reading the failure reason and fixing (or having fixed) its cause. Not the RA officer,
 *   who files but never authorises execution; not the IA operator, who executes what the RA
 *   approved and does not set the RA's decision states (the IA pulls, the RA decides). The
 *   creator is not excluded: a retry changes nothing in the request, whose decision was already
 *   taken by two people (approval), or, for an emergency, on one officer's word by design with
 *   the after-the-fact review by a second person still to come — and an urgent hold must not wait
 *   for another approver to be found.
 *
 *   Emergency path (lost card reported by phone, HPKI-PROFILE §9.5): an RA officer creates the
 *   request already approved (emergency = true, review_state = pending); the IA worker executes
 *   it on its next poll like any approved request. After the fact a second officer reviews it:
 *
 *   executed ──review (approver ≠ creator; review_state pending → confirmed | questioned)──▶ executed
 *
 * Targets: one certificate (CA + serial) or a card — "revoking a card revokes every certificate on
 * it", resolved by the IA when it executes. Reasons: RFC 5280 §5.3.1; certificateHold puts a
 * certificate on hold, removeFromCRL releases a hold, any other reason on a held certificate
 * makes the hold permanent.
 */
import { ConflictError } from "./errors.ts";
import type { Machine, Row } from "./machine.ts";
import type { Operator } from "./operator.ts";
import type { CrlReason } from "../pki/crl.ts";

export const REVOCATION_REQUEST_STATES = ["requested", "approved", "executed", "rejected", "failed"] as const;
export type RevocationRequestState = (typeof REVOCATION_REQUEST_STATES)[number];

/** Who asked (HPKI-PROFILE §9.5): the subscriber at the LRA or the RA, the RA itself, or a phone call. */
export const REVOCATION_CHANNELS = {
  subscriber_lra: { ja: "加入者の申請（地域受付審査局経由）", en: "subscriber, through the LRA" },
  subscriber_ra: { ja: "加入者の申請（登録局受付）", en: "subscriber, at the RA" },
  ra_initiative: { ja: "登録局の判断（資格喪失・所属変更など）", en: "RA's own initiative (licence withdrawn, affiliation changed…)" },
  phone: { ja: "電話による緊急申請（カード紛失など）", en: "phone call (emergency: lost card)" },
} as const;
export type RevocationChannel = keyof typeof REVOCATION_CHANNELS;

/** RFC 5280 §5.3.1 reasons a request may give, with their Japanese names. */
export const REVOCATION_REQUEST_REASONS = {
  keyCompromise: { ja: "鍵の危殆化（カード紛失・盗難を含む）", en: "keyCompromise" },
  affiliationChanged: { ja: "所属の変更", en: "affiliationChanged" },
  superseded: { ja: "証明書の置換（再発行）", en: "superseded" },
  cessationOfOperation: { ja: "利用の中止", en: "cessationOfOperation" },
  privilegeWithdrawn: { ja: "資格の喪失・権限の取消", en: "privilegeWithdrawn" },
  certificateHold: { ja: "一時停止", en: "certificateHold" },
  removeFromCRL: { ja: "一時停止の解除", en: "removeFromCRL (release a hold)" },
  unspecified: { ja: "理由不特定", en: "unspecified" },
} as const satisfies Partial<Record<CrlReason, { ja: string; en: string }>>;
export type RevocationRequestReason = keyof typeof REVOCATION_REQUEST_REASONS;

/** Reasons the emergency path may use: hold the card, or revoke it at once. */
export const EMERGENCY_REASONS: readonly RevocationRequestReason[] = ["certificateHold", "keyCompromise", "cessationOfOperation"];

export const REVIEW_OUTCOMES = {
  confirmed: { ja: "適正（確認済）", en: "confirmed" },
  questioned: { ja: "要確認（問題あり）", en: "questioned" },
} as const;
export type ReviewOutcome = keyof typeof REVIEW_OUTCOMES;

/** Two-person rule of approvals and of emergency reviews (also a CHECK in the table). */
function notTheCreator(action: string, actionJa: string) {
  return (row: Row, op: Operator): void => {
    if (Number(row.created_by) === op.id) {
      throw new ConflictError(
        `two-person rule: the ${action} of a revocation request must be another person than its creator`,
        `失効申請の${actionJa}は作成者以外の担当者が行ってください（二者確認）`,
      );
    }
  };
}

export const revocationRequestMachine = {
  entity: "revocation_request",
  entityJa: "失効申請",
  table: "revocation_requests",
  states: REVOCATION_REQUEST_STATES,
  lraColumn: "lra_id",
  numberColumn: "request_no",
  stateJa: { requested: "承認待ち", approved: "失効処理待ち", executed: "失効済", rejected: "却下", failed: "処理失敗" },
  transitions: {
    approve: {
      from: ["requested"], to: "approved", roles: ["ra_approver"], event: "revocation_request.approved", labelJa: "承認",
      guard: notTheCreator("approver", "承認"),
    },
    reject: { from: ["requested"], to: "rejected", roles: ["ra_officer", "ra_approver"], event: "revocation_request.rejected", labelJa: "却下" },
    execute: { from: ["approved"], to: "executed", roles: ["ia_operator"], event: "revocation_request.executed", labelJa: "失効処理" },
    fail: { from: ["approved"], to: "failed", roles: ["ia_operator"], event: "revocation_request.failed", labelJa: "処理失敗" },
    retry: { from: ["failed"], to: "approved", roles: ["ra_approver"], event: "revocation_request.retried", labelJa: "再処理" },
    review: {
      from: ["executed"], to: "executed", roles: ["ra_approver"], event: "revocation_request.reviewed", labelJa: "事後確認",
      guard: (row, op) => {
        if (!row.emergency || row.review_state !== "pending") {
          throw new ConflictError(
            `revocation request ${row.request_no} has no pending after-the-fact review`,
            `失効申請 ${row.request_no} は事後確認の対象ではないか、確認済みです`,
          );
        }
        notTheCreator("reviewer", "事後確認")(row, op);
      },
    },
  },
} as const satisfies Machine<RevocationRequestState, string>;

export type RevocationRequestTransition = keyof typeof revocationRequestMachine.transitions;
