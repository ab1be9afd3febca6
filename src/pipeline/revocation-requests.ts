/**
 * Revocation request services (失効申請; the machine is ./revocation-request.ts). The RA and LRA
 * consoles call create/approve/reject/review/list; the IA worker (src/ia/revocation-worker.ts)
 * calls claim/complete/fail. Each call is one transaction with its audit record; role and scope
 * (an LRA operator acts only for subscribers of its own association) are checked here.
 *
 * A target's subscriber is found through the pipeline: a certificate's request key
 * "ir:<issuance request id>:<profile>" (or a card's label) → issuance_requests → applications.
 */
import type { Knex } from "knex";
import { listenOnChannel, type ChannelListener } from "../store/listen.ts";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import { canonicalSerialHex } from "../pki/serial.ts";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, cleanInputText, validationErrorFromZod, type FieldIssue } from "./errors.ts";
import { canonicalDate, canonicalRegistrationNumber } from "./licence-check.ts";
import { applyTransition, assertScope, type Row } from "./machine.ts";
import { nameMatches } from "./name-search.ts";
import { auditActor, isLraRole, type Operator } from "./operator.ts";
import {
  EMERGENCY_REASONS, REVIEW_OUTCOMES, REVOCATION_CHANNELS, REVOCATION_REQUEST_REASONS, revocationRequestMachine,
  type RevocationChannel, type RevocationRequestReason, type ReviewOutcome,
} from "./revocation-request.ts";

/**
 * Postgres NOTIFY channel raised (on commit) when a request becomes approved — by approval or as
 * an emergency — so a listening IA worker executes it at once instead of at its next poll.
 */
export const REVOCATION_NOTIFY_CHANNEL = "hpki_revocation_requests";

/** Raises REVOCATION_NOTIFY_CHANNEL inside `trx` (delivered when it commits; a no-op without listeners). */
async function notifyApproved(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`NOTIFY ${REVOCATION_NOTIFY_CHANNEL}`);
}

/** One certificate a request covers, with its current status. */
export interface TargetCertificate {
  certificateId: number;
  caName: string;
  serialHex: string;
  profile: string;
  notAfter: Date;
  cardLabel: string | null;
  /** Active revocation reason (certificateHold while on hold), or null when the certificate is good. */
  revokedReason: string | null;
}

/** A target as resolved: its certificates and the subscriber's application (when issued through the pipeline). */
export interface ResolvedTarget {
  kind: "certificate" | "card";
  certificates: TargetCertificate[];
  applicationId: number | null;
  applicationNo: string | null;
  subscriberId: string | null;
  nameKanji: string | null;
  lraId: number | null;
}

const RA_ROLES = new Set(["ra_officer", "ra_approver"]);

const text = (max: number) => z.string().transform((s) => s.normalize("NFC").trim()).pipe(z.string().max(max));
const requiredText = (max: number) => z.string().transform((s) => s.normalize("NFC").trim()).pipe(z.string().min(1).max(max));
const optionalDate = z.preprocess(
  (v) => (v === "" || v == null ? undefined : v),
  z.string().optional().transform((s, ctx) => {
    if (s === undefined) return undefined;
    // A form's datetime-local value has no zone: it is Japan time.
    const d = new Date(/T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(s) ? `${s}+09:00` : s);
    if (Number.isNaN(d.getTime())) {
      ctx.addIssue({ code: "custom", message: "expected a date and time", params: { messageJa: "無効日（invalidityDate）は日時の形式で入力してください。" } });
      return z.NEVER;
    }
    if (d.getTime() > Date.now() + 60_000) {
      ctx.addIssue({ code: "custom", message: "invalidityDate must not be in the future", params: { messageJa: "無効日（invalidityDate）に未来の日時は指定できません。" } });
      return z.NEVER;
    }
    // Up to a minute ahead is the operator's clock, not a future date: taken as now, since the IA
    // refuses a future invalidityDate when it executes (the request would fail).
    return d.getTime() > Date.now() ? new Date() : d;
  }),
);

const targetFields = {
  targetKind: z.enum(["certificate", "card"]),
  caName: z.string().optional(),
  serialHex: z.string().optional(),
  cardLabel: z.string().optional(),
};

/** Issues of the target fields (one certificate: CA + serial; a card: its label), from the raw input. */
function targetIssues(input: unknown): FieldIssue[] {
  const a = (input ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  const issues: FieldIssue[] = [];
  if (a.targetKind === "certificate") {
    if (!str(a.caName)) issues.push({ field: "caName", message: "give the issuing CA", messageJa: "発行CAを選択してください。" });
    if (!canonicalSerialHex(str(a.serialHex))) issues.push({ field: "serialHex", message: "give the serial number in hex", messageJa: "シリアル番号を16進数で入力してください。" });
  } else if (a.targetKind === "card" && !str(a.cardLabel)) {
    issues.push({ field: "cardLabel", message: "give the card label", messageJa: "カード番号（ラベル）を入力してください。" });
  }
  return issues;
}

/** Parses a request form: every field issue at once (zod's and the target's), Japanese messages. */
function parseRequestInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const cleaned = cleanInputText(input);
  if (cleaned.issues.length) throw new ValidationError(cleaned.issues);
  const r = schema.safeParse(cleaned.value);
  const issues = [...(r.success ? [] : validationErrorFromZod(r.error).issues), ...targetIssues(cleaned.value)];
  if (issues.length) throw new ValidationError(issues);
  return r.data as z.output<S>;
}

const requestSchema = z.object({
  ...targetFields,
  channel: z.enum(Object.keys(REVOCATION_CHANNELS) as [RevocationChannel, ...RevocationChannel[]]),
  reason: z.enum(Object.keys(REVOCATION_REQUEST_REASONS) as [RevocationRequestReason, ...RevocationRequestReason[]]),
  invalidityDate: optionalDate,
  grounds: requiredText(1000),
});

const emergencySchema = z.object({
  ...targetFields,
  reason: z.enum(EMERGENCY_REASONS as [RevocationRequestReason, ...RevocationRequestReason[]]),
  invalidityDate: optionalDate,
  grounds: requiredText(1000),
  callerVerification: requiredText(500),
});

/** Form input of a revocation request (console form fields or JSON). */
export type RevocationRequestInput = z.input<typeof requestSchema>;
/** Form input of an emergency request taken on the phone. */
export type EmergencyRevocationInput = z.input<typeof emergencySchema>;

/**
 * Resolves a target to its issued certificates and subscriber. `trx` may be the IA's transaction
 * (then it runs at execution time: a card's certificates are those on it now).
 * @throws NotFoundError when the CA, the certificate or the card has no issued certificate.
 */
export async function resolveRevocationTarget(
  trx: Knex,
  target: { targetKind: "certificate" | "card"; caName?: string | null; serialHex?: string | null; cardLabel?: string | null },
): Promise<ResolvedTarget> {
  const q = trx("certificates as c")
    .join("certificate_authorities as a", "a.id", "c.ca_id")
    .leftJoin("revocations as r", function () {
      this.on("r.certificate_id", "c.id").andOnNull("r.released_at");
    })
    .where("c.status", "issued")
    .orderBy("c.id")
    .select("c.id", "a.name as ca_name", "c.serial_hex", "c.profile", "c.not_after", "c.card_label", "c.request_key", "r.reason as revoked_reason");
  let label: string;
  if (target.targetKind === "certificate") {
    const serial = canonicalSerialHex(target.serialHex ?? "") ?? "";
    q.where({ "a.name": target.caName ?? "", "c.serial_hex": serial });
    label = `${target.caName}:${serial}`;
  } else {
    q.where("c.card_label", target.cardLabel ?? "");
    label = `card ${target.cardLabel}`;
  }
  const rows = await q;
  if (rows.length === 0) {
    throw new NotFoundError(
      `no issued certificate for ${label}`,
      target.targetKind === "card" ? `カード「${target.cardLabel}」に発行済みの証明書はありません` : `該当する発行済み証明書がありません（${label}）`,
    );
  }
  const certificates: TargetCertificate[] = rows.map((r) => ({
    certificateId: Number(r.id), caName: r.ca_name, serialHex: r.serial_hex, profile: r.profile, notAfter: new Date(r.not_after),
    cardLabel: r.card_label ?? null, revokedReason: r.revoked_reason ?? null,
  }));
  const app = await subscriberOf(trx, target.targetKind === "card" ? { cardLabel: target.cardLabel! } : { requestKey: rows[0].request_key });
  return {
    kind: target.targetKind,
    certificates,
    applicationId: app ? Number(app.id) : null,
    applicationNo: app?.application_no == null ? null : String(app.application_no),
    subscriberId: app?.subscriber_id == null ? null : String(app.subscriber_id),
    nameKanji: app?.name_kanji == null ? null : String(app.name_kanji),
    lraId: app?.lra_id == null ? null : Number(app.lra_id),
  };
}

/** The application behind a card or a certificate's request key "ir:<id>:<profile>", if any. */
async function subscriberOf(trx: Knex, by: { cardLabel: string } | { requestKey: string | null }): Promise<Row | undefined> {
  const q = trx("issuance_requests as ir").join("applications as ap", "ap.id", "ir.application_id");
  if ("cardLabel" in by) q.where("ir.card_label", by.cardLabel);
  else {
    const m = /^ir:(\d+):/.exec(by.requestKey ?? "");
    if (!m) return undefined;
    q.where("ir.id", Number(m[1]));
  }
  return (await q.first("ap.id", "ap.application_no", "ap.subscriber_id", "ap.name_kanji", "ap.lra_id")) as Row | undefined;
}

/** How many of the target's certificates the reason would change (hold, release, revoke, make permanent). */
function actionable(t: ResolvedTarget, reason: RevocationRequestReason): number {
  return t.certificates.filter((c) => {
    if (reason === "removeFromCRL") return c.revokedReason === "certificateHold";
    if (reason === "certificateHold") return c.revokedReason === null;
    return c.revokedReason === null || c.revokedReason === "certificateHold";
  }).length;
}

function targetColumns(a: TargetInput, t: ResolvedTarget): Record<string, unknown> {
  return a.targetKind === "certificate"
    ? { target_kind: "certificate", certificate_id: t.certificates[0].certificateId, ca_name: t.certificates[0].caName, serial_hex: t.certificates[0].serialHex, card_label: null }
    : { target_kind: "card", certificate_id: null, ca_name: null, serial_hex: null, card_label: a.cardLabel!.trim() };
}

type TargetInput = { targetKind: "certificate" | "card"; caName?: string; serialHex?: string; cardLabel?: string };

/**
 * Inserts a request row with its audit record in one transaction: `check` resolves (and checks)
 * the target inside it. Maps the one-open-request index to ConflictError.
 */
async function insertRequest(
  db: Knex,
  op: Operator,
  a: TargetInput,
  columns: Record<string, unknown>,
  check: (trx: Knex.Transaction) => Promise<ResolvedTarget>,
): Promise<Row> {
  let target: Record<string, unknown> = {};
  try {
    return await db.transaction(async (trx) => {
      const t = await check(trx);
      target = targetColumns(a, t);
      const [row] = (await trx("revocation_requests")
        .insert({
          ...columns, ...target,
          application_id: t.applicationId, subscriber_id: t.subscriberId, lra_id: t.lraId, created_by: op.id,
        })
        .returning("*")) as Row[];
      if (row.state === "approved") await notifyApproved(trx);
      await appendAudit(trx, [{
        ...auditActor(op),
        action: row.emergency ? "revocation_request.emergency_created" : "revocation_request.created",
        objectType: "revocation_request",
        objectId: String(row.request_no),
        details: {
          state: row.state, target: row.target_kind, card: row.card_label ?? undefined,
          certificate: row.serial_hex ? `${row.ca_name}:${row.serial_hex}` : undefined,
          certificates: t.certificates.map((c) => `${c.caName}:${c.serialHex}`),
          channel: row.channel, reason: row.reason, emergency: Boolean(row.emergency), grounds: row.grounds,
          callerVerification: row.caller_verification ?? undefined,
          invalidityDate: row.invalidity_date ? new Date(row.invalidity_date as string).toISOString() : undefined,
          application: t.applicationNo ?? undefined,
        },
      }]);
      return row;
    });
  } catch (e) {
    throw await openRequestConflict(db, e, target);
  }
}

/**
 * `e` as the ConflictError naming the request in progress for the same target when it is the
 * one-open-request index refusing a second one (target: the certificate_id / card_label columns);
 * else `e` itself.
 */
async function openRequestConflict(db: Knex, e: unknown, target: Record<string, unknown>): Promise<unknown> {
  if ((e as { constraint?: string }).constraint !== "revocation_requests_one_open_per_target") return e;
  const open = await db("revocation_requests")
    .where(target.certificate_id ? { certificate_id: target.certificate_id } : { card_label: target.card_label })
    .whereIn("state", ["requested", "approved"]).where({ emergency: false }).first("request_no");
  return new ConflictError(
    `a revocation request for this target is already in progress (${open?.request_no ?? "?"})`,
    `この対象には処理中の失効申請があります（${open?.request_no ?? "?"}）`,
  );
}

/** Refuses a request that would change nothing (all already revoked, nothing on hold to release). */
function assertActionable(t: ResolvedTarget, reason: RevocationRequestReason): void {
  if (actionable(t, reason) > 0) return;
  throw new ConflictError(
    reason === "removeFromCRL" ? "no certificate of this target is on hold" : "every certificate of this target is already revoked",
    reason === "removeFromCRL" ? "この対象に一時停止中の証明書はありません" : "この対象の証明書はすべて失効済みです",
  );
}

/**
 * Files a revocation request (state requested) for one certificate or a whole card.
 * RA officers file for the subscriber at the RA (subscriber_ra) or on the RA's own initiative
 * (ra_initiative); LRA operators file for subscribers of their own association (subscriber_lra).
 * A second RA officer approves it (approveRevocationRequest).
 * @throws ValidationError (fields, Japanese messages); ForbiddenError (role, channel, another
 *   association's subscriber); NotFoundError (no such certificate/card); ConflictError (nothing to
 *   revoke, or a request for the target already in progress).
 */
export async function createRevocationRequest(db: Knex, op: Operator, input: unknown): Promise<Row> {
  const lra = isLraRole(op.role);
  if (!lra && !RA_ROLES.has(op.role)) throw new ForbiddenError(`role ${op.role} may not file revocation requests`, "失効申請を行う権限がありません");
  const a = parseRequestInput(requestSchema, input);
  const allowed: RevocationChannel[] = lra ? ["subscriber_lra"] : ["subscriber_ra", "ra_initiative"];
  if (!allowed.includes(a.channel)) {
    throw new ValidationError([{
      field: "channel",
      message: `channel ${a.channel} is not open to role ${op.role}${a.channel === "phone" ? " (phone requests use the emergency form)" : ""}`,
      messageJa: a.channel === "phone" ? "電話による申請は緊急失効の画面から登録してください。" : "この受付経路は選択できません。",
    }]);
  }
  return insertRequest(db, op, a, {
    state: "requested", channel: a.channel, reason: a.reason, invalidity_date: a.invalidityDate ?? null,
    grounds: a.grounds, emergency: false,
  }, async (trx) => {
    const t = await resolveRevocationTarget(trx, a);
    if (lra) assertScope(revocationRequestMachine, { lra_id: t.lraId, request_no: a.targetKind === "card" ? a.cardLabel : a.serialHex }, op);
    assertActionable(t, a.reason);
    return t;
  });
}

/**
 * The emergency path (HPKI-PROFILE §9.5): an RA officer takes a phone call (lost card) and the
 * target's certificates are put on hold (certificateHold) or revoked at once. The request is
 * created already approved (emergency = true, review_state = pending) — no second officer before
 * execution; the IA worker executes it on its next poll (≤ its interval, 5 s by default), and a
 * second officer reviews it afterwards (reviewEmergencyRevocation). `callerVerification` records
 * how the caller was identified (e.g. call-back to the registered number).
 * @throws as createRevocationRequest; ForbiddenError for roles other than RA officers.
 */
export async function createEmergencyRevocation(db: Knex, op: Operator, input: unknown): Promise<Row> {
  if (!RA_ROLES.has(op.role)) throw new ForbiddenError(`role ${op.role} may not take emergency revocations`, "緊急失効を受け付ける権限がありません");
  const a = parseRequestInput(emergencySchema, input);
  return insertRequest(db, op, a, {
    state: "approved", channel: "phone", reason: a.reason, invalidity_date: a.invalidityDate ?? null,
    grounds: a.grounds, emergency: true, caller_verification: a.callerVerification, review_state: "pending", approved_at: db.fn.now(),
  }, async (trx) => {
    const t = await resolveRevocationTarget(trx, a);
    assertActionable(t, a.reason);
    return t;
  });
}

/**
 * Approves a requested revocation: a second RA officer (ra_approver, never the creator — two-person
 * rule, guard and CHECK). The IA worker then executes it.
 * @throws ForbiddenError (role), ConflictError (own request; state changed: someone acted first;
 *   `expectedVersion` no longer current), NotFoundError.
 */
export async function approveRevocationRequest(db: Knex, op: Operator, id: number, opts: { expectedVersion?: number } = {}): Promise<Row> {
  return db.transaction(async (trx) => {
    const row = await applyTransition(trx, revocationRequestMachine, "approve", id, op, {
      patch: { approved_by: op.id, approved_at: trx.fn.now() }, expectedVersion: opts.expectedVersion,
    });
    await notifyApproved(trx);
    return row;
  });
}

/** Rejects a requested revocation with a reason (required). @throws ValidationError, ForbiddenError, ConflictError. */
export async function rejectRevocationRequest(db: Knex, op: Operator, id: number, reason: string, opts: { expectedVersion?: number } = {}): Promise<Row> {
  const r = reason?.normalize("NFC").trim();
  if (!r) throw new ValidationError([{ field: "reason", message: "give the reason", messageJa: "却下の理由を入力してください。" }]);
  return db.transaction((trx) => applyTransition(trx, revocationRequestMachine, "reject", id, op, {
    patch: { decision_reason: r }, details: { reason: r }, expectedVersion: opts.expectedVersion,
  }));
}

/**
 * Records the after-the-fact review of an executed emergency request by a second officer
 * (ra_approver ≠ creator): `confirmed`, or `questioned` with a note (then the RA follows up, e.g.
 * files a removeFromCRL request to release a hold). Audited as revocation_request.reviewed.
 * @throws ValidationError (outcome; a note is required for questioned), ForbiddenError,
 *   ConflictError (not an emergency request, already reviewed, not executed yet, own request).
 */
export async function reviewEmergencyRevocation(db: Knex, op: Operator, id: number, input: { outcome: string; note?: string }): Promise<Row> {
  const outcome = input.outcome as ReviewOutcome;
  const note = input.note?.normalize("NFC").trim() || null;
  const issues = [];
  if (!(outcome in REVIEW_OUTCOMES)) issues.push({ field: "outcome", message: "choose confirmed or questioned", messageJa: "確認結果を選択してください。" });
  if (outcome === "questioned" && !note) issues.push({ field: "note", message: "say what is in question", messageJa: "問題点を記入してください。" });
  if (note && note.length > 1000) issues.push({ field: "note", message: "at most 1000 characters", messageJa: "1000文字以内で入力してください。" });
  if (issues.length) throw new ValidationError(issues);
  return db.transaction((trx) => applyTransition(trx, revocationRequestMachine, "review", id, op, {
    patch: { review_state: outcome, reviewed_by: op.id, reviewed_at: trx.fn.now(), review_note: note },
    details: { review: outcome, note: note ?? undefined },
  }));
}

export interface RevocationRequestFilter {
  state?: string;
  /** Only emergency requests still waiting for their after-the-fact review. */
  reviewPending?: boolean;
  emergency?: boolean;
  /** Free text: request number, card label, licence number or the subscriber's name (search key: 異体字, width, spaces ignored). */
  text?: string;
  limit?: number;
}

/** Request rows with the names of the people involved and the subscriber's application. */
function requestRows(db: Knex): Knex.QueryBuilder {
  return db("revocation_requests as rr")
    .leftJoin("operators as c", "c.id", "rr.created_by")
    .leftJoin("operators as ap", "ap.id", "rr.approved_by")
    .leftJoin("operators as rv", "rv.id", "rr.reviewed_by")
    .leftJoin("applications as a", "a.id", "rr.application_id")
    .select("rr.*", "c.display_name as created_by_name", "ap.display_name as approved_by_name", "rv.display_name as reviewed_by_name",
      "a.application_no", "a.name_kanji");
}

/** Roles that may read revocation requests (the IA reads them through claim only). */
const READERS = new Set(["lra_reviewer", "lra_manager", "ra_officer", "ra_approver", "auditor", "admin"]);

/**
 * Revocation requests, newest first, with the creator/approver/reviewer names; an LRA operator
 * sees its own association's only. @throws ForbiddenError for roles that may not read them.
 */
export async function listRevocationRequests(db: Knex, op: Operator, f: RevocationRequestFilter = {}): Promise<Row[]> {
  return (await revocationRequestQuery(db, op, f).orderBy("rr.id", "desc").limit(Math.min(f.limit ?? 200, 1000))) as Row[];
}

/**
 * The filter of listRevocationRequests as a query with its columns but without order or limit
 * (the console pages it by "rr.id", src/registration/keyset.ts). Scope and permission as there.
 * @throws ForbiddenError for roles that may not read revocation requests.
 */
export function revocationRequestQuery(db: Knex, op: Operator, f: RevocationRequestFilter = {}): Knex.QueryBuilder {
  if (!READERS.has(op.role)) throw new ForbiddenError(`role ${op.role} may not read revocation requests`, "失効申請を閲覧する権限がありません");
  const q = requestRows(db);
  if (isLraRole(op.role)) q.where("rr.lra_id", op.lraId ?? -1);
  if (f.state) q.where("rr.state", f.state);
  if (f.reviewPending) q.where("rr.review_state", "pending");
  if (f.emergency !== undefined) q.where("rr.emergency", f.emergency);
  const text = f.text?.normalize("NFKC").trim();
  if (text) {
    const licence = canonicalRegistrationNumber(text);
    q.where((w) => {
      w.where("rr.request_no", text.toUpperCase()).orWhere("rr.card_label", text).orWhere("a.application_no", text.toUpperCase());
      nameMatches(w, "a.search_key", text);
      if (licence) w.orWhere("a.licence_number", licence);
    });
  }
  return q;
}

/**
 * One request with its target certificates as they are now. @throws NotFoundError (also for an
 * LRA operator asking for another association's request: ids leak nothing), ForbiddenError.
 */
export async function getRevocationRequest(db: Knex, op: Operator, id: number): Promise<{ request: Row; target: ResolvedTarget | null }> {
  if (!READERS.has(op.role)) throw new ForbiddenError(`role ${op.role} may not read revocation requests`, "失効申請を閲覧する権限がありません");
  const request = (await requestRows(db).where("rr.id", id).first()) as Row | undefined;
  if (!request || (isLraRole(op.role) && Number(request.lra_id) !== op.lraId)) {
    throw new NotFoundError(`revocation request ${id} not found`, `失効申請が見つかりません（${id}）`);
  }
  const target = await resolveRevocationTarget(db, {
    targetKind: request.target_kind as "certificate" | "card", caName: request.ca_name as string, serialHex: request.serial_hex as string, cardLabel: request.card_label as string,
  }).catch((e) => (e instanceof NotFoundError ? null : Promise.reject(e)));
  return { request, target };
}

/**
 * IA side: locks the oldest approved request no other worker holds (FOR UPDATE SKIP LOCKED),
 * emergency requests first, inside the caller's transaction, counting the attempt. Returns null
 * when the queue is empty. @throws ForbiddenError unless `op` is an IA operator.
 */
export async function claimApprovedRevocationRequest(trx: Knex.Transaction, op: Operator): Promise<Row | null> {
  if (op.role !== "ia_operator") throw new ForbiddenError(`role ${op.role} may not execute revocations`, "失効処理を行う権限がありません");
  const row = (await trx("revocation_requests").where({ state: "approved" })
    .orderBy([{ column: "emergency", order: "desc" }, { column: "id", order: "asc" }])
    .forUpdate().skipLocked().first()) as Row | undefined;
  if (!row) return null;
  await trx("revocation_requests").where({ id: row.id }).increment("attempts", 1);
  return row;
}

/** What the IA did to one certificate of a request: the revocation action, or why it was skipped. */
export interface RevocationResult {
  caName: string;
  serialHex: string;
  action?: string;
  skipped?: string;
}

/** IA side: marks a claimed request executed with the per-certificate results, in the caller's transaction. */
export async function completeRevocationRequest(trx: Knex.Transaction, op: Operator, id: number, results: RevocationResult[]): Promise<Row> {
  return applyTransition(trx, revocationRequestMachine, "execute", id, op, {
    patch: { executed_at: trx.fn.now(), executed_by: op.username, results: JSON.stringify(results), last_error: null },
    details: { results },
  });
}

/**
 * IA side: records an execution that failed (nothing was revoked: its transaction rolled back,
 * the claim's attempt count with it — so the attempt is counted here).
 */
export async function failRevocationRequest(db: Knex, op: Operator, id: number, error: string): Promise<Row> {
  return db.transaction((trx) => applyTransition(trx, revocationRequestMachine, "fail", id, op, {
    patch: { last_error: error.slice(0, 1000), attempts: trx.raw("attempts + 1") }, details: { error: error.slice(0, 300) },
  }));
}

/**
 * Puts a failed request back in the IA's queue (failed → approved; the IA worker executes it at
 * once on Postgres, else within its poll interval): an RA approver, after the cause of the
 * failure was fixed (see the machine for who may and why). The failure reason stays on the request
 * (shown as the previous attempt's error) until it is executed. `note` (optional, ≤ 1000
 * characters: what was fixed) goes into the audit record "revocation_request.retried" with the
 * error being retried and the attempts so far.
 * @throws ValidationError (note too long), ForbiddenError (role), ConflictError (not failed —
 *   someone retried first —, `expectedVersion` no longer current, or another request for the same
 *   target filed since is in progress), NotFoundError.
 */
export async function retryRevocationRequest(db: Knex, op: Operator, id: number, opts: { note?: string; expectedVersion?: number } = {}): Promise<Row> {
  const note = opts.note?.normalize("NFC").trim() || undefined;
  if (note && note.length > 1000) throw new ValidationError([{ field: "note", message: "at most 1000 characters", messageJa: "1000文字以内で入力してください。" }]);
  let target: Record<string, unknown> = {};
  try {
    return await db.transaction(async (trx) => {
      const before = (await trx("revocation_requests").where({ id }).first("certificate_id", "card_label", "last_error", "attempts")) as Row | undefined;
      target = { certificate_id: before?.certificate_id, card_label: before?.card_label };
      const row = await applyTransition(trx, revocationRequestMachine, "retry", id, op, {
        expectedVersion: opts.expectedVersion,
        details: { previousError: before?.last_error ?? undefined, attempts: Number(before?.attempts ?? 0), note },
      });
      await notifyApproved(trx);
      return row;
    });
  } catch (e) {
    throw await openRequestConflict(db, e, target);
  }
}

/**
 * IA side, Postgres only: LISTENs on REVOCATION_NOTIFY_CHANNEL on a dedicated connection (outside
 * the pool) and calls `onApproved` for each notification. Returns the means to close it.
 * @throws when the connection cannot be opened.
 */
export async function listenForApprovedRevocations(db: Knex, onApproved: () => void, onError?: (e: unknown) => void): Promise<ChannelListener> {
  return listenOnChannel(db, REVOCATION_NOTIFY_CHANNEL, () => onApproved(), onError);
}

/** A card (or a certificate not on a card) found by searchRevocationTargets. */
export interface RevocationTargetHit {
  cardLabel: string | null;
  applicationId: number | null;
  applicationNo: string | null;
  nameKanji: string | null;
  nameKana: string | null;
  /** Birth date (YYYY-MM-DD or a Date from the driver), for the emergency caller check. */
  birthDate: unknown;
  licenceNumber: string | null;
  subscriberId: string | null;
  certificates: Omit<TargetCertificate, "cardLabel">[];
}

/**
 * Finds issued certificates to revoke by card label, serial number, application number,
 * subscriber identifier, name (kanji or kana, by the stored search key: 異体字, width and spaces
 * ignored, name-search.ts), birth date (Western or 和暦) or licence number, grouped per card; at most 50 certificates. An
 * LRA operator finds its own association's subscribers only. @throws ForbiddenError.
 */
export async function searchRevocationTargets(db: Knex, op: Operator, query: string): Promise<RevocationTargetHit[]> {
  if (!READERS.has(op.role)) throw new ForbiddenError(`role ${op.role} may not search certificates`, "証明書を検索する権限がありません");
  const q = query.normalize("NFKC").trim();
  if (!q) return [];
  const serial = canonicalSerialHex(q);
  const licence = canonicalRegistrationNumber(q);
  const birthDate = canonicalDate(q);
  const rows = await db("certificates as c")
    .join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .joinRaw(`LEFT JOIN issuance_requests AS ir ON c.request_key = 'ir:' || ir.id::text || ':' || c.profile`)
    .leftJoin("applications as a", "a.id", "ir.application_id")
    .leftJoin("revocations as r", function () {
      this.on("r.certificate_id", "c.id").andOnNull("r.released_at");
    })
    .where("c.status", "issued")
    .where((w) => {
      w.where("c.card_label", q).orWhere("a.application_no", q).orWhere("a.subscriber_id", q);
      nameMatches(w, "a.search_key", q);
      if (serial) w.orWhere("c.serial_hex", serial);
      if (licence) w.orWhere("a.licence_number", licence);
      if (birthDate) w.orWhere("a.birth_date", birthDate);
    })
    .modify((b) => {
      if (isLraRole(op.role)) b.where("a.lra_id", op.lraId ?? -1);
    })
    .orderBy([{ column: "c.card_label" }, { column: "c.id" }])
    .limit(50)
    .select("c.id", "ca.name as ca_name", "c.serial_hex", "c.profile", "c.not_after", "c.card_label", "r.reason as revoked_reason",
      "a.id as application_id", "a.application_no", "a.name_kanji", "a.name_kana", "a.birth_date", "a.qualification", "a.licence_number", "a.subscriber_id");
  const hits = new Map<string, RevocationTargetHit>();
  for (const r of rows) {
    const key = r.card_label ? `card:${r.card_label}` : `cert:${r.id}`;
    const hit: RevocationTargetHit = hits.get(key) ?? {
      cardLabel: r.card_label ?? null, applicationId: r.application_id == null ? null : Number(r.application_id), applicationNo: r.application_no ?? null,
      nameKanji: r.name_kanji ?? null, nameKana: r.name_kana ?? null, birthDate: r.birth_date ?? null, licenceNumber: r.licence_number ?? null,
      subscriberId: r.subscriber_id ?? null, certificates: [],
    };
    hit.certificates.push({ certificateId: Number(r.id), caName: r.ca_name, serialHex: r.serial_hex, profile: r.profile, notAfter: new Date(r.not_after), revokedReason: r.revoked_reason ?? null });
    hits.set(key, hit);
  }
  return [...hits.values()];
}

/**
 * The auditor's view of revocations (issue 4 item 5): the latest revocations rows (holds,
 * releases, revocations, with the actor who wrote them) with the request that caused each, newest
 * first. @throws ForbiddenError for roles other than auditor, RA officers and admin.
 */
export async function listRecentRevocations(db: Knex, op: Operator, limit = 200): Promise<Row[]> {
  if (!["auditor", "admin", "ra_officer", "ra_approver"].includes(op.role)) {
    throw new ForbiddenError(`role ${op.role} may not read the revocation records`, "失効記録を閲覧する権限がありません");
  }
  return (await db("revocations as r")
    .join("certificate_authorities as ca", "ca.id", "r.ca_id")
    .leftJoin("certificates as c", "c.id", "r.certificate_id")
    .orderBy("r.revoked_at", "desc")
    .limit(Math.min(limit, 1000))
    .select("r.id", "ca.name as ca_name", "r.serial_hex", "r.reason", "r.revoked_at", "r.invalidity_date", "r.released_at", "r.actor",
      "c.card_label", "c.profile", "r.subject_ca_id")) as Row[];
}

/**
 * Files the card-wide revocation request of a card being replaced (issue 13 §3–§5), inside the
 * caller's transaction (a savepoint), or links the one already open or executed for the card with
 * the same reason: `approved` false leaves it for a second RA officer to approve (a loss or theft
 * reported at the desk: keyCompromise); true files it approved, for the IA worker (the replaced
 * card at the new card's handover: superseded or affiliationChanged — decided by the two people
 * who approved the replacement and its issuance). Returns null when no certificate of the card
 * would change (all already revoked or expired out).
 */
export async function fileReplacedCardRevocation(
  trx: Knex.Transaction,
  op: Operator,
  a: { cardLabel: string; reason: RevocationRequestReason; grounds: string; approved: boolean },
): Promise<Row | null> {
  const existing = (await trx("revocation_requests").where({ target_kind: "card", card_label: a.cardLabel, reason: a.reason })
    .whereIn("state", ["requested", "approved", "executed"]).orderBy("id", "desc").first()) as Row | undefined;
  if (existing) return existing;
  const t = await resolveRevocationTarget(trx, { targetKind: "card", cardLabel: a.cardLabel });
  if (actionable(t, a.reason) === 0) return null;
  const channel: RevocationChannel = a.approved ? "ra_initiative" : isLraRole(op.role) ? "subscriber_lra" : "subscriber_ra";
  return insertRequest(trx, op, { targetKind: "card", cardLabel: a.cardLabel }, {
    state: a.approved ? "approved" : "requested", channel, reason: a.reason, grounds: a.grounds, emergency: false,
    ...(a.approved ? { approved_at: trx.fn.now() } : {}),
  }, async () => t);
}
