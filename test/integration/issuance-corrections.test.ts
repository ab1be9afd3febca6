/**
 * Corrections and failed issuance (issue 12 §1 second half, §2) over real HTTP through the LRA and
 * RA consoles' JSON interface, on one Postgres database with the real IA (SoftHSM cards):
 * - an edit is audited with its changed fields before and after, re-runs the licence check, and a
 *   failed check proposes the nearest register entries (never applied); a returned application
 *   keeps its documents when corrected and resubmitted;
 * - an application approved with data the IA refuses (the clinic case: 施設名（英字） empty while
 *   施設名（漢字） is given — as approved before the dry run existed) fails at the IA, the RA sees
 *   the failure in Japanese naming 施設名（英字）, corrects it, resubmits (another approver than
 *   the corrector approves), and the card is issued on a new card — the blank one released —
 *   through delivery and handover to completion;
 * - a failure forced with HPKI_FAULT=after-keygen:1:throw (a key pair already on the card) is
 *   retried unchanged: straight back to the queue, its card spoiled;
 * - `hpki audit verify` (verifyAuditChain) holds at the end.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { loadConfig } from "../../src/config.ts";
import { personaliseApprovedRequests } from "../../src/ia/card-personalisation.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { createDeliveryBatch, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { forwardLraBatch } from "../../src/pipeline/lra-batches.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";
import { setUpRegistration, type Staff } from "./revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let server: StartedServer;
let home: string;
const clients: Record<string, ConsoleClient> = {};
const rows = demoRegisterRows();
const db = () => t.ctx.db;

beforeAll(async () => {
  t = await openTestIa("corrections");
  s = await setUpRegistration(t);
  home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-corrections-"));
  const cfg = loadConfig({ HPKI_HOME: home, HPKI_SESSION_SECRET: "corrections-console-secret-0123456789" });
  server = await startServer({ cfg, db: db(), roles: ["lra", "ra"], port: 0 });
  const sign = async (name: string, base: "/lra" | "/ra", op: Staff[keyof Staff]) => {
    clients[name] = new ConsoleClient(server.url, base);
    await clients[name].login(op);
  };
  await sign("reviewer", "/lra", s.reviewer);
  await sign("officer", "/ra", s.officer);
  await sign("approver", "/ra", s.approver);
  await sign("approver2", "/ra", s.approver2);
}, 300_000);

afterAll(async () => {
  await server?.close();
  await t?.cleanup();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

/** The audit records of `action` on application number `no`, oldest first. */
async function auditOf(action: string, objectId: string): Promise<{ details: Record<string, unknown> }[]> {
  return db()("audit_log").where({ action, object_id: objectId }).orderBy("seq").select("details");
}

describe("corrections at the desks", { timeout: 300_000 }, () => {
  it("an LRA edit is audited before/after, re-runs the licence check and proposes the nearest register entries", async () => {
    const r = rows[1];
    const typo = `${r.registration_number.slice(0, -1)}${(Number(r.registration_number.slice(-1)) + 1) % 10}`;
    const form = (await clients.reviewer.getJson("/applications/new")).json();
    const created = await clients.reviewer.postJson("/applications", { ...applicationInputFor(r, 101, { licenceNumber: typo }), formToken: form.formToken });
    expect(created.status, created.text).toBe(201);
    const app = created.json().application;
    expect(app.licenceCheck.result).toBe("not_found");
    const id = app.id as number;
    for (const u of requiredUploads("c101")) expect((await clients.reviewer.upload(`/applications/${id}/documents`, { kind: u.kind }, u)).status).toBe(201);

    // The nearest entries: the real licence, one digit off — shown, not applied.
    const nearest = (await clients.reviewer.getJson(`/applications/${id}/nearest-licences`)).json().nearest;
    expect(nearest[0]).toMatchObject({ registrationNumber: r.registration_number, reasons: expect.arrayContaining(["number", "kana", "kanji"]) });
    const page = await clients.reviewer.get(`/applications/${id}`, { accept: "html" });
    expect(page.text).toContain("台帳の近い登録");
    expect(page.text).toContain("番号が1桁違い");
    expect(page.text).toContain("申込内容を訂正");
    expect((await clients.reviewer.getJson(`/applications/${id}`)).json().application.licenceNumber).toBe(typo);

    const editForm = await clients.reviewer.get(`/applications/${id}/edit`, { accept: "html" });
    expect(editForm.status).toBe(200);
    expect(editForm.text).toContain(`value="${typo}"`);
    const stale = await clients.reviewer.postJson(`/applications/${id}/edit`, { ...applicationInputFor(r, 101), version: app.version + 7 });
    expect(stale.status, stale.text).toBe(409); // a form shown before another change
    const current = (await clients.reviewer.getJson(`/applications/${id}`)).json().application;
    const ok = await clients.reviewer.postJson(`/applications/${id}/edit`, { ...applicationInputFor(r, 101), version: current.version });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json().changes).toEqual({ licenceNumber: { before: typo, after: r.registration_number } });
    expect(ok.json().licenceCheck.result).toBe("match");
    expect(ok.json().nearest).toEqual([]);
    const [audit] = await auditOf("application.edited", app.applicationNo);
    expect(audit.details).toMatchObject({
      state: "received", changes: { licenceNumber: { before: typo, after: r.registration_number } },
      licenceCheck: { before: "not_found", after: "match" },
    });
    // Nothing changed: nothing written.
    const again = await clients.reviewer.postJson(`/applications/${id}/edit`, applicationInputFor(r, 101));
    expect(again.json().changes).toEqual({});
    expect(await auditOf("application.edited", app.applicationNo)).toHaveLength(1);
    // The dry run still refuses what could not be issued (the clinic case), naming the field.
    const clinic = await clients.reviewer.postJson(`/applications/${id}/edit`, applicationInputFor(r, 101, { organizationKanji: "鈴木内科クリニック", organizationLatin: "" }));
    expect(clinic.status).toBe(400);
    expect(clinic.json().errorJa).toContain("施設名（英字）");
  });

  it("a returned application is corrected at the LRA and resubmitted with its documents", async () => {
    const r = rows[2];
    const app = await submitApplication(db(), s.reviewer.operator, t.ctx.policies.hcRoles, applicationInputFor(r, 102));
    const id = Number(app.id);
    for (const u of requiredUploads("c102")) await addDocument(db(), s.reviewer.operator, id, u);
    await recordIdentityCheck(db(), s.reviewer.operator, id, identityCheckInput());
    await decideApplication(db(), s.reviewer.operator, id, "lra_approve");
    await forwardLraBatch(db(), s.manager.operator, Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id));
    await decideApplication(db(), s.officer.operator, id, "ra_return", { reason: "電話番号の誤記" });
    const docsBefore = (await clients.reviewer.getJson(`/applications/${id}`)).json().documents;
    expect(docsBefore).toHaveLength(3);
    const edit = await clients.reviewer.postJson(`/applications/${id}/edit`, applicationInputFor(r, 102, { phone: "03-9876-5432" }));
    expect(edit.status, edit.text).toBe(200);
    expect(edit.json().changes).toEqual({ phone: { before: "03-1234-5678", after: "03-9876-5432" } });
    expect((await clients.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_resubmit" })).status).toBe(200);
    const after = (await clients.reviewer.getJson(`/applications/${id}`)).json();
    expect(after.application.state).toBe("received");
    expect(after.documents.map((d: { id: number }) => d.id)).toEqual(docsBefore.map((d: { id: number }) => d.id));
    // The RA cannot edit what is under LRA review; the LRA cannot once it has left for the RA.
    expect((await clients.officer.postJson(`/applications/${id}/edit`, applicationInputFor(r, 102))).status).toBe(409);
  });
});

describe("a failed issuance request corrected and retried", { timeout: 600_000 }, () => {
  /** An application taken at the RA desk up to an approved issuance request; returns ids. */
  async function approvedAtRa(i: number, over: Record<string, unknown> = {}): Promise<{ id: number; no: string; requestId: number }> {
    const form = (await clients.officer.getJson("/applications/new")).json();
    const created = await clients.officer.postJson("/applications", { ...applicationInputFor(rows[i], i, over), formToken: form.formToken, channel: "ra_desk" });
    expect(created.status, created.text).toBe(201);
    const app = created.json().application;
    for (const u of requiredUploads(`f${i}`)) expect((await clients.officer.upload(`/applications/${app.id}/documents`, { kind: u.kind }, u)).status).toBe(201);
    expect((await clients.officer.postJson(`/applications/${app.id}/identity-check`, identityCheckInput())).status).toBe(200);
    const approved = await clients.officer.postJson(`/applications/${app.id}/decision`, { decision: "ra_approve" });
    expect(approved.status, approved.text).toBe(200);
    const ir = (await clients.officer.postJson(`/applications/${app.id}/issuance-request`, {})).json().issuanceRequest;
    expect((await clients.approver.postJson(`/issuance-requests/${ir.id}/approve`, {})).status).toBe(200);
    return { id: app.id, no: app.applicationNo, requestId: ir.id };
  }

  it("the clinic case: failure named 施設名（英字）, corrected, approved by another approver, issued on a new card and handed over", async () => {
    const a = await approvedAtRa(3, { organizationKanji: "鈴木内科クリニック", organizationLatin: "Suzuki Naika Clinic" });
    // Approved before the dry run existed (issue 12): the Latin name was left empty.
    await db()("applications").where({ id: a.id }).update({ organization_latin: null });
    const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(run.failed.map((f) => f.requestId)).toEqual([a.requestId]);
    const failedIr = await db()("issuance_requests").where({ id: a.requestId }).first();
    expect(failedIr.state).toBe("failed");
    const blankCard = failedIr.card_label as string;
    expect(blankCard).toBeTruthy();

    const failure = (await clients.officer.getJson(`/issuance-requests/${a.requestId}/failure`)).json().failure;
    expect(failure.fields).toEqual([{ field: "organizationLatin", ja: "施設名（英字）", en: "organisation name (Latin)" }]);
    expect(failure.messageJa).toContain("施設名（英字）");
    const page = await clients.officer.get(`/applications/${a.id}`, { accept: "html" });
    expect(page.text).toContain("発行局で発行できませんでした");
    expect(page.text).toContain("施設名（英字）");
    expect(page.text).toContain("申込内容を訂正");
    const failedList = (await clients.officer.getJson("/issuance-requests?state=failed")).json().issuanceRequests;
    expect(failedList.find((x: { id: number }) => x.id === a.requestId).failure.fields[0].ja).toBe("施設名（英字）");
    const list = await clients.officer.get("/issuance-requests?state=failed", { accept: "html" });
    expect(list.text).toContain("施設名（英字）");

    // Not retried as it is: the dry run names the field.
    const refused = await clients.officer.postJson(`/issuance-requests/${a.requestId}/retry`, {});
    expect(refused.status).toBe(400);
    expect(refused.json().errorJa).toContain("施設名（英字）");

    // The approver corrects it (RA edit of a failed request), then resubmits: back to approval.
    const edit = await clients.approver.postJson(`/applications/${a.id}/edit`, applicationInputFor(rows[3], 3, { organizationKanji: "鈴木内科クリニック", organizationLatin: "Suzuki Naika Clinic" }));
    expect(edit.status, edit.text).toBe(200);
    expect(edit.json().changes).toEqual({ organizationLatin: { before: null, after: "Suzuki Naika Clinic" } });
    const retried = await clients.approver.postJson(`/issuance-requests/${a.requestId}/retry`, {});
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json()).toMatchObject({ reapproval: true, card: { card: blankCard, status: "released", certificatesToRevoke: [] }, issuanceRequest: { state: "requested", approvedBy: null, cardLabel: null } });
    expect((await db()("cards").where({ label: blankCard }).first()).status).toBe("blank");

    // Two-person rule: neither the creator nor the corrector approves the corrected request.
    const own = await clients.approver.postJson(`/issuance-requests/${a.requestId}/approve`, {});
    expect(own.status).toBe(409);
    expect(own.json().errorJa).toContain("訂正者以外");
    expect((await clients.approver2.postJson(`/issuance-requests/${a.requestId}/approve`, {})).status).toBe(200);

    const second = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(second.failed).toEqual([]);
    const issued = second.issued.find((c) => c.requestId === a.requestId)!;
    expect(issued.cardLabel).not.toBe(blankCard);
    expect(issued.certificates).toHaveLength(2);

    // Delivery to the RA desk, handover, receipt review: completed.
    const { batch } = await createDeliveryBatch(db(), s.ia.operator, null);
    await shipDeliveryBatch(db(), s.ia.operator, Number(batch.id));
    expect((await clients.officer.postJson(`/deliveries/${batch.id}/receive`, {})).status).toBe(200);
    const receiptDoc = await clients.officer.upload(`/applications/${a.id}/documents`, { kind: "signed_receipt" }, { filename: "receipt.pdf", bytes: samplePdf("clinic receipt") });
    const handed = await clients.officer.postJson(`/applications/${a.id}/handover`, { documentType: "passport", documentNumber: "TK1234567", photoMatches: "on", signedReceiptDocumentId: receiptDoc.json().document.id });
    expect(handed.status, handed.text).toBe(200);
    const receipt = (await clients.approver.getJson("/receipts")).json().receipts.find((x: { applicationId: number }) => x.applicationId === a.id);
    expect((await clients.approver.postJson(`/receipts/${receipt.id}/review`, { decision: "accept" })).status).toBe(200);
    expect((await clients.officer.getJson(`/applications/${a.id}`)).json().application.state).toBe("completed");
    expect((await db()("cards").where({ label: issued.cardLabel }).first()).status).toBe("active");

    const actions = (await db()("audit_log").where({ object_id: String(a.requestId), object_type: "issuance_request" }).orderBy("seq").select("action")).map((x) => x.action);
    expect(actions).toEqual(expect.arrayContaining(["issuance_request.failed", "issuance_request.resubmitted", "issuance_request.approved", "issuance_request.issued"]));
    expect(await db()("audit_log").where({ action: "card.released", object_id: blankCard }).first()).toBeTruthy();
  });

  it("a forced IA failure after the key pair was made is retried unchanged: back to the queue, the card spoiled", async () => {
    const a = await approvedAtRa(4);
    process.env.HPKI_FAULT = "after-keygen:1:throw";
    let run;
    try {
      run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    } finally {
      delete process.env.HPKI_FAULT;
    }
    expect(run.failed).toEqual([expect.objectContaining({ requestId: a.requestId, error: expect.stringContaining("fault injected") })]);
    const card = (await db()("issuance_requests").where({ id: a.requestId }).first()).card_label as string;
    const failure = (await clients.officer.getJson(`/issuance-requests/${a.requestId}/failure`)).json().failure;
    expect(failure).toMatchObject({ fields: [], problems: [] });
    expect(failure.messageJa).toContain("再発行");
    const retried = await clients.officer.postJson(`/issuance-requests/${a.requestId}/retry`, {});
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json()).toMatchObject({ reapproval: false, card: { card, status: "spoiled" }, issuanceRequest: { state: "approved" } });
    expect((await db()("cards").where({ label: card }).first()).status).toBe("spoiled");
    const again = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(again.failed).toEqual([]);
    expect(again.issued.find((c) => c.requestId === a.requestId)!.cardLabel).not.toBe(card);
  });

  it("a failed request can be cancelled with a reason (the application withdrawn); the audit chain holds", async () => {
    const a = await approvedAtRa(5, { organizationKanji: "佐藤クリニック", organizationLatin: "Sato Clinic" });
    await db()("applications").where({ id: a.id }).update({ organization_latin: null });
    await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect((await clients.officer.postJson(`/issuance-requests/${a.requestId}/cancel`, { reason: "" })).status).toBe(400);
    const cancelled = await clients.officer.postJson(`/issuance-requests/${a.requestId}/cancel`, { reason: "申請者の辞退" });
    expect(cancelled.status, cancelled.text).toBe(200);
    expect(cancelled.json().application.state).toBe("withdrawn");
    expect((await db()("issuance_requests").where({ id: a.requestId }).first()).state).toBe("withdrawn");
    expect(await verifyAuditChain(db())).toMatchObject({ ok: true });
  });
});
