/**
 * Application services shared by the LRA and RA consoles: intake, scanned documents, the
 * identity and licence checks, and review decisions. Each call is one transaction that writes
 * its audit record; role and scope are checked here, on the server, whatever the console showed.
 */
import { createHash, randomBytes } from "node:crypto";
import { fileTypeFromBuffer } from "file-type";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { applicationMachine, DOCUMENT_KINDS, type ApplicationTransition, type DocumentKind } from "./application.ts";
import { applicationColumns, applicationInputSchema } from "./application-input.ts";
import { ConflictError, ForbiddenError, NotFoundError, parseInput, ValidationError } from "./errors.ts";
import { identityCheckSchema } from "./identity-check.ts";
import { compareLicence } from "./licence-check.ts";
import { lookupLicence } from "./licence-register.ts";
import { applyTransition, assertScope, lockRow, type Row } from "./machine.ts";
import { requestedProfiles, withdrawIssuanceRequestOf } from "./issuance-requests.ts";
import { issuabilityProblems } from "./issuability.ts";
import { loadPolicies, type Policies } from "../policies.ts";
import type { CertificateProfile } from "../pki/profile.ts";
import type { HcRoleEntry } from "../pki/subject.ts";
import { auditActor, isLraRole, type Operator } from "./operator.ts";

/** Largest scanned document accepted, in bytes (a 300 dpi A4 colour JPEG is about 2–3 MB). */
export const MAX_DOCUMENT_BYTES = 10 * 1024 * 1024;
const ACCEPTED_MEDIA_TYPES = new Set(["application/pdf", "image/jpeg", "image/png"]);

export interface SubmitOptions {
  /** Token issued with the form: the same token submitted twice creates one application. */
  idempotencyKey?: string;
  /** RA intake only: desk (in person) or mail. LRA intake is always "lra". */
  channel?: "ra_desk" | "ra_mail";
  /** The previous application when this is a renewal (prefilled from it). */
  renewalOf?: number;
  /** Certificate profiles for the issuability dry run; default loadPolicies().profiles. */
  profiles?: ReadonlyMap<string, CertificateProfile>;
  /** A record replacing a card (renewal, reissue, change; card-replacement.ts): its links. */
  replacement?: ReplacementLinks;
}

/** The links of an application that replaces a subscriber's card (migration 0170). */
export interface ReplacementLinks {
  kind: "renewal" | "reissue" | "change";
  replacesApplicationId: number;
  replacesCardLabel: string;
  changeReason: string;
  /** Kept from the replaced record: the subject serialNumber does not change (HPKI-PROFILE §10.7). */
  subscriberId: string | null;
}

/**
 * Records a new application (state received) from form input, with its licence register check.
 * LRA roles take it for their own association; RA roles take it directly (desk or mail).
 * @returns the row; a repeated idempotencyKey returns the first submission's row unchanged.
 * @throws ValidationError (every field issue, Japanese messages); ConflictError when an open
 *   application exists for the same licence; ForbiddenError for other roles.
 */
export async function submitApplication(
  db: Knex,
  op: Operator,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  input: unknown,
  opts: SubmitOptions = {},
): Promise<Row> {
  const lra = isLraRole(op.role);
  if (!lra && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not take applications`, "申込を受け付ける権限がありません");
  }
  const a = parseInput(applicationInputSchema(hcRoles), input);
  // What is taken can be issued (issue 12 §1): the IA's subject/profile/lint, dry-run now.
  const columns = applicationColumns(a);
  assertIssuable(columns, { profiles: opts.profiles ?? deskPolicies().profiles, hcRoles });
  if (opts.idempotencyKey) {
    const prior = await findByIdempotencyKey(db, op, opts.idempotencyKey);
    if (prior) return prior;
  }
  try {
    return await db.transaction(async (trx) => {
      const licence_check = await licenceCheckFor(trx, { ...a });
      const [row] = (await trx("applications")
        .insert({
          ...columns,
          channel: lra ? "lra" : (opts.channel ?? "ra_desk"),
          lra_id: lra ? op.lraId : null,
          state: "received",
          idempotency_key: opts.idempotencyKey ?? null,
          renewal_of: opts.renewalOf ?? null,
          ...(opts.replacement ? {
            kind: opts.replacement.kind, replaces_application_id: opts.replacement.replacesApplicationId,
            replaces_card_label: opts.replacement.replacesCardLabel, change_reason: opts.replacement.changeReason,
            subscriber_id: opts.replacement.subscriberId,
          } : {}),
          licence_check: JSON.stringify(licence_check),
          created_by: op.id,
        })
        .returning("*")) as Row[];
      await appendAudit(trx, [{
        ...auditActor(op), action: "application.received", objectType: "application", objectId: String(row.application_no),
        details: {
          channel: row.channel, qualification: a.qualification, managerRole: a.managerRole ?? null, licenceCheck: licence_check.result,
          ...(opts.replacement ? { kind: opts.replacement.kind, replacesCard: opts.replacement.replacesCardLabel, changeReason: opts.replacement.changeReason } : {}),
        },
      }]);
      return row;
    });
  } catch (e) {
    const constraint = (e as { constraint?: string }).constraint;
    if (constraint === "applications_idempotency_key_unique" && opts.idempotencyKey) {
      const prior = await findByIdempotencyKey(db, op, opts.idempotencyKey);
      if (prior) return prior;
    }
    if (constraint === "applications_one_open_per_licence") {
      const open = (await db("applications").where({ qualification: a.qualification, licence_number: a.licenceNumber })
        .whereNotIn("state", ["lra_rejected", "ra_rejected", "withdrawn", "completed"]).first("id", "application_no", "lra_id")) as Row | undefined;
      throw new DuplicateApplicationError(a.qualification, a.licenceNumber, open
        ? { id: Number(open.id), applicationNo: String(open.application_no), lraId: open.lra_id == null ? null : Number(open.lra_id) }
        : undefined);
    }
    throw e;
  }
}

/**
 * 409: an open application exists for the same licence (one open application per licence,
 * migration 0008). `existing` names it, so the form can link to it (issue 12 §5); the route shows
 * the link only when the operator may open that application.
 */
export class DuplicateApplicationError extends ConflictError {
  override name = "DuplicateApplicationError";
  constructor(qualification: string, licenceNumber: string, readonly existing?: { id: number; applicationNo: string; lraId: number | null }) {
    super(
      `an application for ${qualification} licence ${licenceNumber} is already in progress${existing ? ` (${existing.applicationNo})` : ""}: duplicate application`,
      `この免許（${licenceNumber}）の申込はすでに受付中です${existing ? `（${existing.applicationNo}）` : ""}。重複申込は受け付けられません。`,
    );
  }
}

async function findByIdempotencyKey(db: Knex, op: Operator, key: string): Promise<Row | undefined> {
  const row = (await db("applications").where({ idempotency_key: key }).first()) as Row | undefined;
  if (row && Number(row.created_by) !== op.id) throw new ConflictError("this form token was used by another operator", "このフォームは別の担当者が送信済みです");
  return row;
}

/** The licence register comparison for an applicant, as stored in applications.licence_check. */
export async function licenceCheckFor(
  trx: Knex,
  a: { qualification: string; licenceNumber: string; licenceDate: string; nameKanji: string; nameKana: string; birthDate: string },
) {
  const registered = await lookupLicence(trx, a.qualification, a.licenceNumber);
  return {
    ...compareLicence(
      { qualification: a.qualification, registrationNumber: a.licenceNumber, registrationDate: a.licenceDate, nameKanji: a.nameKanji, nameKana: a.nameKana, birthDate: a.birthDate },
      registered,
    ),
    checkedAt: new Date().toISOString(),
  };
}

/** Re-runs the licence register check of a locked application row and stores it. */
async function refreshLicenceCheck(trx: Knex.Transaction, row: Row): Promise<Row> {
  const check = await licenceCheckFor(trx, {
    qualification: String(row.qualification), licenceNumber: String(row.licence_number), licenceDate: isoDate(row.licence_date),
    nameKanji: String(row.name_kanji), nameKana: String(row.name_kana), birthDate: isoDate(row.birth_date),
  });
  await trx("applications").where({ id: row.id }).update({ licence_check: JSON.stringify(check) });
  return { ...row, licence_check: check };
}

/** A DATE column as YYYY-MM-DD (pg returns a local-midnight Date, other drivers a string). */
export function isoDate(v: unknown): string {
  if (v instanceof Date) {
    return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, "0")}-${String(v.getDate()).padStart(2, "0")}`;
  }
  return String(v).slice(0, 10);
}

export interface DocumentUpload {
  kind: string;
  filename: string;
  bytes: Buffer;
}

/**
 * Stores a scanned document of an application. The type is sniffed from the bytes (PDF, JPEG or
 * PNG only; the browser's claim is ignored), size ≤ MAX_DOCUMENT_BYTES, SHA-256 kept. The same
 * file twice is stored once (returns the first). Documents are added while the application is
 * under review, and the signed receipt at handover.
 * @throws ValidationError for an unknown kind, an empty/oversize file or an unaccepted type.
 */
export async function addDocument(db: Knex, op: Operator, applicationId: number, doc: DocumentUpload): Promise<{ id: number; sha256: string; mediaType: string }> {
  const issues = [];
  if (!(doc.kind in DOCUMENT_KINDS)) issues.push({ field: "kind", message: "unknown document kind", messageJa: "書類の種類を選択してください。" });
  if (doc.bytes.length === 0) issues.push({ field: "file", message: "empty file", messageJa: "ファイルが空です。" });
  if (doc.bytes.length > MAX_DOCUMENT_BYTES) {
    issues.push({ field: "file", message: `file larger than ${MAX_DOCUMENT_BYTES / 1048576} MiB`, messageJa: `ファイルは ${MAX_DOCUMENT_BYTES / 1048576} MB 以下にしてください。` });
  }
  const sniffed = doc.bytes.length ? await fileTypeFromBuffer(doc.bytes) : undefined;
  if (doc.bytes.length && !(sniffed && ACCEPTED_MEDIA_TYPES.has(sniffed.mime))) {
    issues.push({ field: "file", message: "only PDF, JPEG or PNG files are accepted (checked from the content)", messageJa: "PDF・JPEG・PNG のファイルのみ受け付けます（内容から判定）。" });
  }
  if (issues.length) throw new ValidationError(issues);
  if (!isLraRole(op.role) && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not add documents`, "書類を登録する権限がありません");
  }
  const sha256 = createHash("sha256").update(doc.bytes).digest();
  // Kept as the uploader named it (NFC), except path separators and what text-rules.ts refuses
  // (controls, bidi overrides such as "報告\u202Efdp.exe", invisible characters): "_".
  const filename = [...doc.filename.normalize("NFC").replace(/[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029/\\]/gu, "_")].slice(0, 200).join("") || "document";
  return db.transaction(async (trx) => {
    const app = await lockRow(trx, applicationMachine, applicationId, op);
    const open = doc.kind === "signed_receipt" ? ["shipped", "handed_over"] : ["received", "returned_to_lra", "forwarded"];
    if (!open.includes(app.state)) {
      throw new ConflictError(`documents cannot be added to an application in state ${app.state}`, `この状態（${applicationMachine.stateJa[app.state as keyof typeof applicationMachine.stateJa]}）の申込には書類を追加できません`);
    }
    const existing = await trx("application_documents").where({ application_id: app.id, sha256 }).first();
    if (existing) return { id: Number(existing.id), sha256: sha256.toString("hex"), mediaType: existing.media_type };
    const [row] = await trx("application_documents")
      .insert({ application_id: app.id, kind: doc.kind, filename, media_type: sniffed!.mime, size_bytes: doc.bytes.length, sha256, content: doc.bytes, uploaded_by: op.id })
      .returning(["id"]);
    await appendAudit(trx, [{
      ...auditActor(op), action: "application.document_added", objectType: "application", objectId: String(app.application_no),
      details: { documentId: Number(row.id), kind: doc.kind, mediaType: sniffed!.mime, sizeBytes: doc.bytes.length, sha256: sha256.toString("hex") },
    }]);
    return { id: Number(row.id), sha256: sha256.toString("hex"), mediaType: sniffed!.mime };
  });
}

/** Roles that may see scanned documents (the IA never needs them). */
const DOCUMENT_READERS = new Set(["lra_reviewer", "lra_manager", "ra_officer", "ra_approver", "auditor"]);

/**
 * One scanned document with its bytes, for inline display. @throws ForbiddenError for roles that
 * may not see documents or an LRA operator of another association; NotFoundError.
 */
export async function getDocument(db: Knex, op: Operator, documentId: number): Promise<{ filename: string; mediaType: string; content: Buffer; sha256: string; applicationId: number }> {
  if (!DOCUMENT_READERS.has(op.role)) throw new ForbiddenError(`role ${op.role} may not see application documents`, "申込書類を閲覧する権限がありません");
  const d = await db("application_documents as d").join("applications as a", "a.id", "d.application_id")
    .where("d.id", documentId).first("d.*", "a.lra_id", "a.application_no");
  if (!d) throw new NotFoundError(`document ${documentId} not found`, "書類が見つかりません");
  assertScope(applicationMachine, d, op);
  return { filename: d.filename, mediaType: d.media_type, content: Buffer.from(d.content), sha256: Buffer.from(d.sha256).toString("hex"), applicationId: Number(d.application_id) };
}

/**
 * Records the identity check (本人確認): document type, number (for a マイナンバーカード at most
 * its last 4 digits, never the 個人番号: identity-check.ts), expiry (must not be past) and
 * whether the photo matched the person at the desk. Allowed while the application is under review.
 */
export async function recordIdentityCheck(db: Knex, op: Operator, applicationId: number, input: unknown): Promise<Row> {
  const c = parseInput(identityCheckSchema, input);
  const today = new Date().toISOString().slice(0, 10);
  const issues = [];
  if (c.expiryDate < today) issues.push({ field: "expiryDate", message: "the identity document has expired", messageJa: "本人確認書類の有効期限が切れています。" });
  if (c.method === "face_to_face" && !c.photoMatches) issues.push({ field: "photoMatches", message: "confirm that the photo matches the applicant", messageJa: "顔写真と本人の照合を確認してください。" });
  if (issues.length) throw new ValidationError(issues);
  if (!isLraRole(op.role) && op.role !== "ra_officer" && op.role !== "ra_approver") throw new ForbiddenError(`role ${op.role} may not record identity checks`, "本人確認を記録する権限がありません");
  return db.transaction(async (trx) => {
    const app = await lockRow(trx, applicationMachine, applicationId, op);
    const reviewing = isLraRole(op.role) ? ["received"] : ["received", "forwarded"];
    if (!reviewing.includes(app.state)) throw new ConflictError(`application ${app.application_no} is not under review`, `申込 ${app.application_no} は審査中ではありません`);
    const identity = { ...c, checkedBy: op.username, checkedRole: op.role, checkedAt: new Date().toISOString() };
    const [row] = (await trx("applications").where({ id: app.id }).update({ identity_check: JSON.stringify(identity), version: app.version + 1, updated_at: trx.fn.now() }).returning("*")) as Row[];
    await appendAudit(trx, [{
      ...auditActor(op), action: "application.identity_checked", objectType: "application", objectId: String(app.application_no),
      details: { documentType: c.documentType, method: c.method, expiryDate: c.expiryDate },
    }]);
    return row;
  });
}

/** Review decisions the consoles offer. Reasons are required to refuse, return or withdraw. */
export type Decision = Extract<ApplicationTransition, "lra_approve" | "lra_reject" | "lra_resubmit" | "ra_approve" | "ra_reject" | "ra_return" | "withdraw">;
const NEEDS_REASON: ReadonlySet<Decision> = new Set(["lra_reject", "ra_reject", "ra_return", "withdraw"]);

/**
 * Takes a review decision on an application. Approvals re-run the licence register check first
 * (the register may have changed since intake) and need the evidence the guards list. An LRA
 * approval puts the application into its association's open LRA batch; an RA approval assigns
 * the subscriber identifier (subject serialNumber; kept from the previous application on renewal).
 * @throws ForbiddenError, ConflictError (state changed: another officer acted), ValidationError.
 */
export async function decideApplication(
  db: Knex,
  op: Operator,
  applicationId: number,
  decision: Decision,
  opts: { reason?: string; expectedVersion?: number } = {},
): Promise<Row> {
  const reason = opts.reason?.normalize("NFC").trim();
  if (NEEDS_REASON.has(decision) && !reason) {
    throw new ValidationError([{ field: "reason", message: "give the reason", messageJa: "理由を入力してください。" }]);
  }
  return db.transaction(async (trx) => {
    const patch: Record<string, unknown> = { decision_reason: reason ?? null };
    if (decision === "lra_approve" || decision === "ra_approve") {
      const row = await lockRow(trx, applicationMachine, applicationId, op);
      if (applicationMachine.transitions[decision].from.includes(row.state as never)) await refreshLicenceCheck(trx, row);
      if (decision === "lra_approve" && isLraRole(op.role)) patch.lra_batch_id = await openLraBatch(trx, op);
      if (decision === "ra_approve") {
        patch.subscriber_id = await subscriberIdFor(trx, row);
        // Approved for issuance means issuable: the dry run again, with the subscriber identifier
        // now assigned and the data as it stands (issue 12 §1).
        assertIssuable({ ...row, subscriber_id: patch.subscriber_id }, deskPolicies());
      }
    }
    if (decision === "withdraw") patch.lra_batch_id = null;
    const row = await applyTransition(trx, applicationMachine, decision, applicationId, op, { patch, expectedVersion: opts.expectedVersion, details: reason ? { reason } : {} });
    if (decision === "withdraw") await withdrawIssuanceRequestOf(trx, op, applicationId);
    return row;
  });
}

let cachedPolicies: Policies | undefined;
/** The deployment's profiles and hcRole table (policies/), read once per process like the IA's. */
export function deskPolicies(): Policies {
  return (cachedPolicies ??= loadPolicies());
}

/**
 * Throws ValidationError naming each form field (ja/en) that would make issuance of the
 * requested profiles fail at the IA (issuability.ts); returns when every profile is issuable.
 */
export function assertIssuable(
  row: Record<string, unknown>,
  policies: { profiles: ReadonlyMap<string, CertificateProfile>; hcRoles: ReadonlyMap<string, HcRoleEntry> },
): void {
  const problems = issuabilityProblems(row, requestedProfiles(row), policies);
  if (problems.length) {
    throw new ValidationError(
      problems.map(({ field, message, messageJa }) => ({ field, message, messageJa })),
      `the certificates could not be issued from this application: ${problems.map((p) => p.message).join("; ")}`,
      `この申込内容では証明書を発行できません：${problems.map((p) => p.messageJa).join("／")}`,
    );
  }
}

/**
 * The association's open LRA batch, created on first use. Two approvals racing to create it meet
 * at the partial unique index (one open batch per association): the loser's INSERT … ON CONFLICT
 * DO NOTHING waits for the winner's commit and then reads the winner's batch.
 */
async function openLraBatch(trx: Knex.Transaction, op: Operator): Promise<number> {
  const open = await trx("lra_batches").where({ lra_id: op.lraId, state: "open" }).first("id");
  if (open) return Number(open.id);
  const lra = await trx("lras").where({ id: op.lraId }).first("code");
  const batchNo = `L${lra.code}-${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(3).toString("hex").toUpperCase()}`;
  const inserted = await trx.raw(
    `INSERT INTO lra_batches (batch_no, lra_id, state, created_by) VALUES (?, ?, 'open', ?)
     ON CONFLICT (lra_id) WHERE state = 'open' DO NOTHING RETURNING id`,
    [batchNo, op.lraId, op.id],
  );
  if (inserted.rows.length) {
    await appendAudit(trx, [{ ...auditActor(op), action: "lra_batch.opened", objectType: "lra_batch", objectId: batchNo }]);
    return Number(inserted.rows[0].id);
  }
  return Number((await trx("lra_batches").where({ lra_id: op.lraId, state: "open" }).first("id")).id);
}

/** CA-assigned subscriber identifier: kept across renewals, otherwise "HP" + 8 digits of the row id. */
async function subscriberIdFor(trx: Knex.Transaction, row: Row): Promise<string> {
  if (row.subscriber_id) return String(row.subscriber_id);
  if (row.renewal_of) {
    const prev = await trx("applications").where({ id: row.renewal_of }).first("subscriber_id");
    if (prev?.subscriber_id) return String(prev.subscriber_id);
  }
  return `HP${String(row.id).padStart(8, "0")}`;
}
