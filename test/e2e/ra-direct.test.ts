/**
 * An application the RA takes directly (by mail, no LRA) over HTTP: intake with channel ra_mail,
 * identity check on the mailed copies, RA approval from "received", issuance request approved by a
 * second person, and — after the IA services pack the card for the RA desk — delivery, handover
 * and receipt review at the RA. LRA operators see none of it. Also the English pages.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeliveryBatch, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { claimIssuanceRequests, completeIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { startConsoleTestServer, type ConsoleClient, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";

let t: ConsoleTestServer;
let ia: TestOperator;
let officer: ConsoleClient;
let approver: ConsoleClient;
let lraReviewer: ConsoleClient;

beforeAll(async () => {
  t = await startConsoleTestServer();
  const sign = (base: "/lra" | "/ra", op: TestOperator) => t.signIn(base, op);
  officer = await sign("/ra", await createTestOperator(t.db, "ra_officer"));
  approver = await sign("/ra", await createTestOperator(t.db, "ra_approver"));
  lraReviewer = await sign("/lra", await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" }));
  ia = await createTestOperator(t.db, "ia_operator");
});

afterAll(async () => t?.cleanup());

describe("RA direct application over HTTP", () => {
  it("takes a mailed application, approves it at the RA and hands the card over at the RA desk", async () => {
    const rows = demoRegisterRows();
    const form = (await officer.getJson("/applications/new")).json();
    expect(form.channels).toEqual(["ra_desk", "ra_mail"]);
    const bad = await officer.postJson("/applications", { ...applicationInputFor(rows[5], 5), formToken: form.formToken, channel: "fax" });
    expect(bad.status).toBe(400);
    const created = await officer.postJson("/applications", { ...applicationInputFor(rows[5], 5), formToken: form.formToken, channel: "ra_mail" });
    expect(created.status, created.text).toBe(201);
    const app = created.json().application;
    expect(app).toMatchObject({ channel: "ra_mail", lraId: null, state: "received", licenceCheck: { result: "match" } });
    const id = app.id as number;

    // Not visible to an LRA.
    expect((await lraReviewer.getJson(`/applications/${id}`)).status).toBe(403);
    expect((await lraReviewer.getJson("/applications")).json().applications).toEqual([]);

    for (const u of requiredUploads("direct")) expect((await officer.upload(`/applications/${id}/documents`, { kind: u.kind }, u)).status).toBe(201);
    const idc = await officer.postJson(`/applications/${id}/identity-check`, { ...identityCheckInput(), method: "mail_copies", photoMatches: false });
    expect(idc.status, idc.text).toBe(200);
    expect(idc.json().application.identityCheck).toMatchObject({ method: "mail_copies" });
    const detail = (await officer.getJson(`/applications/${id}`)).json();
    expect(detail.actions).toEqual(expect.arrayContaining(["ra_approve", "ra_reject", "withdraw"]));
    expect(detail.actions).not.toContain("ra_return"); // nothing to return to
    const page = await officer.get(`/applications/${id}`, { accept: "html" });
    expect(page.text).toContain("郵送");
    expect((await officer.postJson(`/applications/${id}/decision`, { decision: "ra_approve", version: detail.application.version })).status).toBe(200);
    const ir = (await officer.postJson(`/applications/${id}/issuance-request`, {})).json().issuanceRequest;
    expect((await officer.postJson(`/applications/${id}/issuance-request`, {})).status).toBe(409);
    expect((await approver.postJson(`/issuance-requests/${ir.id}/approve`, {})).status).toBe(200);

    // IA (services): personalise and ship to the RA desk.
    const [claimed] = await claimIssuanceRequests(t.db, ia.operator, 5);
    expect(Number(claimed.request.id)).toBe(ir.id);
    await completeIssuanceRequest(t.db, ia.operator, claimed.lease, { cardLabel: "CARD-E2E-RA-1", certificates: [] });
    const { batch } = await createDeliveryBatch(t.db, ia.operator, null);
    await shipDeliveryBatch(t.db, ia.operator, Number(batch.id));

    // The RA desk receives the delivery and hands the card over; the LRA sees no delivery.
    expect((await lraReviewer.getJson("/deliveries")).json().deliveries).toEqual([]);
    expect((await lraReviewer.postJson(`/deliveries/${batch.id}/receive`, {})).status).toBe(403);
    const deliveries = (await officer.getJson("/deliveries")).json().deliveries;
    expect(deliveries.map((d: { id: number }) => d.id)).toEqual([Number(batch.id)]);
    const deliveriesPage = await officer.get("/deliveries", { accept: "html" });
    expect(deliveriesPage.status).toBe(200);
    expect(deliveriesPage.text).toContain("カードの受領を記録");
    expect((await officer.post(`/deliveries/${batch.id}/receive`, { accept: "html", form: {} })).status).toBe(303);
    const receiptDoc = await officer.upload(`/applications/${id}/documents`, { kind: "signed_receipt" }, { filename: "receipt.pdf", bytes: samplePdf("ra receipt") });
    expect(receiptDoc.status).toBe(201);
    const handoverPage = await officer.get(`/applications/${id}/handover`, { accept: "html" });
    expect(handoverPage.status).toBe(200);
    expect(handoverPage.text).toContain("交付を記録");
    const handed = await officer.postJson(`/applications/${id}/handover`, { documentType: "passport", documentNumber: "TK1234567", photoMatches: "on", signedReceiptDocumentId: receiptDoc.json().document.id });
    expect(handed.status, handed.text).toBe(200);
    expect(handed.json().application.state).toBe("handed_over");

    const receipts = (await approver.getJson("/receipts")).json().receipts;
    expect(receipts).toHaveLength(1);
    const reviewed = await approver.postJson(`/receipts/${receipts[0].id}/review`, { decision: "accept" });
    expect(reviewed.status).toBe(200);
    expect(reviewed.json().receipt.state).toBe("accepted");
    expect((await officer.getJson(`/applications/${id}`)).json().application.state).toBe("completed");
  });

  it("switches to English", async () => {
    const r = await officer.get("/applications?lang=en", { accept: "html" });
    expect(r.status).toBe(200);
    expect(r.text).toContain("<html lang=\"en\">");
    expect(r.text).toContain("Name, kana, registration or application number");
    const ja = await officer.get("/applications?lang=ja", { accept: "html" });
    expect(ja.text).toContain("氏名・フリガナ・登録番号・申込番号");
  });
});
