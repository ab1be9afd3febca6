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
import type { OperatorRole } from "../pipeline/operator.ts";
import { loadPolicies, POLICIES_DIR } from "../policies.ts";
import { addLra, addOperator, totpCodeAt } from "../operators/operators.ts";
import { ConsoleClient, type ConsoleResponse } from "../web/console/client.ts";
import { DEMO_APPLICANTS, DEMO_LRAS, type DemoApplicant } from "./demo-applicants.ts";

/** A demo sign-in, kept in $HPKI_HOME/demo-logins.json (0600) so later runs and people can sign in. */
export interface DemoLogin {
  username: string;
  displayName: string;
  role: OperatorRole;
  /** Console path below the server URL. */
  console: "lra" | "ra" | "ia" | "sso/admin";
  lraCode?: string;
  password: string;
  totpSecret: string;
}

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

/** A one-page PDF standing in for a scanned document (the consoles sniff the bytes: it must be a PDF). */
export function demoScanPdf(title: string): Buffer {
  const text = title.replace(/[()\\]/g, "");
  const content = `BT /F1 18 Tf 72 760 Td (${text}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let pdf = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, "latin1");
}

export interface DemoRunResult {
  applications: number;
  completed: number;
  stopped: { applicant: string; reason: string }[];
}

/** Throws with the server's message unless `r` has status `expected`. */
function ok(r: ConsoleResponse, expected: number, what: string): any {
  if (r.status !== expected) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 500)}`);
  return r.json();
}

/** The Japanese reason of a refused step: the error and each field issue. */
function reasonOf(r: ConsoleResponse): string {
  const body = r.json() as { errorJa?: string; error?: string; issues?: { messageJa: string }[] };
  const issues = body.issues?.map((i) => i.messageJa).join(" / ");
  return [body.errorJa ?? body.error, issues].filter(Boolean).join("：");
}

/**
 * Drives the demo applicants through the consoles served at `origin`. `log` gets one line per
 * step worth showing. Returns what happened; a step that fails unexpectedly throws.
 */
export async function driveDemoApplications(origin: string, logins: DemoLogin[], log: (s: string) => void): Promise<DemoRunResult> {
  const register = readRegister();
  const clients = new Map<string, ConsoleClient>();
  const as = async (username: string): Promise<ConsoleClient> => {
    let c = clients.get(username);
    if (!c) {
      const l = logins.find((x) => x.username === username)!;
      c = new ConsoleClient(origin, `/${l.console}`);
      await c.signIn(l.username, l.password, await totpCodeAt(l.totpSecret));
      clients.set(username, c);
    }
    return c;
  };
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
    for (const kind of kinds) {
      ok(await c.upload(`/applications/${app.id}/documents`, { kind }, { filename: `${kind}.pdf`, bytes: demoScanPdf(`${app.applicationNo} ${kind} (scan)`), type: "application/pdf" }), 201, `upload ${kind}`);
    }
    const expiry = new Date(Date.now() + 3 * 365 * 86_400_000).toISOString().slice(0, 10);
    ok(await c.postJson(`/applications/${app.id}/identity-check`, {
      documentType: "driver_licence", documentNumber: `30${a.licence}00`, expiryDate: expiry, method: "face_to_face", photoMatches: true,
    }), 200, "identity check");
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
  let job = ok(await ia.postJson("/jobs", {}), 202, "start issuance").job as { id: string; state: string; done: number; total: number; failed?: unknown[] };
  while (job.state !== "finished") {
    await new Promise((r) => setTimeout(r, 250));
    job = ok(await ia.getJson(`/jobs/${job.id}`), 200, "issuance progress").job;
  }
  log(`  ${job.done}/${job.total} cards done${job.failed?.length ? `, ${job.failed.length} failed` : ""}`);

  log("-- IA: delivery batches with packing list and receipt forms (受領書), shipped");
  const { waiting } = ok(await ia.getJson("/deliveries"), 200, "deliveries") as { waiting: { lraId: number | null; lraCode?: string | null; count: number }[] };
  const receiptPdfs = new Map<number, Buffer>();
  for (const w of waiting) {
    const { batch } = ok(await ia.postJson("/deliveries", { lraId: w.lraId ?? "" }), 201, "prepare delivery") as { batch: { id: number; batchNo?: string; batch_no?: string } };
    const pdf = await fetch(`${origin}/ia/deliveries/${batch.id}/receipts.pdf`, { headers: { cookie: [...ia.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    receiptPdfs.set(batch.id, Buffer.from(await pdf.arrayBuffer()));
    ok(await ia.postJson(`/deliveries/${batch.id}/ship`, {}), 200, "ship");
    log(`  ${batch.batchNo ?? batch.batch_no}: ${w.count} cards to ${w.lraCode ?? "登録局窓口"}`);
  }

  log("-- Handover at the desk: identity checked again, signed receipt scanned, RA reviews it");
  for (const desk of ["tokyo-manager", "osaka-manager", "ra-officer"]) {
    const c = await as(desk);
    const { deliveries } = ok(await c.getJson(desk === "ra-officer" ? "/deliveries" : "/deliveries"), 200, "deliveries to receive") as { deliveries: { id: number; state: string }[] };
    for (const b of deliveries.filter((x) => x.state === "shipped")) ok(await c.postJson(`/deliveries/${b.id}/receive`, {}), 200, "receive delivery");
  }
  for (const x of live) {
    const c = await as(x.a.desk === "13-001" ? "tokyo-reviewer" : x.a.desk === "27-001" ? "osaka-reviewer" : "ra-officer");
    const doc = ok(await c.upload(`/applications/${x.id}/documents`, { kind: "signed_receipt" }, {
      filename: "signed-receipt.pdf", bytes: demoScanPdf(`${x.no} receipt signed by the subscriber (scan)`), type: "application/pdf",
    }), 201, "upload signed receipt").document as { id: number };
    ok(await c.postJson(`/applications/${x.id}/handover`, {
      documentType: "my_number_card", documentNumber: String(x.a.licence).slice(-4) /* a マイナンバーカード: at most the last 4 digits (番号法) */, photoMatches: true, signedReceiptDocumentId: doc.id,
    }), 200, `handover of ${x.no}`);
  }
  const { receipts } = ok(await officer.getJson("/receipts?state=recorded"), 200, "receipts") as { receipts: { id: number }[] };
  for (const r of receipts) ok(await officer.postJson(`/receipts/${r.id}/review`, { decision: "accept" }), 200, "receipt review");
  log(`  ${receipts.length} receipts reviewed; applications completed`);
  for (const c of clients.values()) await c.post("/logout").catch(() => undefined);
  return { applications: DEMO_APPLICANTS.length, completed: receipts.length, stopped };
}
