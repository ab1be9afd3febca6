/**
 * The application (利用申込) state machine — the whole registration process in one table
 * (DESIGN §3; HPKI-PROFILE §9.3):
 *
 *   received ──lra_approve──▶ lra_approved ──forward (LRA batch signed off)──▶ forwarded
 *      │  └─lra_reject──▶ lra_rejected                                            │
 *      │                                           ┌── ra_return ◀───────────────┤
 *      ▲── lra_resubmit ── returned_to_lra ◀───────┘   ra_reject ──▶ ra_rejected ◀┤
 *   (RA desk/mail applications start at received and go straight to RA review)    │
 *                                                                   ra_approve ───┘
 *   ra_approved ──request_issuance──▶ issuance_requested ──issue (IA)──▶ issued
 *   issued ──ship (delivery batch)──▶ shipped ──hand_over (LRA desk, receipt)──▶ handed_over
 *   handed_over ──complete (RA reviewed the receipt)──▶ completed
 *   withdraw: before issuance, on the applicant's request — also while the issuance request is
 *   still waiting or has failed (never while the IA works on it); the request is withdrawn with it.
 *
 * Guards check the evidence an approval rests on: the face-to-face identity check, the licence
 * register comparison and the required scanned documents. The issuance request's own two-person
 * rule lives in issuance-request.ts.
 */
import type { Knex } from "knex";
import { ConflictError, ValidationError } from "./errors.ts";
import type { Machine, Row } from "./machine.ts";
import type { Operator } from "./operator.ts";
import { assertReplacedCardRevoked, requiredDocumentsFor } from "./card-replacement-rules.ts";

export const APPLICATION_STATES = [
  "received", "lra_approved", "lra_rejected", "forwarded", "returned_to_lra", "ra_approved", "ra_rejected",
  "issuance_requested", "issued", "shipped", "handed_over", "completed", "withdrawn",
] as const;
export type ApplicationState = (typeof APPLICATION_STATES)[number];

/** States an application never leaves (it may be followed by a new application). */
export const TERMINAL_APPLICATION_STATES: readonly ApplicationState[] = ["lra_rejected", "ra_rejected", "completed", "withdrawn"];

/** Kinds of scanned document (HPKI-PROFILE §9.2). */
export const DOCUMENT_KINDS = {
  application_form: { ja: "利用申込書", en: "application form" },
  identity_document: { ja: "本人確認書類", en: "identity document" },
  licence_copy: { ja: "免許証の写し", en: "copy of the licence" },
  residence_record: { ja: "住民票の写し", en: "residence record" },
  director_proof: { ja: "管理者・開設者であることの証明", en: "proof of facility manager status" },
  signed_receipt: { ja: "受領書（署名済み）", en: "signed receipt" },
  name_change_proof: { ja: "氏名の変更を証する書類（戸籍抄本等）", en: "proof of the name change (family register extract)" },
  loss_report: { ja: "紛失・盗難届", en: "loss or theft report" },
  other: { ja: "その他", en: "other" },
} as const;
export type DocumentKind = keyof typeof DOCUMENT_KINDS;

/** Documents an approval needs: the form, an identity document, the licence; managers also proof. */
export function requiredDocuments(director: boolean): DocumentKind[] {
  return director ? ["application_form", "identity_document", "licence_copy", "director_proof"] : ["application_form", "identity_document", "licence_copy"];
}

/**
 * Guard of every approval: identity checked face to face (or, for mail, on the copies), licence
 * register comparison recorded as a match, required documents present. Lists every missing
 * piece at once.
 */
async function reviewComplete(row: Row, _op: Operator, trx: Knex.Transaction): Promise<void> {
  const issues: { field: string; message: string; messageJa: string }[] = [];
  const identity = row.identity_check as { checkedAt?: string } | null;
  if (!identity?.checkedAt) {
    issues.push({ field: "identityCheck", message: "the identity check has not been recorded", messageJa: "本人確認が記録されていません" });
  }
  const licence = row.licence_check as { result?: string } | null;
  if (licence?.result !== "match") {
    issues.push({
      field: "licenceCheck",
      message: licence ? `the licence register check is "${licence.result}", not a match` : "the licence register check has not been made",
      messageJa: licence ? "免許情報が資格確認台帳と一致しません" : "資格確認（台帳照合）が行われていません",
    });
  }
  const present = new Set(
    (await trx("application_documents").where({ application_id: row.id }).distinct("kind")).map((d: { kind: string }) => d.kind),
  );
  for (const kind of requiredDocumentsFor(row) as DocumentKind[]) {
    if (!present.has(kind)) {
      issues.push({ field: `documents.${kind}`, message: `missing document: ${DOCUMENT_KINDS[kind].en}`, messageJa: `書類が不足しています：${DOCUMENT_KINDS[kind].ja}` });
    }
  }
  if (issues.length) throw new ValidationError(issues);
}

/** RA review of an application taken at the RA directly (no LRA) starts from "received". */
function raChannelOnlyWhenReceived(row: Row): void {
  if (row.state === "received" && row.channel === "lra") {
    throw new ConflictError(
      "an LRA application reaches the RA only in a forwarded batch",
      "地域受付審査局の申込は、受付バッチで送付されてから登録局で審査します",
    );
  }
}

/** The card of an LRA application is handed over at that LRA; of an RA application, at the RA. */
function handoverAtTheRightDesk(row: Row, op: Operator): void {
  const lraDesk = op.role === "lra_reviewer" || op.role === "lra_manager";
  if ((row.channel === "lra") !== lraDesk) {
    throw new ValidationError([{
      field: "channel",
      message: "the card is handed over where the application was received",
      messageJa: "カードは申込を受け付けた窓口で交付します",
    }]);
  }
}

/**
 * An application whose issuance request is being worked by the IA ("issuing") or is issued cannot
 * be withdrawn; one whose request waits or has failed can (the request is withdrawn with it, see
 * withdrawIssuanceRequestOf).
 */
async function issuanceNotUnderWay(row: Row, _op: Operator, trx: Knex.Transaction): Promise<void> {
  if (row.state !== "issuance_requested") return;
  const ir = await trx("issuance_requests").where({ application_id: row.id }).first("id", "state");
  if (ir && !["requested", "approved", "failed"].includes(ir.state)) {
    throw new ConflictError(
      `application ${row.application_no}: its issuance request ${ir.id} is ${ir.state}; withdraw once it has failed, or revoke after issuance`,
      `申込 ${row.application_no} の発行依頼は処理中または発行済のため取り下げられません（発行失敗後に取り下げるか、発行後は失効を申請してください）`,
    );
  }
}

export const applicationMachine = {
  entity: "application",
  entityJa: "申込",
  table: "applications",
  states: APPLICATION_STATES,
  lraColumn: "lra_id",
  numberColumn: "application_no",
  stateJa: {
    received: "受付済", lra_approved: "審査承認（地域）", lra_rejected: "却下（地域）", forwarded: "登録局へ送付済",
    returned_to_lra: "差戻し", ra_approved: "審査承認（登録局）", ra_rejected: "却下（登録局）",
    issuance_requested: "発行依頼済", issued: "発行済", shipped: "発送済", handed_over: "交付済",
    completed: "完了", withdrawn: "取下げ",
  },
  transitions: {
    lra_approve: { from: ["received"], to: "lra_approved", roles: ["lra_reviewer", "lra_manager"], event: "application.lra_approved", labelJa: "承認", guard: reviewComplete },
    lra_reject: { from: ["received"], to: "lra_rejected", roles: ["lra_reviewer", "lra_manager"], event: "application.lra_rejected", labelJa: "却下" },
    forward: { from: ["lra_approved"], to: "forwarded", roles: ["lra_manager"], event: "application.forwarded", labelJa: "登録局への送付" },
    lra_resubmit: { from: ["returned_to_lra"], to: "received", roles: ["lra_reviewer", "lra_manager"], event: "application.resubmitted", labelJa: "再審査" },
    ra_approve: {
      from: ["forwarded", "received"], to: "ra_approved", roles: ["ra_officer", "ra_approver"], event: "application.ra_approved", labelJa: "承認",
      guard: async (row, op, trx) => {
        raChannelOnlyWhenReceived(row);
        await reviewComplete(row, op, trx);
      },
    },
    ra_return: { from: ["forwarded"], to: "returned_to_lra", roles: ["ra_officer", "ra_approver"], event: "application.returned_to_lra", labelJa: "差戻し" },
    ra_reject: {
      from: ["forwarded", "received"], to: "ra_rejected", roles: ["ra_officer", "ra_approver"], event: "application.ra_rejected", labelJa: "却下",
      guard: raChannelOnlyWhenReceived,
    },
    request_issuance: {
      from: ["ra_approved"], to: "issuance_requested", roles: ["ra_officer", "ra_approver"], event: "application.issuance_requested", labelJa: "発行依頼",
      guard: (row, _op, trx) => assertReplacedCardRevoked(row, trx),
    },
    issue: { from: ["issuance_requested"], to: "issued", roles: ["ia_operator"], event: "application.issued", labelJa: "発行" },
    ship: { from: ["issued"], to: "shipped", roles: ["ia_operator"], event: "application.shipped", labelJa: "発送" },
    hand_over: {
      from: ["shipped"], to: "handed_over", roles: ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver"], event: "application.handed_over", labelJa: "交付",
      guard: handoverAtTheRightDesk,
    },
    complete: { from: ["handed_over"], to: "completed", roles: ["ra_officer", "ra_approver"], event: "application.completed", labelJa: "完了（受領書確認）" },
    withdraw: {
      from: ["received", "lra_approved", "returned_to_lra", "forwarded", "ra_approved", "issuance_requested"], to: "withdrawn",
      roles: ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver"], event: "application.withdrawn", labelJa: "取下げ",
      guard: issuanceNotUnderWay,
    },
  },
} as const satisfies Machine<ApplicationState, string>;

export type ApplicationTransition = keyof typeof applicationMachine.transitions;
