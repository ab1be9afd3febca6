/**
 * How the LRA and RA consoles show pipeline rows: the JSON shapes of the console HTTP API
 * (camelCase, dates as YYYY-MM-DD, timestamps as ISO 8601) and the display values of the pages
 * (dates as 2026年4月1日 in Japanese, state badges, names in kanji with kana). Pure: rows in,
 * plain objects out.
 */
import { applicationMachine, DOCUMENT_KINDS, type ApplicationState } from "../../pipeline/application.ts";
import { isoDate } from "../../pipeline/applications.ts";
import type { LicenceCheck } from "../../pipeline/licence-check.ts";
import type { Machine } from "../../pipeline/machine.ts";
import { deliveryBatchMachine, issuanceRequestMachine, lraBatchMachine, receiptMachine } from "../../pipeline/records.ts";
import type { Lang } from "../i18n.ts";

const JST = "Asia/Tokyo";

/** A calendar date (YYYY-MM-DD or a DATE column) for a page: "2026年4月1日" / "1 Apr 2026". */
export function displayDate(v: unknown, lang: Lang): string {
  if (v == null || v === "") return "";
  const [y, m, d] = isoDate(v).split("-").map(Number);
  if (!y || !m || !d) return String(v);
  if (lang === "ja") return `${y}年${m}月${d}日`;
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}

/** A point in time for a page, in Japan time: "2026年4月1日 14:30" / "1 Apr 2026 14:30". */
export function displayDateTime(v: unknown, lang: Lang): string {
  if (v == null || v === "") return "";
  const t = v instanceof Date ? v : new Date(String(v));
  if (Number.isNaN(t.getTime())) return String(v);
  const p = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: JST, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(t)
      .map((x) => [x.type, x.value]),
  );
  return `${displayDate(`${p.year}-${p.month}-${p.day}`, lang)} ${p.hour}:${p.minute}`;
}

/** An ISO 8601 timestamp for JSON (null stays null). */
export function isoTime(v: unknown): string | null {
  if (v == null) return null;
  const t = v instanceof Date ? v : new Date(String(v));
  return Number.isNaN(t.getTime()) ? String(v) : t.toISOString();
}

/** A JSONB column as an object (pg parses it; text is accepted too). */
export function jsonColumn<T>(v: unknown): T | null {
  if (v == null) return null;
  if (typeof v === "string") {
    try {
      return JSON.parse(v) as T;
    } catch {
      return null;
    }
  }
  return v as T;
}

/** Badge tone of a state: needs action (warn), finished well (ok), stopped (error), in progress. */
const TONE: Record<string, "ok" | "warn" | "error" | ""> = {
  received: "warn", returned_to_lra: "warn", forwarded: "warn", requested: "warn", shipped: "warn", recorded: "warn", failed: "error",
  lra_rejected: "error", ra_rejected: "error", withdrawn: "error", returned: "error",
  ra_approved: "ok", completed: "ok", handed_over: "ok", issued: "ok", accepted: "ok", approved: "ok",
  // Per machine where one state name means different things: a receipt "issued" is not yet back.
  "receipt.issued": "warn",
};

/** A state badge for a page: {state, label, tone} (label in the page language). */
export function stateBadge<S extends string, T extends string>(m: Machine<S, T>, state: string, lang: Lang): { state: string; label: string; tone: string } {
  const ja = m.stateJa[state as S] ?? state;
  return { state, label: lang === "ja" ? ja : state.replace(/_/g, " "), tone: TONE[`${m.entity}.${state}`] ?? TONE[state] ?? "" };
}

/** The Japanese label of an application state (for JSON clients that show it). */
export function applicationStateJa(state: string): string {
  return applicationMachine.stateJa[state as ApplicationState] ?? state;
}

/** The fields every JSON form of an application starts with. */
function applicationHead(row: Record<string, unknown>): Record<string, unknown> {
  return {
    id: Number(row.id),
    applicationNo: row.application_no,
    channel: row.channel,
    lraId: row.lra_id == null ? null : Number(row.lra_id),
    state: row.state,
    stateJa: applicationStateJa(String(row.state)),
  };
}

/** An `applications` row in the JSON shape of the console API. */
export function applicationJson(row: Record<string, unknown>): Record<string, unknown> {
  return {
    ...applicationHead(row),
    version: Number(row.version),
    nameKanji: row.name_kanji,
    nameKana: row.name_kana,
    nameLatin: row.name_latin,
    birthDate: isoDate(row.birth_date),
    postalCode: row.postal_code,
    address: row.address,
    phone: row.phone,
    email: row.email,
    qualification: row.qualification,
    licenceNumber: row.licence_number,
    licenceDate: isoDate(row.licence_date),
    organizationKanji: row.organization_kanji ?? null,
    organizationLatin: row.organization_latin ?? null,
    managerRole: row.manager_role ?? null,
    requestSign: Boolean(row.request_sign),
    requestAuth: Boolean(row.request_auth),
    requestEnc: Boolean(row.request_enc),
    identityCheck: jsonColumn(row.identity_check),
    licenceCheck: jsonColumn<LicenceCheck>(row.licence_check),
    decisionReason: row.decision_reason ?? null,
    subscriberId: row.subscriber_id ?? null,
    lraBatchId: row.lra_batch_id == null ? null : Number(row.lra_batch_id),
    deliveryBatchId: row.delivery_batch_id == null ? null : Number(row.delivery_batch_id),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/** The short form of an application in lists (batches, deliveries, search results). */
export function applicationSummaryJson(row: Record<string, unknown>): Record<string, unknown> {
  return {
    ...applicationHead(row),
    nameKanji: row.name_kanji,
    nameKana: row.name_kana,
    qualification: row.qualification,
    licenceNumber: row.licence_number,
    licenceCheckResult: jsonColumn<LicenceCheck>(row.licence_check)?.result ?? null,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/** An `application_documents` row (without its bytes) in the JSON shape of the console API. */
export function documentJson(row: Record<string, unknown>, base: string): Record<string, unknown> {
  const kind = String(row.kind) as keyof typeof DOCUMENT_KINDS;
  return {
    id: Number(row.id),
    applicationId: Number(row.application_id),
    kind,
    kindJa: DOCUMENT_KINDS[kind]?.ja ?? kind,
    filename: row.filename,
    mediaType: row.media_type,
    sizeBytes: Number(row.size_bytes),
    sha256: Buffer.isBuffer(row.sha256) || row.sha256 instanceof Uint8Array ? Buffer.from(row.sha256 as Uint8Array).toString("hex") : String(row.sha256),
    uploadedAt: isoTime(row.created_at),
    url: `${base}/documents/${Number(row.id)}`,
  };
}

/** A byte count for a page: "2.4 MB", "380 KB". */
export function displaySize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1048576).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** An `lra_batches` row (with its applications, when given) in the JSON shape of the console API. */
export function lraBatchJson(row: Record<string, unknown>, applications?: Record<string, unknown>[], lra?: { code: string; name: string }): Record<string, unknown> {
  return {
    id: Number(row.id),
    batchNo: row.batch_no,
    lraId: Number(row.lra_id),
    ...(lra ? { lraCode: lra.code, lraName: lra.name } : {}),
    state: row.state,
    stateJa: lraBatchMachine.stateJa[row.state as keyof typeof lraBatchMachine.stateJa] ?? row.state,
    version: Number(row.version),
    signedOffBy: row.signed_off_by == null ? null : Number(row.signed_off_by),
    forwardedAt: isoTime(row.forwarded_at),
    receivedAt: isoTime(row.received_at),
    createdAt: isoTime(row.created_at),
    ...(applications ? { applications: applications.map(applicationSummaryJson) } : {}),
  };
}

/** A `receipts` row in the JSON shape of the console API. */
export function receiptJson(row: Record<string, unknown>, base: string): Record<string, unknown> {
  return {
    id: Number(row.id),
    receiptNo: row.receipt_no,
    applicationId: Number(row.application_id),
    deliveryBatchId: Number(row.delivery_batch_id),
    state: row.state,
    stateJa: receiptMachine.stateJa[row.state as keyof typeof receiptMachine.stateJa] ?? row.state,
    version: Number(row.version),
    handoverCheck: jsonColumn(row.handover_check),
    signedDocumentId: row.signed_document_id == null ? null : Number(row.signed_document_id),
    signedDocumentUrl: row.signed_document_id == null ? null : `${base}/documents/${Number(row.signed_document_id)}`,
    recordedBy: row.recorded_by == null ? null : Number(row.recorded_by),
    recordedAt: isoTime(row.recorded_at),
    reviewedBy: row.reviewed_by == null ? null : Number(row.reviewed_by),
    reviewedAt: isoTime(row.reviewed_at),
    reviewNote: row.review_note ?? null,
  };
}

/** A `delivery_batches` row in the JSON shape of the console API. */
export function deliveryJson(row: Record<string, unknown>): Record<string, unknown> {
  return {
    id: Number(row.id),
    batchNo: row.batch_no,
    lraId: row.lra_id == null ? null : Number(row.lra_id),
    state: row.state,
    stateJa: deliveryBatchMachine.stateJa[row.state as keyof typeof deliveryBatchMachine.stateJa] ?? row.state,
    version: Number(row.version),
    shippedAt: isoTime(row.shipped_at),
    receivedAt: isoTime(row.received_at),
    createdAt: isoTime(row.created_at),
  };
}

/** An `issuance_requests` row in the JSON shape of the console API. */
export function issuanceRequestJson(row: Record<string, unknown>): Record<string, unknown> {
  return {
    id: Number(row.id),
    applicationId: Number(row.application_id),
    state: row.state,
    stateJa: issuanceRequestMachine.stateJa[row.state as keyof typeof issuanceRequestMachine.stateJa] ?? row.state,
    version: Number(row.version),
    profiles: jsonColumn<string[]>(row.profiles) ?? [],
    createdBy: Number(row.created_by),
    approvedBy: row.approved_by == null ? null : Number(row.approved_by),
    approvedAt: isoTime(row.approved_at),
    cardLabel: row.card_label ?? null,
    attempts: Number(row.attempts ?? 0),
    lastError: row.last_error ?? null,
    createdAt: isoTime(row.created_at),
  };
}
