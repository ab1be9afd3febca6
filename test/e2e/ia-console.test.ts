/**
 * The IA console over real HTTP (startServer on port 0, role "ia") with SoftHSM and the database
 * of the run (a fresh PostgreSQL database): the issuance queue worked by a
 * background job with a progress poll, one request failing while the others issue and its retry
 * once the cause is fixed, a second job refused while one runs, certificates judged by OpenSSL and
 * found on the cards, delivery batches with real PDFs (packing list, one receipt form per card),
 * shipping, the CA/CRL page and "generate CRL now", and the role checks on every IA route.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { readPinMailer } from "../../src/ia/card-personalisation.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { approveIssuanceRequest, createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { createEmergencyRevocation } from "../../src/pipeline/revocation-requests.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { forwardLraBatch, receiveLraBatch } from "../../src/pipeline/lra-batches.ts";
import { toPem } from "../../src/pki/pem.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { opensslVerify } from "../helpers/openssl.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, DEMO_LICENCE_REGISTER, identityCheckInput, requiredUploads } from "../helpers/pipeline.ts";

let t: TestIa;
let server: StartedServer;
let ia: ConsoleClient;
const ops = {} as Record<"reviewer" | "manager" | "officer" | "approver" | "deskOfficer" | "iaOp" | "auditor" | "admin", TestOperator>;
const rows = demoRegisterRows();
let next = 0;
/** Ids seen along the way, for the role × route checks at the end. */
const seen = { jobId: "", batchId: 0, failedRequestId: 0 };

const db = () => t.ctx.db;

/** One application through LRA intake (or the RA desk) to an approved issuance request; returns its ids. */
async function approvedRequest(o: { desk?: boolean } = {}): Promise<{ applicationId: number; requestId: number; applicationNo: string }> {
  const i = next++;
  const intake = o.desk ? ops.deskOfficer.operator : ops.reviewer.operator;
  const app = await submitApplication(db(), intake, t.ctx.policies.hcRoles, applicationInputFor(rows[i], i));
  const id = Number(app.id);
  for (const u of requiredUploads(`ia${i}`)) await addDocument(db(), intake, id, u);
  await recordIdentityCheck(db(), intake, id, identityCheckInput());
  if (!o.desk) {
    await decideApplication(db(), ops.reviewer.operator, id, "lra_approve");
    const batchId = Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
    await forwardLraBatch(db(), ops.manager.operator, batchId);
    await receiveLraBatch(db(), ops.officer.operator, batchId);
  }
  await decideApplication(db(), ops.officer.operator, id, "ra_approve");
  const ir = await createIssuanceRequest(db(), ops.officer.operator, id);
  await approveIssuanceRequest(db(), ops.approver.operator, Number(ir.id));
  return { applicationId: id, requestId: Number(ir.id), applicationNo: String(app.application_no) };
}

/** Polls GET /ia/jobs/:id until the job has finished; returns it. */
async function finishedJob(c: ConsoleClient, id: string) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const r = await c.getJson(`/jobs/${id}`);
    expect(r.status).toBe(200);
    const job = r.json().job;
    expect(job.done).toBeLessThanOrEqual(job.total);
    if (job.state === "finished") return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still running: ${JSON.stringify(job)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Text of a PDF by poppler's pdftotext (pages separated by form feeds), or null without it. */
function pdfText(bytes: Buffer, name: string): string | null {
  if (spawnSync("pdftotext", ["-v"]).error) return null;
  const file = path.join(t.work, name);
  fs.writeFileSync(file, bytes);
  const r = spawnSync("pdftotext", ["-layout", "-enc", "UTF-8", file, "-"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout;
}

/** Page objects in a PDF's bytes (pdfkit writes page dictionaries uncompressed). */
function pdfPageCount(bytes: Buffer): number {
  return (bytes.toString("latin1").match(/\/Type \/Page\b(?!s)/g) ?? []).length;
}

beforeAll(async () => {
  t = await openTestIa("ia-console");
  await runDemoCeremony(t.ctx, { actor: "test", role: "ia" });
  await importLicenceRegister(db(), fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  ops.reviewer = await createTestOperator(db(), "lra_reviewer", { lraCode: "13-001" });
  ops.manager = await createTestOperator(db(), "lra_manager", { lraCode: "13-001" });
  ops.officer = await createTestOperator(db(), "ra_officer");
  ops.deskOfficer = await createTestOperator(db(), "ra_officer");
  ops.approver = await createTestOperator(db(), "ra_approver");
  ops.iaOp = await createTestOperator(db(), "ia_operator", { displayName: "発行 太郎" });
  ops.auditor = await createTestOperator(db(), "auditor");
  ops.admin = await createTestOperator(db(), "admin");
  server = await startServer({ cfg: t.ctx.cfg, db: db(), roles: ["ia"], port: 0 });
  ia = new ConsoleClient(server.url, "/ia");
  await ia.login(ops.iaOp);
});

afterAll(async () => {
  await server?.close();
  await t?.cleanup();
});

describe("IA console over HTTP", () => {
  it("issues the queue in a background job: progress, one failure among successes, 409 while running, retry after the fix", async () => {
    const good = [await approvedRequest(), await approvedRequest(), await approvedRequest({ desk: true })];
    const bad = await approvedRequest();
    // The profile refuses this qualification at issuance (not in the hcRole table).
    const original = (await db()("applications").where({ id: bad.applicationId }).first("qualification")).qualification;
    await db()("applications").where({ id: bad.applicationId }).update({ qualification: "Wizard" });

    const queue = (await ia.getJson("/queue")).json();
    expect(queue.approved.map((a: { requestId: number }) => a.requestId).sort()).toEqual([...good, bad].map((g) => g.requestId).sort());
    expect(queue.failed).toEqual([]);
    expect(queue.issuing).toEqual([]);
    expect(queue.approved[0]).toMatchObject({ applicantName: expect.any(String), qualificationJa: expect.any(String), state: "approved", stateJa: "発行待ち" });

    const start = await ia.postJson("/jobs", {});
    expect(start.status).toBe(202);
    const { job } = start.json();
    expect(job).toMatchObject({ id: expect.any(String), state: "running", done: 0, total: 4 });
    expect(start.headers.get("location")).toBe(`/ia/jobs/${job.id}`);
    seen.jobId = job.id;

    const again = await ia.postJson("/jobs", {});
    expect(again.status).toBe(409);
    expect(again.json()).toMatchObject({ code: "conflict", errorJa: expect.stringContaining("実行中") });

    // The job page (HTML) while it runs: a progress bar and the same-origin script, no inline script.
    const page = await ia.get(`/jobs/${job.id}`, { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("<progress");
    expect(page.text).toMatch(/<script src="\/ia\/static\/ia-progress\.js\?v(=|&#x3D;)[0-9a-f]{12}" defer><\/script>/);
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect((await ia.get("/static/ia-progress.js", { accept: "html" })).status).toBe(200);

    const done = await finishedJob(ia, job.id);
    expect(done.done).toBe(4);
    expect(done.total).toBe(4);
    expect(done.issued.map((c: { requestId: number }) => c.requestId).sort()).toEqual(good.map((g) => g.requestId).sort());
    expect(done.failed).toEqual([expect.objectContaining({ requestId: bad.requestId, applicationNo: bad.applicationNo, error: expect.stringContaining("hcRole"), errorJa: expect.stringContaining("資格") })]);
    seen.failedRequestId = bad.requestId;

    // Every certificate verifies against the demo chain and sits on its card.
    for (const card of done.issued) {
      expect(card.applicantName).toBeTruthy();
      expect(card.certificates.map((c: { profile: string }) => c.profile).sort()).toEqual(["auth-person", "sign"]);
      for (const c of card.certificates) {
        const row = await db()("certificates").where({ serial_hex: c.serialHex }).first("der", "card_label");
        expect(row.card_label).toBe(card.cardLabel);
        const leaf = path.join(t.work, `${c.serialHex}.pem`);
        fs.writeFileSync(leaf, toPem(Buffer.from(row.der)));
        const v = opensslVerify(t.pem("demo-root"), t.pem(c.caName), leaf);
        expect(v.ok, v.output).toBe(true);
      }
      const session = await t.ctx.cards.openCard(card.cardLabel, readPinMailer(path.join(t.ctx.cfg.mailDir, `pin-mailer-${card.cardLabel}.txt`)));
      try {
        // Sign and auth certificates, their issuing CAs and the root (issue 13 §7).
        expect((await session.listCertificates()).filter((x) => !x.label.startsWith("HPKI ")).length).toBe(2);
      } finally {
        session.close();
      }
    }

    // The queue shows the failure with its Japanese explanation; the request kept its card.
    const after = (await ia.getJson("/queue")).json();
    expect(after.approved).toEqual([]);
    expect(after.failed).toEqual([expect.objectContaining({ requestId: bad.requestId, state: "failed", attempts: 1, errorJa: expect.stringContaining("再発行") })]);
    const boundCard = after.failed[0].cardLabel;
    expect(boundCard).toBeTruthy();
    const html = await ia.get("/queue", { accept: "html" });
    expect(html.text).toContain(`/ia/issuance-requests/${bad.requestId}/retry`);
    expect(html.text).toContain("発行に失敗した依頼");

    // Fix the cause, retry: back in the queue, issued by the next job on the same card.
    await db()("applications").where({ id: bad.applicationId }).update({ qualification: original });
    const retry = await ia.postJson(`/issuance-requests/${bad.requestId}/retry`, {});
    expect(retry.status).toBe(200);
    expect(retry.json().request).toMatchObject({ requestId: bad.requestId, state: "approved" });
    const second = await ia.postJson("/jobs", { limit: 10 });
    expect(second.status).toBe(202);
    const secondDone = await finishedJob(ia, second.json().job.id);
    expect(secondDone.failed).toEqual([]);
    expect(secondDone.issued).toEqual([expect.objectContaining({ requestId: bad.requestId, cardLabel: boundCard })]);
    expect((await db()("applications").where({ id: bad.applicationId }).first("state")).state).toBe("issued");

    // The finished job page (HTML) summarises without the polling script.
    const finished = await ia.get(`/jobs/${second.json().job.id}`, { accept: "html" });
    expect(finished.text).toContain("1 枚のカードを発行しました");
    expect(finished.text).not.toContain("ia-progress.js");
  });

  it("refuses a bad limit with a Japanese message", async () => {
    const r = await ia.postJson("/jobs", { limit: 0 });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ code: "invalid_input", issues: [expect.objectContaining({ field: "limit", messageJa: expect.any(String) })] });
  });

  it("prepares delivery batches per desk with packing list and receipt PDFs, then ships", async () => {
    const list = (await ia.getJson("/deliveries")).json();
    const lraId = Number((await db()("lras").where({ code: "13-001" }).first("id")).id);
    expect(list.waiting).toEqual(expect.arrayContaining([
      { lraId, lraCode: "13-001", lraName: expect.any(String), count: 3 },
      { lraId: null, lraCode: null, lraName: "登録局窓口（直接申込）", count: 1 },
    ]));

    const made = await ia.postJson("/deliveries", { lraId });
    expect(made.status).toBe(201);
    const { batch, receipts } = made.json();
    expect(batch).toMatchObject({ lraId, lraCode: "13-001", state: "prepared", cards: 3, batchNo: expect.stringMatching(/^D13-001-/) });
    expect(receipts).toHaveLength(3);
    seen.batchId = batch.id;
    const desk = await ia.postJson("/deliveries", { lraId: null });
    expect(desk.status).toBe(201);
    expect(desk.json().batch).toMatchObject({ lraId: null, cards: 1, batchNo: expect.stringMatching(/^DRA-/) });
    const none = await ia.postJson("/deliveries", { lraId });
    expect(none.status).toBe(409);
    expect(none.json().errorJa).toContain("配送待ちのカードはありません");
    expect((await ia.postJson("/deliveries", {})).status).toBe(400);

    const apps = await db()("applications").whereIn("application_no", receipts.map((r: { applicationNo: string }) => r.applicationNo)).select("name_kanji", "name_kana");
    expect(apps).toHaveLength(3);

    const packing = await ia.get(`/deliveries/${batch.id}/packing-list.pdf`, { accept: "html" });
    expect(packing.status).toBe(200);
    expect(packing.headers.get("content-type")).toBe("application/pdf");
    const packingBytes = Buffer.from(await (await fetch(`${server.url}/ia/deliveries/${batch.id}/packing-list.pdf`, { headers: { cookie: [...ia.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } })).arrayBuffer());
    expect(packingBytes.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    expect(pdfPageCount(packingBytes)).toBe(1);
    const packingText = pdfText(packingBytes, "packing.pdf");
    if (packingText !== null) {
      expect(packingText).toContain(batch.batchNo);
      for (const r of receipts) expect(packingText).toContain(r.receiptNo);
      for (const a of apps) {
        expect(packingText.replace(/\s/g, "")).toContain(a.name_kanji.replace(/\s/g, ""));
        expect(packingText.replace(/\s/g, "")).toContain(a.name_kana.replace(/\s/g, ""));
      }
    }

    const receiptRes = await fetch(`${server.url}/ia/deliveries/${batch.id}/receipts.pdf`, { headers: { cookie: [...ia.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    expect(receiptRes.status).toBe(200);
    const receiptBytes = Buffer.from(await receiptRes.arrayBuffer());
    expect(receiptBytes.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    expect(pdfPageCount(receiptBytes)).toBe(3); // one form per card
    const receiptText = pdfText(receiptBytes, "receipts.pdf");
    if (receiptText !== null) {
      const pages = receiptText.split("\f").filter((p) => p.trim());
      expect(pages).toHaveLength(3);
      for (const [k, r] of receipts.entries()) {
        expect(pages[k]).toContain(r.receiptNo);
        expect(pages[k]).toContain("HPKI カード受領書");
        expect(pages[k]).toContain(r.cardLabel);
      }
      expect(receiptText).toMatch(/医師|歯科医師|薬剤師/);
      expect(receiptText).toContain("本人が直接受け取りました");
    }

    const page = await ia.get(`/deliveries/${batch.id}`, { accept: "html" });
    expect(page.status).toBe(200);
    for (const r of receipts) expect(page.text).toContain(r.receiptNo);

    // The IA home counts its work (issue 12 §3): the prepared batches (this one too) wait to be shipped.
    const work = Object.fromEntries((await ia.getJson("/")).json().worklist.map((w: { key: string; count: number }) => [w.key, w.count]));
    expect(Object.keys(work)).toEqual(["queue", "failed", "to_batch", "to_ship"]);
    const prepared = Number((await db()("delivery_batches").where({ state: "prepared" }).count({ n: "*" }))[0].n);
    expect(prepared).toBeGreaterThanOrEqual(1);
    expect(work.to_ship).toBe(prepared);
    // Shipping asks for confirmation without JavaScript; nothing is shipped until confirmed.
    const ask = await ia.post(`/deliveries/${batch.id}/ship`, { accept: "html", form: {} });
    expect(ask.status).toBe(200);
    expect(ask.text).toContain('name="confirmed" value="1"');
    expect((await db()("delivery_batches").where({ id: batch.id }).first("state")).state).toBe("prepared");
    const shipped = await ia.postJson(`/deliveries/${batch.id}/ship`, {});
    expect(shipped.status).toBe(200);
    expect(shipped.json().batch).toMatchObject({ id: batch.id, state: "shipped", shippedAt: expect.any(String) });
    const states = await db()("applications").where({ delivery_batch_id: batch.id }).pluck("state");
    expect(states).toEqual(["shipped", "shipped", "shipped"]);
    expect((await ia.postJson(`/deliveries/${batch.id}/ship`, {})).status).toBe(409);
    const deliveryList = (await ia.getJson("/deliveries")).json();
    expect(deliveryList.batches.find((b: { id: number }) => b.id === batch.id)).toMatchObject({ state: "shipped", stateJa: "発送済" });
    // The batch list is keyset-paginated with the true total (issue 12 §3).
    const total = Number((await t.ctx.db("delivery_batches").count({ n: "*" }))[0].n);
    expect(deliveryList.page).toMatchObject({ total, from: 1, to: Math.min(total, 50) });
    expect((await ia.get("/deliveries", { accept: "html" })).text).toContain(`全${total}件`);
  });

  it("shows each CA with its current CRL and generates one on request", async () => {
    const before = (await ia.getJson("/cas")).json().cas;
    expect(before.map((c: { name: string }) => c.name)).toEqual(["demo-root", "demo-auth-ca", "demo-enc-ca", "demo-org-auth-ca", "demo-sign-ca"]);
    // The IA server's status scheduler publishes first CRLs on its own; a manual one comes next.
    expect(before[0]).toMatchObject({ kind: "root", subject: expect.stringContaining("CN="), keyLabel: expect.any(String), keyAlgorithm: expect.any(String) });
    const prior = (name: string) => (before.find((c: { name: string }) => c.name === name).crl?.crlNumber ?? 0) as number;

    const gen = await ia.postJson("/cas/demo-sign-ca/crl", {});
    expect(gen.status).toBe(200);
    expect(gen.json().crl).toMatchObject({ caName: "demo-sign-ca", kind: "crl", entries: 0, bytes: expect.any(Number) });
    expect(gen.json().crl.crlNumber).toBeGreaterThan(prior("demo-sign-ca"));
    const arl = await ia.postJson("/cas/demo-root/crl", {});
    expect(arl.json().crl).toMatchObject({ kind: "arl" });
    expect(arl.json().crl.crlNumber).toBeGreaterThan(prior("demo-root"));

    const cas = (await ia.getJson("/cas")).json().cas;
    const sign = cas.find((c: { name: string }) => c.name === "demo-sign-ca");
    expect(sign.crl).toMatchObject({ kind: "crl", entries: 0, overdue: false });
    expect(sign.crl.crlNumber).toBeGreaterThanOrEqual(gen.json().crl.crlNumber);
    expect(new Date(sign.crl.nextUpdate).getTime()).toBeGreaterThan(new Date(sign.crl.thisUpdate).getTime());
    const stored = await db()("crls").orderBy("id", "desc").first("der");
    expect(stored).toBeTruthy();

    expect((await ia.postJson("/cas/no-such-ca/crl", {})).status).toBe(404);
    const html = await ia.get("/cas", { accept: "html" });
    expect(html.text).toContain("今すぐCRLを生成");
    expect(html.text).toContain("demo-sign-ca");
  });

  it("runs the revocation worker: an emergency hold is executed by the IA server and reaches the next CRL", async () => {
    const cert = await db()("certificates as c").join("certificate_authorities as a", "a.id", "c.ca_id")
      .where({ "a.name": "demo-sign-ca", "c.status": "issued" }).orderBy("c.id").first("c.serial_hex");
    await createEmergencyRevocation(db(), ops.officer.operator, {
      targetKind: "certificate", caName: "demo-sign-ca", serialHex: cert.serial_hex, reason: "certificateHold", grounds: "カード紛失の電話", callerVerification: "登録電話番号へ折り返し確認",
    });
    const deadline = Date.now() + 20_000;
    let rev;
    while (!(rev = await db()("revocations").where({ serial_hex: cert.serial_hex }).first()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(rev).toMatchObject({ reason: "certificateHold" });
    const crl = (await ia.postJson("/cas/demo-sign-ca/crl", {})).json().crl;
    expect(crl).toMatchObject({ entries: 1 });
    const sign = (await ia.getJson("/cas")).json().cas.find((c: { name: string }) => c.name === "demo-sign-ca");
    // The status scheduler may have published a CRL with the hold already; numbers only go up.
    expect(sign.crl.entries).toBe(1);
    expect(sign.crl.crlNumber).toBeGreaterThanOrEqual(crl.crlNumber);
  });

  it("renders every page in Japanese and English and never shows a PIN", async () => {
    const pins = fs.readdirSync(t.ctx.cfg.mailDir).filter((f) => f.startsWith("pin-mailer-")).map((f) => readPinMailer(path.join(t.ctx.cfg.mailDir, f)));
    expect(pins.length).toBeGreaterThan(0);
    const pages = ["/queue", "/jobs", `/jobs/${seen.jobId}`, "/deliveries", `/deliveries/${seen.batchId}`, "/cas", "/"];
    for (const lang of ["ja", "en"]) {
      for (const p of pages) {
        const r = await ia.get(`${p}?lang=${lang}`, { accept: "html" });
        expect(r.status, `${p} ${lang}`).toBe(200);
        expect(r.text).toContain(`<html lang="${lang}">`);
        for (const pin of pins) expect(r.text).not.toMatch(new RegExp(`\\b${pin}\\b`));
      }
    }
    expect((await ia.get("/queue?lang=en", { accept: "html" })).text).toContain("Issuance queue");
    expect((await ia.get("/queue?lang=ja", { accept: "html" })).text).toContain("発行キュー");
    for (const p of ["/queue", `/jobs/${seen.jobId}`, "/deliveries", "/cas"]) {
      const text = (await ia.getJson(p)).text;
      for (const pin of pins) expect(text).not.toMatch(new RegExp(`"[^"]*\\b${pin}\\b[^"]*"`));
    }
  });

  it("lets auditors read, refuses their changes, and gives every other role 403 on every IA route", async () => {
    const reads = ["/queue", "/jobs", `/jobs/${seen.jobId}`, "/deliveries", `/deliveries/${seen.batchId}`, `/deliveries/${seen.batchId}/packing-list.pdf`, `/deliveries/${seen.batchId}/receipts.pdf`, "/cas"];
    const writes: [string, unknown][] = [
      ["/jobs", {}], [`/issuance-requests/${seen.failedRequestId}/retry`, {}], ["/deliveries", { lraId: null }],
      [`/deliveries/${seen.batchId}/ship`, {}], ["/cas/demo-sign-ca/crl", {}],
    ];
    const auditor = new ConsoleClient(server.url, "/ia");
    await auditor.login(ops.auditor);
    for (const p of reads) expect((await auditor.getJson(p)).status, p).toBe(200);
    for (const [p, body] of writes) expect((await auditor.postJson(p, body)).status, p).toBe(403);
    const auditorQueue = await auditor.get("/queue", { accept: "html" });
    expect(auditorQueue.text).not.toContain('action="/ia/jobs"');
    expect(auditorQueue.text).toContain("監査人として閲覧");

    const admin = new ConsoleClient(server.url, "/ia");
    await admin.login(ops.admin);
    for (const p of reads) expect((await admin.getJson(p)).status, p).toBe(403);
    for (const [p, body] of writes) expect((await admin.postJson(p, body)).status, p).toBe(403);

    // LRA and RA operators cannot sign in to the IA console at all; without a session: 401.
    for (const op of [ops.reviewer, ops.officer, ops.approver]) {
      const c = new ConsoleClient(server.url, "/ia");
      const r = await c.tryLogin(op.username, op.password, await op.nextCode());
      expect(r.status, op.username).toBe(403);
      for (const p of reads) expect((await c.getJson(p)).status, p).toBe(401);
    }
    // CSRF applies to JSON posts too.
    const noCsrf = await ia.request("POST", "/jobs", { accept: "json", json: {}, csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.json().code).toBe("csrf");
  });

  it("shows the live progress bar in Chromium: the page script polls, fills the rows and settles on the summary", { timeout: 240_000 }, async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await approvedRequest());
    // The third one fails (qualification not in the hcRole table): the page lists it among the others.
    await db()("applications").where({ id: made[2].applicationId }).update({ qualification: "Wizard" });
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext({ locale: "ja-JP" })).newPage();
      const problems: string[] = [];
      // Script errors and CSP refusals; failed loads by URL (browsers ask for /favicon.ico on their own).
      page.on("console", (m) => {
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
      });
      page.on("response", (r) => {
        if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) problems.push(`${r.status()} ${r.url()}`);
      });
      page.on("pageerror", (e) => problems.push(e.message));
      await page.goto(`${server.url}/ia/login?next=/ia/queue`);
      await page.fill('input[name="username"]', ops.iaOp.username);
      await page.fill('input[name="password"]', ops.iaOp.password);
      await page.fill('input[name="totp"]', await ops.iaOp.nextCode());
      await Promise.all([page.waitForURL(`${server.url}/ia/queue`), page.click('form button[type="submit"]')]);
      await Promise.all([page.waitForURL(/\/ia\/jobs\/[0-9a-f-]{36}$/), page.click('form[action="/ia/jobs"] button[type="submit"]')]);

      // Sample the bar until the server-rendered summary replaces the running page.
      const values = new Set<number>();
      let scriptRows = 0; // rows the script added while the job ran (the running page starts empty)
      const deadline = Date.now() + 180_000;
      for (;;) {
        const s = await page.evaluate(() => ({
          state: document.getElementById("ia-job")?.getAttribute("data-state"),
          value: (document.getElementById("ia-job-progress") as HTMLProgressElement | null)?.value ?? -1,
          max: (document.getElementById("ia-job-progress") as HTMLProgressElement | null)?.max ?? -1,
          rows: document.querySelectorAll("#ia-job-issued tr").length,
          failedRows: document.querySelectorAll("#ia-job-failed tr").length,
        })).catch(() => null); // the script reloads the page when the job ends
        if (s?.state === "running") {
          values.add(s.value);
          scriptRows = Math.max(scriptRows, s.rows + s.failedRows);
        }
        if (s?.state === "finished") {
          expect(s).toMatchObject({ value: 5, max: 5, rows: 4, failedRows: 1 });
          break;
        }
        if (Date.now() > deadline) throw new Error("the job page never reached the finished state");
        await new Promise((r) => setTimeout(r, 150));
      }
      expect([...values].some((v) => v > 0 && v < 5), `progress values seen while running: ${[...values]}`).toBe(true);
      expect(scriptRows).toBeGreaterThan(0);
      const main = await page.textContent("main");
      expect(main).toContain("発行 4 件、失敗 1 件");
      expect(main).toContain(made[2].applicationNo);
      expect(main).toContain("申込内容が証明書プロファイルの要件を満たさない");
      expect(problems).toEqual([]);
      await page.screenshot({ path: artifact("ia-issuance-job.png"), fullPage: true });
      for (const name of ["queue", "deliveries", "cas"]) {
        await page.goto(`${server.url}/ia/${name}`);
        await page.screenshot({ path: artifact(`ia-${name}.png`), fullPage: true });
      }
      expect(await page.content()).toContain("今すぐCRLを生成");
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
