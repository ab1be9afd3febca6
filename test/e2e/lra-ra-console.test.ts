/**
 * The LRA and RA consoles over real HTTP (startServer on port 0; Postgres with DATABASE_URL,
 * a fresh PostgreSQL database): intake → documents → identity check → licence check → LRA approval → batch
 * forwarded → RA receipt and approval → issuance request → approval by a second person; and the
 * refusals: licence mismatch, bad uploads, double submit, concurrent approval, two-person rule,
 * cross-association access, wrong console.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_DOCUMENT_BYTES } from "../../src/pipeline/applications.ts";
import { ConsoleClient, startConsoleTestServer, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf, samplePng } from "../helpers/pipeline.ts";

let t: ConsoleTestServer;
const rows = demoRegisterRows();
let next = 0;

type Who = "reviewer" | "manager" | "reviewerB" | "officer" | "officer2" | "approver" | "approver2" | "auditor";
const ops = {} as Record<Who | "lraIntruder" | "raIntruder", TestOperator>;
const c = {} as Record<Who, ConsoleClient>;
const CONSOLE_OF: Record<Who, "/lra" | "/ra"> = {
  reviewer: "/lra", manager: "/lra", reviewerB: "/lra", officer: "/ra", officer2: "/ra", approver: "/ra", approver2: "/ra", auditor: "/lra",
};

beforeAll(async () => {
  t = await startConsoleTestServer();
  ops.reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001", displayName: "審査 花子" });
  ops.manager = await createTestOperator(t.db, "lra_manager", { lraCode: "13-001" });
  ops.reviewerB = await createTestOperator(t.db, "lra_reviewer", { lraCode: "27-001" });
  ops.officer = await createTestOperator(t.db, "ra_officer");
  ops.officer2 = await createTestOperator(t.db, "ra_officer");
  ops.approver = await createTestOperator(t.db, "ra_approver");
  ops.approver2 = await createTestOperator(t.db, "ra_approver");
  ops.auditor = await createTestOperator(t.db, "auditor");
  ops.lraIntruder = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
  ops.raIntruder = await createTestOperator(t.db, "ra_officer");
  await Promise.all((Object.keys(CONSOLE_OF) as Who[]).map(async (w) => {
    c[w] = await t.signIn(CONSOLE_OF[w], ops[w]);
  }));
});

afterAll(async () => t?.cleanup());

const count = async (table: string) => Number((await t.db(table).count({ n: "*" }).first())?.n);

/** LRA intake over HTTP: form token, application, the required documents, identity check. */
async function intake(over: Record<string, unknown> = {}, opts: { docs?: boolean; identity?: boolean } = {}): Promise<number> {
  const i = next++;
  const form = await c.reviewer.getJson("/applications/new");
  expect(form.status).toBe(200);
  const created = await c.reviewer.postJson("/applications", { ...applicationInputFor(rows[i], i, over), formToken: form.json().formToken });
  expect(created.status, created.text).toBe(201);
  const id = created.json().application.id as number;
  if (opts.docs !== false) {
    for (const u of requiredUploads(`e2e-${i}`)) {
      const r = await c.reviewer.upload(`/applications/${id}/documents`, { kind: u.kind }, { filename: u.filename, bytes: u.bytes, type: "application/pdf" });
      expect(r.status, r.text).toBe(201);
    }
  }
  if (opts.identity !== false) {
    const r = await c.reviewer.postJson(`/applications/${id}/identity-check`, identityCheckInput());
    expect(r.status, r.text).toBe(200);
  }
  return id;
}

/** Intake, LRA approval, manager sign-off; returns the application id (state forwarded). */
async function forwarded(): Promise<number> {
  const id = await intake();
  expect((await c.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_approve" })).status).toBe(200);
  const batches = (await c.manager.getJson("/batches")).json().batches as { id: number; state: string; applications: { id: number }[] }[];
  const open = batches.find((b) => b.state === "open" && b.applications.some((a) => a.id === id))!;
  const f = await c.manager.postJson(`/batches/${open.id}/forward`, {});
  expect(f.status, f.text).toBe(200);
  return id;
}

describe("LRA → RA over HTTP", () => {
  it("takes an application from intake to an approved issuance request, two people at the RA", async () => {
    const form = await c.reviewer.getJson("/applications/new");
    const { formToken, qualifications, managerRoles } = form.json();
    expect(formToken).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(qualifications).toContainEqual({ code: "Medical Doctor", ja: "医師" });
    expect(managerRoles).toContainEqual({ code: "Director of Hospital", ja: "病院長" });

    const id = await intake();
    const detail = (await c.reviewer.getJson(`/applications/${id}`)).json();
    expect(detail.application).toMatchObject({ id, state: "received", channel: "lra" });
    expect(detail.application.applicationNo).toMatch(/^A\d{4}-\d{6}$/);
    expect(detail.application.licenceCheck.result).toBe("match");
    expect(detail.application.licenceCheck.fields).toHaveLength(6);
    expect(detail.documents.map((d: { kind: string }) => d.kind).sort()).toEqual(["application_form", "identity_document", "licence_copy"]);
    expect(detail.documents[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(detail.actions).toEqual(expect.arrayContaining(["lra_approve", "lra_reject", "withdraw"]));
    expect(detail.actions).not.toContain("ra_approve");

    // The HTML detail page: licence check field by field, decision buttons for this operator.
    const page = await c.reviewer.get(`/applications/${id}`, { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("資格確認（台帳照合）");
    expect(page.text.match(/✔ 一致/g)?.length).toBe(6);
    expect(page.text).toContain('value="lra_approve"');
    expect(page.text).not.toContain('value="ra_approve"');
    expect(page.text).toMatch(/\d{4}年\d{1,2}月\d{1,2}日/);

    const approved = await c.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_approve", version: detail.application.version });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.json().application.state).toBe("lra_approved");

    // The reviewer cannot sign the batch off; the manager can.
    const batches = (await c.manager.getJson("/batches")).json().batches;
    const open = batches.find((b: { state: string; applications: { id: number }[] }) => b.state === "open" && b.applications.some((a) => a.id === id));
    expect(open).toBeTruthy();
    expect((await c.reviewer.postJson(`/batches/${open.id}/forward`, {})).status).toBe(403);
    const fwd = await c.manager.postJson(`/batches/${open.id}/forward`, {});
    expect(fwd.status, fwd.text).toBe(200);
    expect(fwd.json().batch.state).toBe("forwarded");
    expect(fwd.json().applications).toBeGreaterThanOrEqual(1);

    // RA: receive the batch, approve the application.
    const incoming = (await c.officer.getJson("/batches")).json().batches;
    const b = incoming.find((x: { id: number }) => x.id === open.id);
    expect(b).toMatchObject({ state: "forwarded", lraCode: "13-001" });
    const rec = await c.officer.postJson(`/batches/${open.id}/receive`, {});
    expect(rec.status, rec.text).toBe(200);
    expect(rec.json().batch.state).toBe("received");
    const raDetail = (await c.officer.getJson(`/applications/${id}`)).json();
    expect(raDetail.actions).toEqual(expect.arrayContaining(["ra_approve", "ra_return", "ra_reject"]));
    const ok = await c.officer.postJson(`/applications/${id}/decision`, { decision: "ra_approve" });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json().application).toMatchObject({ state: "ra_approved", subscriberId: expect.stringMatching(/^HP\d{8}$/) });

    // Issuance request: created by the officer, approved by an approver (not the officer).
    const ir = await c.officer.postJson(`/applications/${id}/issuance-request`, {});
    expect(ir.status, ir.text).toBe(201);
    const irId = ir.json().issuanceRequest.id;
    expect(ir.json().issuanceRequest.state).toBe("requested");
    const pending = (await c.approver.getJson("/issuance-requests?state=requested")).json().issuanceRequests;
    const mine = pending.find((x: { id: number }) => x.id === irId);
    expect(mine.creator).toMatchObject({ id: ops.officer.operator.id, username: ops.officer.username });
    expect(mine.application).toMatchObject({ id, nameKanji: rows[next - 1].name_kanji });
    expect((await c.officer.postJson(`/issuance-requests/${irId}/approve`, {})).status).toBe(403); // officers do not approve
    const appr = await c.approver.postJson(`/issuance-requests/${irId}/approve`, {});
    expect(appr.status, appr.text).toBe(200);
    expect(appr.json().issuanceRequest).toMatchObject({ id: irId, state: "approved", approvedBy: ops.approver.operator.id });
    expect((await t.db("applications").where({ id }).first("state")).state).toBe("issuance_requested");

    const html = await c.approver.get("/issuance-requests?state=approved", { accept: "html" });
    expect(html.status).toBe(200);
    expect(html.text).toContain(ops.officer.operator.displayName);
  });

  it("refuses the approver's own issuance request (two-person rule) with a clear message", async () => {
    const id = await forwarded();
    const batchId = Number((await t.db("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
    await c.officer.postJson(`/batches/${batchId}/receive`, {});
    expect((await c.approver2.postJson(`/applications/${id}/decision`, { decision: "ra_approve" })).status).toBe(200);
    const ir = await c.approver2.postJson(`/applications/${id}/issuance-request`, {});
    expect(ir.status).toBe(201);
    const irId = ir.json().issuanceRequest.id;
    const self = await c.approver2.postJson(`/issuance-requests/${irId}/approve`, {});
    expect(self.status).toBe(409);
    expect(self.json().errorJa).toContain("二者承認");
    const page = await c.approver2.get("/issuance-requests", { accept: "html" });
    expect(page.text).toContain("ご自身が作成した依頼です");
    expect((await c.approver.postJson(`/issuance-requests/${irId}/approve`, {})).status).toBe(200);
  });

  it("shows a licence mismatch field by field and refuses the approval", async () => {
    const id = await intake({ licenceDate: "1999-01-01" });
    const app = (await c.reviewer.getJson(`/applications/${id}`)).json().application;
    expect(app.licenceCheck.result).toBe("mismatch");
    const f = Object.fromEntries(app.licenceCheck.fields.map((x: { field: string; match: boolean }) => [x.field, x]));
    expect(f.registrationDate).toMatchObject({ applied: "1999-01-01", match: false });
    expect(f.registrationNumber.match).toBe(true);
    expect(f.nameKanji.match).toBe(true);
    const page = await c.reviewer.get(`/applications/${id}`, { accept: "html" });
    expect(page.text).toContain("✖ 台帳と不一致");
    expect(page.text.match(/✖ 不一致/g)?.length).toBe(1);
    expect(page.text).toContain("1999年1月1日");
    const r = await c.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_approve" });
    expect(r.status).toBe(400);
    expect(r.json().issues.map((i: { field: string }) => i.field)).toEqual(["licenceCheck"]);
    expect(r.json().issues[0].messageJa).toContain("一致しません");
    // The HTML form shows the reason on the page, state unchanged.
    const html = await c.reviewer.post(`/applications/${id}/decision`, { accept: "html", form: { decision: "lra_approve" } });
    expect(html.status).toBe(400);
    expect(html.text).toContain("免許情報が資格確認台帳と一致しません");
    expect((await t.db("applications").where({ id }).first("state")).state).toBe("received");
    // Rejecting needs a reason.
    expect((await c.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_reject" })).status).toBe(400);
    const rej = await c.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_reject", reason: "登録年月日が免許証と異なる" });
    expect(rej.status).toBe(200);
    expect(rej.json().application).toMatchObject({ state: "lra_rejected", decisionReason: "登録年月日が免許証と異なる" });
  });

  it("refuses oversize and disguised uploads with a clear 400 and no row; serves documents inline and sandboxed", async () => {
    const id = await intake({}, { docs: false, identity: false });
    const before = await count("application_documents");
    const big = Buffer.concat([samplePdf("big"), Buffer.alloc(MAX_DOCUMENT_BYTES)]);
    const r1 = await c.reviewer.upload(`/applications/${id}/documents`, { kind: "licence_copy" }, { filename: "big.pdf", bytes: big, type: "application/pdf" });
    expect([400, 413]).toContain(r1.status);
    expect(r1.json().issues[0]).toMatchObject({ field: "file", messageJa: expect.stringContaining("10 MB") });
    const exe = Buffer.from("MZ\x90\x00\x03\x00\x00\x00 this is a program renamed to .pdf", "latin1");
    const r2 = await c.reviewer.upload(`/applications/${id}/documents`, { kind: "licence_copy" }, { filename: "licence.pdf", bytes: exe, type: "application/pdf" });
    expect(r2.status).toBe(400);
    expect(r2.json().issues[0].messageJa).toContain("PDF・JPEG・PNG");
    const r3 = await c.reviewer.upload(`/applications/${id}/documents`, { kind: "licence_copy" }, { filename: "a.pdf", bytes: Buffer.alloc(0) });
    expect(r3.status).toBe(400);
    expect(await count("application_documents")).toBe(before);
    // HTML: the detail page comes back with the message next to the field.
    const html = await c.reviewer.request("POST", `/applications/${id}/documents?_csrf=${encodeURIComponent(c.reviewer.csrfToken!)}`, {
      accept: "html",
      body: (() => {
        const f = new FormData();
        f.append("kind", "licence_copy");
        f.append("file", new Blob([new Uint8Array(exe)], { type: "application/pdf" }), "licence.pdf");
        return f;
      })(),
    });
    expect(html.status).toBe(400);
    expect(html.text).toContain("PDF・JPEG・PNG のファイルのみ受け付けます");
    expect(await count("application_documents")).toBe(before);

    // A PNG sent as "photo.pdf": stored with the sniffed type, served inline with nosniff and a sandbox.
    const png = await c.reviewer.upload(`/applications/${id}/documents`, { kind: "identity_document" }, { filename: "photo.pdf", bytes: samplePng(), type: "application/pdf" });
    expect(png.status, png.text).toBe(201);
    expect(png.json().document).toMatchObject({ mediaType: "image/png", sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const doc = await c.reviewer.get(`/documents/${png.json().document.id}`);
    expect(doc.status).toBe(200);
    expect(doc.headers.get("content-type")).toBe("image/png");
    expect(doc.headers.get("content-disposition")).toMatch(/^inline;/);
    expect(doc.headers.get("x-content-type-options")).toBe("nosniff");
    expect(doc.headers.get("content-security-policy")).toMatch(/(^|; )sandbox(;|$)/);
    expect(doc.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect((await c.reviewer.get(`/documents/${png.json().document.id}?download=1`)).headers.get("content-disposition")).toMatch(/^attachment;.*filename="photo.png"/);
    // The RA and the auditor may read it; LRA B may not.
    expect((await c.officer.get(`/documents/${png.json().document.id}`)).status).toBe(200);
    expect((await c.auditor.get(`/documents/${png.json().document.id}`)).status).toBe(200);
    expect((await c.reviewerB.get(`/documents/${png.json().document.id}`)).status).toBe(403);
  });

  it("creates one application for a double-submitted form (same formToken), JSON and HTML", async () => {
    const i = next++;
    const token = (await c.reviewer.getJson("/applications/new")).json().formToken;
    const body = { ...applicationInputFor(rows[i], i), formToken: token };
    const [a, b] = await Promise.all([c.reviewer.postJson("/applications", body), c.reviewer.postJson("/applications", body)]);
    // At the same moment both may report 201 (each found no row first); one row either way.
    expect([200, 201]).toContain(a.status);
    expect([200, 201]).toContain(b.status);
    expect(a.json().application.id).toBe(b.json().application.id);
    const again = await c.reviewer.postJson("/applications", body);
    expect(again.status).toBe(200); // a later resubmission: the first application, unchanged
    expect(again.json().application.id).toBe(a.json().application.id);
    expect(Number((await t.db("applications").where({ licence_number: rows[i].registration_number }).count({ n: "*" }))[0].n)).toBe(1);

    const j = next++;
    const newPage = await c.reviewer.get("/applications/new", { accept: "html" });
    expect(newPage.text).toContain('<option value="Medical Doctor">医師（Medical Doctor）</option>');
    const htmlToken = /name="formToken" value="([^"]+)"/.exec(newPage.text)![1];
    const form = Object.fromEntries(Object.entries({ ...applicationInputFor(rows[j], j), formToken: htmlToken }).map(([k, v]) => [k, String(v)]));
    const p1 = await c.reviewer.post("/applications", { accept: "html", form });
    const p2 = await c.reviewer.post("/applications", { accept: "html", form });
    expect(p1.status).toBe(303);
    expect(p2.status).toBe(303);
    expect(p2.headers.get("location")).toBe(p1.headers.get("location"));
    expect(Number((await t.db("applications").where({ licence_number: rows[j].registration_number }).count({ n: "*" }))[0].n)).toBe(1);

    // A different token for the same licence: a duplicate application, refused.
    const dup = await c.reviewer.postJson("/applications", { ...applicationInputFor(rows[j], j), formToken: (await c.reviewer.getJson("/applications/new")).json().formToken });
    expect(dup.status).toBe(409);
    expect(dup.json().errorJa).toContain("重複申込");
  });

  it("validates the form with Japanese messages, field by field", async () => {
    const before = await count("applications");
    const r = await c.reviewer.postJson("/applications", { ...applicationInputFor(rows[0], 0, { nameKana: "Yamada", email: "x", qualification: "Wizard" }), formToken: "tok-aaaaaaaaaaaaaaaa" });
    expect(r.status).toBe(400);
    expect(r.json().issues.map((i: { field: string }) => i.field)).toEqual(expect.arrayContaining(["nameKana", "email", "qualification"]));
    const html = await c.reviewer.post("/applications", { accept: "html", form: { nameKanji: "山田　太郎", formToken: "tok-bbbbbbbbbbbbbbbb" } });
    expect(html.status).toBe(400);
    expect(html.text).toContain("必須項目です");
    expect(html.text).toContain('value="山田　太郎"');
    const badToken = await c.reviewer.post("/applications", { accept: "html", form: { nameKanji: "山田　太郎", formToken: "x" } });
    expect(badToken.status).toBe(400);
    expect(badToken.text).toContain("フォームを再読み込みしてから送信してください");
    expect(badToken.text).toMatch(/name="formToken" value="[A-Za-z0-9_-]{16,}"/);
    expect(await count("applications")).toBe(before);
  });

  it("refuses at intake what the IA could not issue: the clinic's kanji name without its Latin name (issue 12 §1)", async () => {
    const before = await count("applications");
    const i = next++;
    const clinic = { organizationKanji: "鈴木内科クリニック", organizationLatin: "" };
    const token = (await c.reviewer.getJson("/applications/new")).json().formToken;
    const r = await c.reviewer.postJson("/applications", { ...applicationInputFor(rows[i], i, clinic), formToken: token });
    expect(r.status, r.text).toBe(400);
    expect(r.json().code).toBe("invalid_input");
    const issue = r.json().issues.find((x: { field: string }) => x.field === "organizationLatin");
    expect(issue.messageJa).toContain("施設名（英字）");
    expect(issue.message).toContain("organisation name (Latin)");
    // The HTML form comes back with what was typed, and the field named.
    const page = await c.reviewer.get("/applications/new", { accept: "html" });
    const htmlToken = /name="formToken" value="([^"]+)"/.exec(page.text)![1];
    const form = Object.fromEntries(Object.entries({ ...applicationInputFor(rows[i], i, clinic), formToken: htmlToken }).map(([k, v]) => [k, String(v)]));
    const html = await c.reviewer.post("/applications", { accept: "html", form });
    expect(html.status).toBe(400);
    expect(html.text).toContain("施設名（英字）");
    expect(html.text).toContain('value="鈴木内科クリニック"');
    expect(html.text).toContain(`value="${form.nameLatin}"`);
    expect(await count("applications")).toBe(before);
  });

  it("refuses RA approval of an application the IA could not issue, naming the field; the state stays (issue 12 §1)", async () => {
    const id = await forwarded();
    // Data taken before the intake check existed (or changed since): the kanji name without the Latin one.
    await t.db("applications").where({ id }).update({ organization_kanji: "鈴木内科クリニック", organization_latin: null });
    const r = await c.officer.postJson(`/applications/${id}/decision`, { decision: "ra_approve" });
    expect(r.status, r.text).toBe(400);
    expect(r.json().issues.map((x: { field: string }) => x.field)).toContain("organizationLatin");
    expect(r.json().errorJa).toContain("施設名（英字）");
    const row = await t.db("applications").where({ id }).first("state", "subscriber_id");
    expect(row.state).toBe("forwarded");
    expect(row.subscriber_id).toBeNull();
    expect(await t.db("issuance_requests").where({ application_id: id }).first()).toBeUndefined();
  });

  it("lets exactly one of two RA officers approving at once succeed; the other gets a conflict message", async () => {
    const id = await forwarded();
    const [r1, r2] = await Promise.all([
      c.officer.postJson(`/applications/${id}/decision`, { decision: "ra_approve" }),
      c.officer2.postJson(`/applications/${id}/decision`, { decision: "ra_approve" }),
    ]);
    expect([r1.status, r2.status].sort()).toEqual([200, 409]);
    const loser = r1.status === 409 ? r1 : r2;
    expect(loser.json().errorJa).toContain("他の担当者が先に処理した可能性があります");
    expect(loser.json().code).toBe("conflict");
  });

  it("returns an application to the LRA with a reason; the LRA sees it and can review it again", async () => {
    const id = await forwarded();
    expect((await c.officer.postJson(`/applications/${id}/decision`, { decision: "ra_return" })).status).toBe(400);
    const r = await c.officer.postJson(`/applications/${id}/decision`, { decision: "ra_return", reason: "免許証の写しが不鮮明" });
    expect(r.status).toBe(200);
    const list = (await c.reviewer.getJson("/applications?state=returned_to_lra")).json().applications;
    expect(list.map((a: { id: number }) => a.id)).toContain(id);
    const d = (await c.reviewer.getJson(`/applications/${id}`)).json();
    expect(d.application.decisionReason).toBe("免許証の写しが不鮮明");
    expect(d.actions).toContain("lra_resubmit");
  });

  it("searches by kana, kanji, licence number and state; the LRA sees only its own association", async () => {
    const id = await intake({}, { docs: false, identity: false });
    const row = rows[next - 1];
    const kana = row.name_kana.split("\u3000")[0];
    const byKana = (await c.officer.getJson(`/applications?q=${encodeURIComponent(kana)}`)).json().applications;
    expect(byKana.map((a: { id: number }) => a.id)).toContain(id);
    const hira = kana.replace(/[\u30a1-\u30f6]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) - 0x60));
    expect((await c.reviewer.getJson(`/applications?q=${encodeURIComponent(hira)}`)).json().applications.map((a: { id: number }) => a.id)).toContain(id);
    const kanji = row.name_kanji.replace(/\u3000/g, "");
    expect((await c.reviewer.getJson(`/applications?q=${encodeURIComponent(kanji)}`)).json().applications.map((a: { id: number }) => a.id)).toContain(id);
    const byLicence = (await c.officer.getJson(`/applications?q=0${row.registration_number}&state=received`)).json().applications;
    expect(byLicence.map((a: { id: number }) => a.id)).toEqual([id]);
    expect((await c.officer.getJson(`/applications?q=${row.registration_number}&state=completed`)).json().applications).toEqual([]);
    // LRA B: nothing of association 13-001.
    expect((await c.reviewerB.getJson("/applications")).json().applications).toEqual([]);
    expect((await c.reviewerB.getJson(`/applications?q=${row.registration_number}`)).json().applications).toEqual([]);
    const page = await c.reviewer.get(`/applications?q=${encodeURIComponent(kana)}`, { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain(row.name_kanji);
  });
});

describe("roles and scope over HTTP", () => {
  it("refuses another association's application and documents (403), reading or acting", async () => {
    const id = await intake({}, { identity: false });
    const docId = Number((await t.db("application_documents").where({ application_id: id }).first("id")).id);
    expect((await c.reviewerB.getJson(`/applications/${id}`)).status).toBe(403);
    expect((await c.reviewerB.get(`/applications/${id}`, { accept: "html" })).status).toBe(403);
    expect((await c.reviewerB.get(`/documents/${docId}`)).status).toBe(403);
    expect((await c.reviewerB.postJson(`/applications/${id}/decision`, { decision: "lra_reject", reason: "x" })).status).toBe(403);
    expect((await c.reviewerB.postJson(`/applications/${id}/identity-check`, identityCheckInput())).status).toBe(403);
    const up = await c.reviewerB.upload(`/applications/${id}/documents`, { kind: "other" }, { filename: "a.pdf", bytes: samplePdf("intruder") });
    expect(up.status).toBe(403);
    const batchB = (await c.reviewerB.getJson("/batches")).json().batches;
    expect(batchB).toEqual([]);
    expect((await c.reviewer.getJson(`/applications/${id}`)).status).toBe(200);
    expect((await c.reviewer.getJson("/applications/999999")).status).toBe(404);
  });

  it("keeps LRA operators out of the RA console and RA operators out of the LRA console", async () => {
    const intoRa = new ConsoleClient(t.server.url, "/ra");
    const r = await intoRa.tryLogin(ops.lraIntruder.username, ops.lraIntruder.password, await ops.lraIntruder.nextCode());
    expect(r.status).toBe(403);
    expect((await intoRa.getJson("/applications")).status).toBe(401);
    const intoLra = new ConsoleClient(t.server.url, "/lra");
    const r2 = await intoLra.tryLogin(ops.raIntruder.username, ops.raIntruder.password, await ops.raIntruder.nextCode());
    expect(r2.status).toBe(403);
    // A signed-in LRA session opens nothing at /ra (and an RA session nothing at /lra).
    const borrowed = new ConsoleClient(t.server.url, "/ra");
    for (const [k, v] of c.reviewer.cookies) borrowed.cookies.set(k, v);
    expect((await borrowed.getJson("/applications")).status).toBe(401);
    expect((await borrowed.getJson("/issuance-requests")).status).toBe(401);
    const borrowed2 = new ConsoleClient(t.server.url, "/lra");
    for (const [k, v] of c.officer.cookies) borrowed2.cookies.set(k, v);
    expect((await borrowed2.getJson("/batches")).status).toBe(401);
  });

  it("lets the auditor read but not act", async () => {
    const id = await intake({}, { docs: false, identity: false });
    expect((await c.auditor.getJson("/applications")).status).toBe(200);
    expect((await c.auditor.getJson(`/applications/${id}`)).json().actions).toEqual([]);
    expect((await c.auditor.getJson("/applications/new")).status).toBe(403);
    expect((await c.auditor.postJson(`/applications/${id}/decision`, { decision: "lra_reject", reason: "x" })).status).toBe(403);
    expect((await c.auditor.getJson("/batches")).status).toBe(200);
  });

  it("needs the CSRF token on JSON posts too", async () => {
    const r = await c.reviewer.request("POST", "/applications", { json: applicationInputFor(rows[0], 0), csrf: false });
    expect(r.status).toBe(403);
    expect(r.json().code).toBe("csrf");
  });
});
