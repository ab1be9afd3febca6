/**
 * The application pages shared by the LRA and RA consoles (mounted by both): search, intake form
 * (利用申込書), detail with the licence check field by field, identity check, scanned documents
 * (upload and inline view) and review decisions. Every write goes through a pipeline service,
 * which checks role, scope and state again on the server; the pages only offer what
 * availableTransitions allows the signed-in operator.
 *
 * JSON (Accept: application/json), relative to the console base (/lra or /ra):
 *   GET  /applications?q=&state=            → {applications: [summary…]}
 *   GET  /applications/new                  → {formToken, qualifications, managerRoles, channels}
 *   POST /applications                      → 201 {application}  (form fields + formToken [+ channel])
 *   GET  /applications/:id                  → {application, documents, actions}
 *   POST /applications/:id/documents        → 201 {document: {id, sha256, mediaType}}  (multipart kind, file)
 *   GET  /documents/:id                     → the bytes (sniffed type, inline, sandboxed; ?download=1: attachment)
 *   POST /applications/:id/identity-check   → {application}
 *   POST /applications/:id/decision         → {application}  ({decision, reason?, version?})
 */
import { randomBytes } from "node:crypto";
import type { Request, Response, Router } from "express";
import multer from "multer";
import { unstorableRequestError } from "../input-guard.ts";
import { z } from "zod";
import { applicationMachine, DOCUMENT_KINDS, requiredDocuments } from "../../pipeline/application.ts";
import {
  addDocument, decideApplication, getDocument, MAX_DOCUMENT_BYTES, recordIdentityCheck, submitApplication, type Decision,
} from "../../pipeline/applications.ts";
import { jaMessage, NotFoundError, parseInput, ValidationError } from "../../pipeline/errors.ts";
import type { LicenceCheck } from "../../pipeline/licence-check.ts";
import { availableTransitions, type Row } from "../../pipeline/machine.ts";
import { isLraRole, type Operator, type OperatorRole } from "../../pipeline/operator.ts";
import type { HcRoleCode } from "../../pki/hcrole-table.ts";
import { safeNextPath } from "../auth/login.ts";
import type { Lang } from "../i18n.ts";
import {
  applicationJson, applicationSummaryJson, displayDate, displayDateTime, displaySize, documentJson, jsonColumn, stateBadge,
} from "./application-format.ts";
import { listDocuments, lraNames, readApplication, searchApplications, SEARCH_LIMIT } from "./application-queries.ts";
import type { ConsoleKit } from "./kit.ts";

/** The review decisions POST /applications/:id/decision accepts (decideApplication's Decision). */
export const DECISIONS = ["lra_approve", "lra_reject", "lra_resubmit", "ra_approve", "ra_reject", "ra_return", "withdraw"] as const satisfies readonly Decision[];
const DESTRUCTIVE: ReadonlySet<string> = new Set(["lra_reject", "ra_reject", "ra_return", "withdraw"]);
const APPROVALS: ReadonlySet<string> = new Set(["lra_approve", "ra_approve"]);

export interface ApplicationRoutesOptions {
  /** The hcRole code table (loadPolicies().hcRoles): qualification and manager-role choices. */
  hcRoles: ReadonlyMap<string, HcRoleCode>;
  /** Roles that may read the pages (the console's roles and the auditor). */
  readers: readonly OperatorRole[];
  /** Roles that may take applications and act on them (the services check again). */
  writers: readonly OperatorRole[];
  /** RA: intake asks for the channel (desk or mail); LRA intake is always channel "lra". */
  directIntake: boolean;
  /** Console-specific additions to the detail page (view data only, e.g. the issuance request). */
  detailExtras?(req: Request, app: Row): Promise<Record<string, unknown>>;
}

const IDENTITY_DOCUMENT_TYPES = ["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"] as const;
const LICENCE_FIELDS = ["qualification", "registrationNumber", "registrationDate", "nameKanji", "nameKana", "birthDate"] as const;

const decisionSchema = z.object({
  decision: z.enum(DECISIONS),
  reason: z.string().max(1000).optional(),
  version: z.union([z.number(), z.string().regex(/^\d+$/)]).optional().transform((v) => (v === undefined || v === "" ? undefined : Number(v))),
});

const FORM_TOKEN = /^[A-Za-z0-9_-]{16,100}$/;
const intakeExtrasSchema = z.object({
  formToken: z.string().regex(FORM_TOKEN, jaMessage("invalid form token: reload the form and submit again", "フォームを再読み込みしてから送信してください。")).optional(),
  channel: z.enum(["ra_desk", "ra_mail"]).optional(),
});

/** A new one-time form token: the idempotency key of one intake form. */
export function newFormToken(): string {
  return randomBytes(18).toString("base64url");
}

/** The numeric id route parameter `name`; NotFoundError when it is not a positive integer. */
export function idParam(req: Request, name = "id"): number {
  const raw = req.params[name];
  const n = typeof raw === "string" && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new NotFoundError();
  return n;
}

/** A query-string value as one string ("" when absent or repeated). */
export function queryText(req: Request, name: string): string {
  const v = req.query[name];
  return typeof v === "string" ? v.slice(0, 200) : "";
}

/**
 * Sends `json` to JSON clients, else renders `view` with `json` plus the page data of `page()`.
 * Keeps the API shapes free of page-only fields.
 */
export async function respond(
  kit: ConsoleKit,
  req: Request,
  res: Response,
  view: string,
  json: Record<string, unknown>,
  page: () => Promise<Record<string, unknown>> | Record<string, unknown>,
  opts: { status?: number; title?: { en: string; ja: string } } = {},
): Promise<void> {
  if (kit.wantsJson(req)) kit.render(res, view, json, { status: opts.status });
  else kit.render(res, view, { ...json, ...(await page()) }, opts);
}

/** After a successful form POST: JSON body for API clients, else flash + 303 redirect. */
export function done(
  kit: ConsoleKit,
  req: Request,
  res: Response,
  json: Record<string, unknown>,
  redirectTo: string,
  flash?: { message: string; messageJa: string },
  status = 200,
): void {
  if (kit.wantsJson(req)) {
    kit.render(res, "", json, { status });
    return;
  }
  if (flash) kit.flash(req, "success", flash.message, flash.messageJa);
  res.redirect(303, redirectTo);
}

const upload = multer({
  storage: multer.memoryStorage(),
  // RFC 7578 §4.2: browsers send the file name as raw UTF-8 in filename="…"; busboy's default
  // (latin1) turned 免許証の写し.pdf into mojibake. filename*=UTF-8''… (RFC 5987) is decoded too.
  defParamCharset: "utf8",
  limits: { fileSize: MAX_DOCUMENT_BYTES, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 25 },
}).single("file");

/**
 * Parses a multipart upload of one file (field "file", at most MAX_DOCUMENT_BYTES) into req.file
 * and req.body. Limits broken become a ValidationError (400, with the size limit in the message),
 * so the form is shown again and nothing is stored.
 */
export function receiveUpload(req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    upload(req, res, (err: unknown) => {
      if (!err) {
        const bad = unstorableRequestError(req, { body: true });
        if (bad) return reject(bad);
        return resolve();
      }
      const e = err as { name?: string; code?: string; message?: string };
      const mb = MAX_DOCUMENT_BYTES / 1048576;
      if (e.name !== "MulterError") {
        // busboy's parse errors (no boundary, malformed part header, unexpected end of form…) and
        // a body that is not multipart at all: the client's fault, answered 400 (issue 10 §7).
        return reject(new ValidationError([{ field: "file", message: `The upload could not be read as multipart/form-data (${e.message ?? "malformed"}).`, messageJa: "アップロードされた内容を読み取れませんでした。ファイルを選び直して再度送信してください。" }]));
      }
      reject(new ValidationError([
        e.code === "LIMIT_FILE_SIZE"
          ? { field: "file", message: `The file is larger than ${mb} MB. Scan at a lower resolution or split it.`, messageJa: `ファイルが大きすぎます。${mb} MB 以下にしてください（解像度を下げるか分割してください）。` }
          : { field: "file", message: `Upload one file at a time (field "file"): ${e.code}.`, messageJa: "ファイルは1件ずつ「ファイル」欄から送信してください。" },
      ]));
    });
  });
}

function choiceLists(hcRoles: ReadonlyMap<string, HcRoleCode>) {
  const all = [...hcRoles.values()];
  const pick = (kind: HcRoleCode["kind"]) => all.filter((c) => c.kind === kind).map((c) => ({ code: c.code, ja: c.ja }));
  return { qualifications: pick("national-qualification"), managerRoles: pick("manager") };
}

/** Mounts the shared application routes on a console router (see the module comment). */
export function mountApplicationRoutes(router: Router, kit: ConsoleKit, opts: ApplicationRoutesOptions): void {
  const { deps } = kit;
  const db = deps.db;
  const read = kit.requireRole(...opts.readers);
  const write = kit.requireRole(...opts.writers);
  const choices = choiceLists(opts.hcRoles);
  const hcJa = (code: unknown) => (code == null ? "" : (opts.hcRoles.get(String(code))?.ja ?? String(code)));
  const lang = (req: Request): Lang => req.lang ?? "ja";
  const channels = opts.directIntake ? ["ra_desk", "ra_mail"] : ["lra"];

  const formPage = (req: Request, formToken: string, values: Record<string, unknown> = {}) => {
    const l = lang(req);
    const selected = (v: unknown) => (x: { code: string; ja: string }) => ({ ...x, label: l === "ja" ? `${x.ja}（${x.code}）` : x.code, selected: x.code === v });
    return {
      formToken,
      directIntake: opts.directIntake,
      maxDocumentMb: MAX_DOCUMENT_BYTES / 1048576,
      qualificationOptions: choices.qualifications.map(selected(values.qualification)),
      managerRoleOptions: choices.managerRoles.map(selected(values.managerRole)),
      channelOptions: channels.map((c) => ({ value: c, labelKey: `app.channel.${c}`, selected: (values.channel ?? "ra_desk") === c })),
      requestSignChecked: values.requestSign === undefined ? !Object.keys(values).length : Boolean(values.requestSign),
      requestAuthChecked: values.requestAuth === undefined ? !Object.keys(values).length : Boolean(values.requestAuth),
      requestEncChecked: Boolean(values.requestEnc),
    };
  };

  router.get("/applications", read, async (req, res) => {
    const op = kit.operator(req);
    const q = queryText(req, "q");
    const state = queryText(req, "state");
    const rows = await searchApplications(db, op, { q, state });
    const applications = rows.map(applicationSummaryJson);
    await respond(kit, req, res, "applications", { applications }, async () => {
      const l = lang(req);
      const lras = await lraNames(db);
      return {
        q,
        state,
        canTake: opts.writers.includes(op.role),
        truncated: rows.length >= SEARCH_LIMIT,
        stateOptions: applicationMachine.states.map((s) => ({ value: s, label: stateBadge(applicationMachine, s, l).label, selected: s === state })),
        rows: rows.map((r) => ({
          id: Number(r.id),
          applicationNo: r.application_no,
          href: kit.url(`/applications/${Number(r.id)}`),
          nameKanji: r.name_kanji,
          nameKana: r.name_kana,
          qualification: hcJa(r.qualification),
          licenceNumber: r.licence_number,
          licence: licenceBadge(jsonColumn<LicenceCheck>(r.licence_check)?.result),
          badge: stateBadge(applicationMachine, String(r.state), l),
          origin: r.lra_id == null ? { key: `app.channel.${r.channel}` } : { name: lras.get(Number(r.lra_id))?.name ?? "" },
          received: displayDateTime(r.created_at, l),
        })),
      };
    }, { title: { en: "Applications", ja: "申込一覧" } });
  });

  router.get("/applications/new", write, async (req, res) => {
    const formToken = newFormToken();
    await respond(kit, req, res, "application-new", { formToken, ...choices, channels }, () => formPage(req, formToken), { title: { en: "New application", ja: "利用申込の受付" } });
  });

  router.post("/applications", write, async (req, res) => {
    const op = kit.operator(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!kit.wantsJson(req)) {
      const token = typeof body.formToken === "string" && FORM_TOKEN.test(body.formToken) ? body.formToken : newFormToken();
      kit.formView(res, "application-new", formPage(req, token, body));
    }
    const extras = parseInput(intakeExtrasSchema, { formToken: body.formToken || undefined, channel: opts.directIntake ? body.channel || undefined : undefined });
    const repeated = extras.formToken ? Boolean(await db("applications").where({ idempotency_key: extras.formToken }).first("id")) : false;
    const row = await submitApplication(db, op, opts.hcRoles, body, { idempotencyKey: extras.formToken, channel: extras.channel });
    const application = applicationJson(row);
    const href = kit.url(`/applications/${Number(row.id)}`);
    if (!kit.wantsJson(req)) {
      kit.flash(req, repeated ? "info" : "success",
        repeated ? `This form was already submitted: application ${row.application_no}.` : `Application ${row.application_no} received. Upload the scanned documents and record the identity check.`,
        repeated ? `この申込は送信済みです（${row.application_no}）。` : `申込 ${row.application_no} を受け付けました。書類の登録と本人確認を行ってください。`);
      res.redirect(303, href);
      return;
    }
    kit.render(res, "", { application }, { status: repeated ? 200 : 201 });
  });

  /** View data of the detail page (also the form view of its POSTs). */
  const detailPage = async (req: Request, op: Operator, app: Row, docs: Row[]) => {
    const l = lang(req);
    const state = String(app.state);
    const writer = opts.writers.includes(op.role);
    const licence = jsonColumn<LicenceCheck & { checkedAt?: string }>(app.licence_check);
    const identity = jsonColumn<Record<string, unknown>>(app.identity_check);
    const actions = availableDecisions(app, op);
    const present = new Set(docs.map((d) => String(d.kind)));
    const readiness = { identity: Boolean(identity?.checkedAt), licence: licence?.result === "match", documents: requiredDocuments(app.manager_role != null).every((k) => present.has(k)) };
    const ready = { ...readiness, all: readiness.identity && readiness.licence && readiness.documents };
    const reviewing = isLraRole(op.role) ? ["received"] : ["received", "forwarded"];
    const docsOpen = ["received", "returned_to_lra", "forwarded"].includes(state);
    const lras = app.lra_id == null ? undefined : await lraNames(db);
    return {
      app: {
        ...applicationJson(app),
        badge: stateBadge(applicationMachine, state, l),
        birthDateText: displayDate(app.birth_date, l),
        licenceDateText: displayDate(app.licence_date, l),
        createdText: displayDateTime(app.created_at, l),
        updatedText: displayDateTime(app.updated_at, l),
        qualificationText: hcJa(app.qualification),
        managerRoleText: hcJa(app.manager_role),
        channelKey: `app.channel.${app.channel}`,
        lraName: lras?.get(Number(app.lra_id))?.name ?? null,
      },
      licence: licence && {
        result: licence.result,
        badge: licenceBadge(licence.result),
        checkedText: displayDateTime(licence.checkedAt, l),
        rows: LICENCE_FIELDS.map((f) => {
          const x = licence.fields.find((y) => y.field === f);
          const show = (v: string | null | undefined) => (v == null ? null : f === "qualification" ? hcJa(v) : f.endsWith("Date") ? displayDate(v, l) : v);
          return { field: f, labelKey: `app.licence.${f}`, applied: show(x?.applied), registered: show(x?.registered), match: Boolean(x?.match) };
        }),
      },
      identity: identity && {
        ...identity,
        documentTypeKey: `app.idType.${identity.documentType}`,
        methodKey: `app.idMethod.${identity.method}`,
        expiryText: displayDate(identity.expiryDate, l),
        checkedText: displayDateTime(identity.checkedAt, l),
      },
      canIdentity: writer && reviewing.includes(state),
      identityTypes: IDENTITY_DOCUMENT_TYPES.map((t) => ({ value: t, labelKey: `app.idType.${t}` })),
      docs: docs.map((d) => {
        const j = documentJson(d, kit.base);
        const kind = DOCUMENT_KINDS[d.kind as keyof typeof DOCUMENT_KINDS];
        return {
          ...j,
          kindText: l === "ja" ? kind?.ja : kind?.en,
          isImage: String(d.media_type).startsWith("image/"),
          sizeText: displaySize(Number(d.size_bytes)),
          shaShort: String(j.sha256).slice(0, 16),
          uploadedText: displayDateTime(d.created_at, l),
        };
      }),
      requiredDocs: requiredDocuments(app.manager_role != null).map((k) => ({ kind: k, text: l === "ja" ? DOCUMENT_KINDS[k].ja : DOCUMENT_KINDS[k].en, present: present.has(k) })),
      canUpload: writer && docsOpen,
      uploadUrl: `${kit.url(`/applications/${Number(app.id)}/documents`)}?_csrf=`,
      decisionUrl: kit.url(`/applications/${Number(app.id)}/decision`),
      identityUrl: kit.url(`/applications/${Number(app.id)}/identity-check`),
      listUrl: kit.url("/applications"),
      ready,
      showReadiness: actions.some((a) => APPROVALS.has(a)),
      identityDefaults: { method: isLraRole(op.role) || app.channel === "ra_desk" ? "face_to_face" : "mail_copies" },
      maxDocumentMb: MAX_DOCUMENT_BYTES / 1048576,
      documentKinds: Object.entries(DOCUMENT_KINDS).filter(([k]) => k !== "signed_receipt").map(([k, v]) => ({ value: k, text: l === "ja" ? v.ja : v.en })),
      // Approvals stay possible when a check is missing (the service re-checks and names what is
      // missing), but are then not the primary action.
      approve: actions.filter((a) => !DESTRUCTIVE.has(a)).map((a, i) => ({ decision: a, labelKey: `app.decision.${a}`, primary: i === 0 && (!APPROVALS.has(a) || ready.all) })),
      refuse: actions.filter((a) => DESTRUCTIVE.has(a)).map((a) => ({ decision: a, labelKey: `app.decision.${a}` })),
      ...(opts.detailExtras ? await opts.detailExtras(req, app) : {}),
    };
  };

  /**
   * The decisions `op` may take on `app` now (buttons and `actions`). An LRA application still
   * under LRA review is not offered to the RA (the machine's guard would refuse it anyway).
   */
  const availableDecisions = (app: Row, op: Operator): Decision[] =>
    availableTransitions(applicationMachine, String(app.state), op)
      .filter((t): t is Decision => (DECISIONS as readonly string[]).includes(t))
      .filter((t) => !(app.channel === "lra" && app.state === "received" && (t === "ra_approve" || t === "ra_reject")));

  const title = (app: Row) => ({ en: `Application ${app.application_no}`, ja: `申込 ${app.application_no}` });

  /** Loads the application (scope-checked) and declares the detail page as the form view. */
  const loadForForm = async (req: Request, res: Response): Promise<{ op: Operator; app: Row; id: number }> => {
    const op = kit.operator(req);
    const id = idParam(req);
    const app = await readApplication(db, op, id);
    if (!kit.wantsJson(req)) kit.formView(res, "application", await detailPage(req, op, app, await listDocuments(db, id)));
    return { op, app, id };
  };

  router.get("/applications/:id", read, async (req, res) => {
    const op = kit.operator(req);
    const app = await readApplication(db, op, idParam(req));
    const docs = await listDocuments(db, Number(app.id));
    await respond(
      kit, req, res, "application",
      { application: applicationJson(app), documents: docs.map((d) => documentJson(d, kit.base)), actions: availableDecisions(app, op) },
      () => detailPage(req, op, app, docs),
      { title: title(app) },
    );
  });

  router.post("/applications/:id/documents", write, async (req, res) => {
    const { op, id } = await loadForForm(req, res);
    await receiveUpload(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!req.file) throw new ValidationError([{ field: "file", message: "Choose a file to upload.", messageJa: "ファイルを選択してください。" }]);
    const document = await addDocument(db, op, id, { kind: String(body.kind ?? ""), filename: req.file.originalname, bytes: req.file.buffer });
    const next = typeof body.next === "string" ? safeNextPath(body.next, kit.base) : kit.url(`/applications/${id}`);
    done(kit, req, res, { document }, next, { message: "Document stored.", messageJa: "書類を登録しました。" }, 201);
  });

  router.get("/documents/:id", read, async (req, res) => {
    const doc = await getDocument(db, kit.operator(req), idParam(req));
    // The saved name ends as the bytes are (a PNG sent as "scan.pdf" is saved as "scan.png").
    const ext = { "application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png" }[doc.mediaType] ?? "bin";
    const filename = `${doc.filename.replace(/\.[A-Za-z0-9]{1,5}$/, "")}.${ext}`;
    const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
    res.set({
      "Content-Type": doc.mediaType,
      "Content-Length": String(doc.content.length),
      // ?download=1: a saved copy, for browsers whose PDF viewer does not run in a sandbox.
      "Content-Disposition": `${req.query.download === "1" ? "attachment" : "inline"}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`,
      "X-Content-Type-Options": "nosniff",
      // The bytes are an applicant's scan: no script, no plugin, no network, shown in our frames only.
      "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'",
      "Cache-Control": "private, no-store",
      ETag: `"${doc.sha256}"`,
    });
    res.end(doc.content);
  });

  router.post("/applications/:id/identity-check", write, async (req, res) => {
    const { op, id } = await loadForForm(req, res);
    const row = await recordIdentityCheck(db, op, id, req.body ?? {});
    done(kit, req, res, { application: applicationJson(row) }, kit.url(`/applications/${id}`), { message: "Identity check recorded.", messageJa: "本人確認を記録しました。" });
  });

  router.post("/applications/:id/decision", write, async (req, res) => {
    const { op, id } = await loadForForm(req, res);
    const d = parseInput(decisionSchema, req.body ?? {});
    const row = await decideApplication(db, op, id, d.decision, { reason: d.reason, expectedVersion: d.version });
    const label = applicationMachine.transitions[d.decision].labelJa;
    done(kit, req, res, { application: applicationJson(row) }, kit.url(`/applications/${id}`), {
      message: `Application ${row.application_no}: ${d.decision.replace(/_/g, " ")} recorded.`,
      messageJa: `申込 ${row.application_no} を${label}しました（${applicationMachine.stateJa[row.state as keyof typeof applicationMachine.stateJa]}）。`,
    });
  });
}

/** The badge of a licence check result (match ✔, mismatch ✖, not found). */
export function licenceBadge(result: string | undefined | null): { result: string; labelKey: string; tone: string } | null {
  if (!result) return null;
  return { result, labelKey: `app.licence.result.${result}`, tone: result === "match" ? "ok" : "error" };
}
