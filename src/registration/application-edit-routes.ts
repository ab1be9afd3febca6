/**
 * Corrections at the desks (issue 12 §2), mounted by the LRA and RA consoles with the shared
 * application routes: the intake form filled with the application as it stands, its POST
 * (pipeline/application-edit.ts: audited before/after, dry run and licence check re-run), and,
 * on the detail page, the nearest licence register entries when the check does not match —
 * proposals for the reviewer, never applied.
 *
 * JSON (Accept: application/json), relative to the console base (/lra or /ra):
 *   GET  /applications/:id/edit → {application, editable}
 *   POST /applications/:id/edit → {application, changes: {field: {before, after}}, licenceCheck, nearest}
 *        (every form field as at intake, version? = the version shown)
 *   GET  /applications/:id/nearest-licences → {nearest: [{…register entry, reasons}]}
 */
import type { Request, Router } from "express";
import { z } from "zod";
import { editApplication, mayEdit } from "../pipeline/application-edit.ts";
import { parseInput } from "../pipeline/errors.ts";
import type { LicenceCheck } from "../pipeline/licence-check.ts";
import { nearestRegisterEntries, type NearestEntry } from "../pipeline/licence-nearest.ts";
import type { Row } from "../pipeline/machine.ts";
import type { Operator } from "../pipeline/operator.ts";
import type { Db } from "../store/db.ts";
import type { Lang } from "../web/i18n.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { applicationJson, displayDate, jsonColumn } from "./application-format.ts";
import { readApplication } from "./application-queries.ts";
import { idParam, respond, type ApplicationRoutesOptions } from "./application-routes.ts";

const versionSchema = z.object({
  version: z.union([z.number(), z.string().regex(/^\d+$/)]).optional().transform((v) => (v === undefined || v === "" ? undefined : Number(v))),
});

/** The state of the application's issuance request, if it has one (a failed one can be corrected at the RA). */
async function requestState(db: Db, app: Row): Promise<string | null> {
  if (app.state !== "issuance_requested") return null;
  return ((await db("issuance_requests").where({ application_id: app.id }).first("state")) as { state?: string } | undefined)?.state ?? null;
}

/** The nearest register entries of an application whose licence check is not a match ([] otherwise). */
export async function nearestFor(db: Db, app: Row): Promise<NearestEntry[]> {
  const check = jsonColumn<LicenceCheck>(app.licence_check);
  if (!check || check.result === "match") return [];
  const j = applicationJson(app);
  return nearestRegisterEntries(db, {
    qualification: String(j.qualification), licenceNumber: String(j.licenceNumber), nameKanji: String(j.nameKanji),
    nameKana: String(j.nameKana), birthDate: String(j.birthDate),
  });
}

/**
 * View data for the detail page: the edit link when `op` may correct `app` now, and the nearest
 * register entries (dates for display) when its licence check does not match.
 */
export async function correctionExtras(kit: ConsoleKit, req: Request, op: Operator, app: Row): Promise<Record<string, unknown>> {
  const db = kit.deps.db;
  const l: Lang = req.lang ?? "ja";
  const nearest = await nearestFor(db, app);
  return {
    canEdit: mayEdit(op, app, await requestState(db, app)),
    editUrl: kit.url(`/applications/${Number(app.id)}/edit`),
    nearest: nearest.map((e) => ({
      ...e,
      registrationDateText: displayDate(e.registrationDate, l),
      birthDateText: displayDate(e.birthDate, l),
      reasonKeys: e.reasons.map((r) => `correction.nearest.reason.${r}`),
    })),
  };
}

/** Mounts the correction routes (module comment) next to the shared application routes. */
export function mountApplicationEditRoutes(router: Router, kit: ConsoleKit, opts: Pick<ApplicationRoutesOptions, "hcRoles" | "readers" | "writers">): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...opts.readers);
  const write = kit.requireRole(...opts.writers);
  const l = (req: Request): Lang => req.lang ?? "ja";
  const choices = [...opts.hcRoles.values()];

  /** The intake form's view data for editing `values` (camelCase form fields) of `app`. */
  const formPage = (req: Request, app: Row, values: Record<string, unknown>) => {
    const option = (v: unknown) => (c: { code: string; ja: string }) => ({ code: c.code, label: l(req) === "ja" ? `${c.ja}（${c.code}）` : c.code, selected: c.code === v });
    return {
      values,
      editing: true,
      editVersion: Number(app.version),
      formAction: kit.url(`/applications/${Number(app.id)}/edit`),
      cancelUrl: kit.url(`/applications/${Number(app.id)}`),
      applicationNo: app.application_no,
      qualificationOptions: choices.filter((c) => c.kind === "national-qualification").map(option(values.qualification)),
      managerRoleOptions: choices.filter((c) => c.kind === "manager").map(option(values.managerRole)),
      requestSignChecked: values.requestSign === true || values.requestSign === "on",
      requestAuthChecked: values.requestAuth === true || values.requestAuth === "on",
    };
  };

  router.get("/applications/:id/edit", read, async (req, res) => {
    const op = kit.operator(req);
    const app = await readApplication(db, op, idParam(req));
    const application = applicationJson(app);
    const editable = mayEdit(op, app, await requestState(db, app));
    await respond(kit, req, res, "application-edit", { application, editable }, () => formPage(req, app, application), {
      title: { en: `Correct application ${app.application_no}`, ja: `申込 ${app.application_no} の訂正` },
    });
  });

  router.post("/applications/:id/edit", write, async (req, res) => {
    const op = kit.operator(req);
    const id = idParam(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!kit.wantsJson(req)) {
      const app = await readApplication(db, op, id);
      kit.formView(res, "application-edit", formPage(req, app, body));
    }
    const { version } = parseInput(versionSchema, { version: body.version });
    const { application: row, changes } = await editApplication(db, op, opts.hcRoles, id, body, { expectedVersion: version });
    const nearest = await nearestFor(db, row);
    const check = jsonColumn<LicenceCheck>(row.licence_check);
    if (kit.wantsJson(req)) {
      kit.render(res, "", { application: applicationJson(row), changes, licenceCheck: check, nearest });
      return;
    }
    const n = Object.keys(changes).length;
    if (!n) kit.flash(req, "info", "Nothing was changed.", "変更された項目はありません。");
    else if (check?.result === "match") kit.flash(req, "success", `Application corrected (${n} field(s)); the licence register check matches.`, `申込を訂正しました（${n}項目）。資格確認台帳と一致しています。`);
    else kit.flash(req, "error", `Application corrected (${n} field(s)); the licence register check does not match — see the nearest register entries.`, `申込を訂正しました（${n}項目）。資格確認台帳と一致しません。台帳の近い登録を確認してください。`);
    res.redirect(303, kit.url(`/applications/${id}`));
  });

  router.get("/applications/:id/nearest-licences", read, async (req, res) => {
    const app = await readApplication(db, kit.operator(req), idParam(req));
    kit.render(res, "", { nearest: await nearestFor(db, app) });
  });
}
