/**
 * The registration part of `hpki demo`: regional associations and operators, the demo licence
 * register, then applications driven through the consoles over real HTTP (the JSON side of the
 * same routes the browser uses: sign-in with password + TOTP, CSRF tokens, multipart uploads),
 * from LRA intake to handover and the RA's receipt review.
 */
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import type { LicenceRecord } from "../pipeline/licence-check.ts";
import { parseLicenceCsv } from "../pipeline/licence-csv.ts";
import { importLicenceRegister } from "../pipeline/licence-register.ts";
import { loadPolicies, POLICIES_DIR } from "../policies.ts";
import { addLra, addOperator } from "../operators/operators.ts";
import { DEMO_APPLICANTS, DEMO_LRAS, type DemoApplicant } from "./demo-applicants.ts";
import {
  acceptRecordedReceipts, checkIdentityAtDesk, handOverAtDesk, ok, reasonOf, receiveShippedDeliveries, runIssuanceJob, shipWaitingDeliveries, uploadScan,
  type DemoConsoles, type DemoLogin,
} from "./demo-consoles.ts";

export type { DemoLogin } from "./demo-consoles.ts";

const DEMO_OPERATORS: Omit<DemoLogin, "password" | "totpSecret">[] = [
  { username: "tokyo-reviewer", displayName: "東京 審査 一郎", role: "lra_reviewer", console: "lra", lraCode: "13-001" },
  { username: "tokyo-manager", displayName: "東京 責任 花子", role: "lra_manager", console: "lra", lraCode: "13-001" },
  { username: "osaka-reviewer", displayName: "大阪 審査 二郎", role: "lra_reviewer", console: "lra", lraCode: "27-001" },
  { username: "osaka-manager", displayName: "大阪 責任 春子", role: "lra_manager", console: "lra", lraCode: "27-001" },
  { username: "ra-officer", displayName: "登録 担当 三郎", role: "ra_officer", console: "ra" },
  { username: "ra-approver", displayName: "登録 承認 秋子", role: "ra_approver", console: "ra" },
  { username: "ia-operator", displayName: "発行 操作 四郎", role: "ia_operator", console: "ia" },
  { username: "auditor", displayName: "監査 五郎", role: "auditor", console: "ra" },
  { username: "sso-admin", displayName: "管理 六郎", role: "admin", console: "sso/admin" },
];

/** The demo register (policies/demo/licence-register.csv). */
export const DEMO_REGISTER_CSV = path.join(POLICIES_DIR, "demo", "licence-register.csv");

/** An extract of the demo register after a name change was recorded (imported by the demo's name change, issue 13 §5). */
export const DEMO_REGISTER_UPDATE_CSV = path.join(POLICIES_DIR, "demo", "licence-register-update.csv");

/**
 * Creates the demo regional associations and operators and imports the licence register, once:
 * returns the logins from $HPKI_HOME/demo-logins.json when they exist already (`created` false).
 */
export async function setUpDemoRegistration(db: Knex, home: string): Promise<{ logins: DemoLogin[]; created: boolean }> {
  const file = path.join(home, "demo-logins.json");
  if (fs.existsSync(file)) return { logins: JSON.parse(fs.readFileSync(file, "utf8")) as DemoLogin[], created: false };
  const by = { actor: "demo", role: "admin" };
  for (const l of DEMO_LRAS) await addLra(db, { code: l.code, name: l.name }, by);
  const logins: DemoLogin[] = [];
  for (const o of DEMO_OPERATORS) {
    const r = await addOperator(db, { username: o.username, displayName: o.displayName, role: o.role, lraCode: o.lraCode }, by);
    logins.push({ ...o, password: r.password, totpSecret: r.totpSecret });
  }
  await importLicenceRegister(db, fs.readFileSync(DEMO_REGISTER_CSV), { actor: "demo", role: "ra" });
  fs.writeFileSync(file, `${JSON.stringify(logins, null, 2)}\n`, { mode: 0o600 });
  return { logins, created: true };
}

/** The demo licence register, validated by the same reader as `hpki licenses import`, by licence number. */
function readRegister(): Map<string, LicenceRecord> {
  const parsed = parseLicenceCsv(fs.readFileSync(DEMO_REGISTER_CSV, "utf8"), loadPolicies().hcRoles);
  if (!parsed.ok) throw new Error(`${DEMO_REGISTER_CSV}: ${parsed.issues.map((i) => `line ${i.line} ${i.field}: ${i.message}`).join("; ")}`);
  return new Map(parsed.rows.map((r) => [r.registrationNumber, r]));
}

export interface DemoRunResult {
  applications: number;
  completed: number;
  stopped: { applicant: string; reason: string }[];
  /** The applications handed over, by licence number (the part after handover starts from them). */
  handedOver?: { licence: string; applicationId: number; applicationNo: string }[];
}

/**
 * Drives the demo applicants through the consoles (`consoles`' server). `log` gets one line per
 * step worth showing. Returns what happened; a step that fails unexpectedly throws.
 */
export async function driveDemoApplications(consoles: DemoConsoles, log: (s: string) => void): Promise<DemoRunResult> {
  const register = readRegister();
  const as = (username: string) => consoles.as(username);
  const deskUser = (a: DemoApplicant) => (a.desk === "13-001" ? "tokyo-reviewer" : a.desk === "27-001" ? "osaka-reviewer" : "ra-officer");
  const stopped: DemoRunResult["stopped"] = [];
  const live: { a: DemoApplicant; id: number; no: string }[] = [];

  log("-- LRA / RA desk: intake, scanned documents, identity check, licence check, review");
  for (const a of DEMO_APPLICANTS) {
    const r = register.get(a.licence)!;
    const who = `${r.nameKanji}（${a.latin}）`;
    const c = await as(deskUser(a));
    const { formToken } = ok(await c.getJson("/applications/new"), 200, "intake form");
    const res = await c.postJson("/applications", {
      formToken, channel: a.desk === "ra" ? "ra_desk" : undefined,
      nameKanji: r.nameKanji, nameKana: r.nameKana, nameLatin: a.latin, birthDate: r.birthDate,
      postalCode: a.desk === "27-001" ? "530-0001" : "100-0005", address: a.desk === "27-001" ? "大阪府大阪市北区梅田一丁目1番1号" : "東京都千代田区丸の内一丁目1番1号",
      phone: "03-1234-5678", email: `${a.latin.toLowerCase().replace(/ /g, ".")}@example.jp`,
      qualification: r.qualification, licenceNumber: a.writtenLicence ?? a.licence, licenceDate: r.registrationDate,
      organizationKanji: a.organizationKanji, organizationLatin: a.organizationLatin, managerRole: a.managerRole ?? "",
      requestSign: a.sign, requestAuth: a.auth,
    });
    if (a.scenario === "duplicate") {
      if (res.status !== 409) throw new Error(`duplicate application of ${who} was not refused: HTTP ${res.status}`);
      stopped.push({ applicant: who, reason: reasonOf(res) });
      log(`  ✖ ${who}: ${reasonOf(res)}`);
      continue;
    }
    const app = ok(res, 201, `intake of ${who}`).application as { id: number; applicationNo: string };
    const kinds = ["application_form", "identity_document", ...(a.scenario === "missing-document" ? [] : ["licence_copy"]), ...(a.managerRole ? ["director_proof"] : [])];
    for (const kind of kinds) await uploadScan(c, app.id, app.applicationNo, kind);
    await checkIdentityAtDesk(c, app.id, `30${a.licence}00`);
    const decision = a.desk === "ra" ? "ra_approve" : "lra_approve";
    const d = await c.postJson(`/applications/${app.id}/decision`, { decision });
    if (a.scenario === "licence-mismatch" || a.scenario === "missing-document") {
      if (d.status !== 400) throw new Error(`${who} should have been stopped (${a.scenario}): HTTP ${d.status}`);
      stopped.push({ applicant: who, reason: reasonOf(d) });
      log(`  ✖ ${app.applicationNo} ${who}: ${reasonOf(d)}`);
      continue;
    }
    ok(d, 200, `approval of ${who}`);
    live.push({ a, id: app.id, no: app.applicationNo });
    log(`  ✔ ${app.applicationNo} ${who} ${a.managerRole ?? r.qualification} — ${a.desk === "ra" ? "登録局窓口で承認" : "地域受付審査局で承認"}`);
  }

  log("-- LRA managers sign off their batches and forward them to the RA");
  const officer = await as("ra-officer");
  for (const manager of ["tokyo-manager", "osaka-manager"]) {
    const c = await as(manager);
    const { batches } = ok(await c.getJson("/batches"), 200, "LRA batches") as { batches: { id: number; state: string; batchNo?: string }[] };
    for (const b of batches.filter((x) => x.state === "open")) {
      const f = ok(await c.postJson(`/batches/${b.id}/forward`, {}), 200, "forward batch");
      log(`  ${manager}: batch ${f.batch?.batchNo ?? f.batch?.batch_no ?? b.id} forwarded (${f.applications} applications)`);
      ok(await officer.postJson(`/batches/${b.id}/receive`, {}), 200, "RA receives batch");
    }
  }

  log("-- RA: review, issuance requests (created by the officer, approved by another person)");
  const approver = await as("ra-approver");
  for (const x of live) {
    if (x.a.desk !== "ra") ok(await officer.postJson(`/applications/${x.id}/decision`, { decision: "ra_approve" }), 200, `RA approval of ${x.no}`);
    const ir = ok(await officer.postJson(`/applications/${x.id}/issuance-request`, {}), 201, `issuance request ${x.no}`).issuanceRequest as { id: number };
    ok(await approver.postJson(`/issuance-requests/${ir.id}/approve`, {}), 200, `approval of issuance request ${ir.id}`);
  }
  log(`  ${live.length} issuance requests approved`);

  log("-- IA: personalising cards (key pairs generated on the card)");
  const ia = await as("ia-operator");
  await runIssuanceJob(ia, log);

  log("-- IA: delivery batches with packing list and receipt forms (受領書), shipped");
  await shipWaitingDeliveries(ia, log);

  log("-- Handover at the desk: identity checked again, signed receipt scanned, RA reviews it");
  for (const desk of ["tokyo-manager", "osaka-manager", "ra-officer"]) await receiveShippedDeliveries(await as(desk));
  for (const x of live) await handOverAtDesk(await as(deskUser(x.a)), x.id, x.no, String(x.a.licence));
  const completed = await acceptRecordedReceipts(officer);
  log(`  ${completed} receipts reviewed; applications completed`);
  return {
    applications: DEMO_APPLICANTS.length, completed, stopped,
    handedOver: live.map((x) => ({ licence: x.a.licence, applicationId: x.id, applicationNo: x.no })),
  };
}
