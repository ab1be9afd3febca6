/**
 * Handover over HTTP (HPKI-PROFILE §9.3 steps 5–6): the LRA receives a delivery batch, hands the
 * card over with an identity check and the signed receipt, the RA reviews the receipt (return with
 * a note, then accept) and the application completes. The IA steps between (claim, personalise,
 * pack, ship) run through the pipeline services with a stand-in card label: no HSM is needed to
 * test the consoles. Every console page is also rendered once as HTML.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeliveryBatch, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { claimIssuanceRequests, completeIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { startConsoleTestServer, type ConsoleClient, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";

let t: ConsoleTestServer;
let ia: TestOperator;
const lra = { reviewer: undefined as unknown as ConsoleClient, manager: undefined as unknown as ConsoleClient, other: undefined as unknown as ConsoleClient };
const ra = { officer: undefined as unknown as ConsoleClient, approver: undefined as unknown as ConsoleClient };

beforeAll(async () => {
  t = await startConsoleTestServer();
  const sign = (base: "/lra" | "/ra", op: TestOperator) => t.signIn(base, op);
  lra.reviewer = await sign("/lra", await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" }));
  lra.manager = await sign("/lra", await createTestOperator(t.db, "lra_manager", { lraCode: "13-001" }));
  lra.other = await sign("/lra", await createTestOperator(t.db, "lra_manager", { lraCode: "27-001" }));
  ra.officer = await sign("/ra", await createTestOperator(t.db, "ra_officer", { displayName: "登録 一郎" }));
  ra.approver = await sign("/ra", await createTestOperator(t.db, "ra_approver"));
  ia = await createTestOperator(t.db, "ia_operator");
});

afterAll(async () => t?.cleanup());

/** Every page of a console answers 200 in HTML (templates compile, data fits). */
async function pagesRender(c: ConsoleClient, paths: string[]): Promise<void> {
  for (const p of paths) {
    const r = await c.get(p, { accept: "html" });
    expect(r.status, `${c.base}${p}: ${r.text.slice(0, 400)}`).toBe(200);
    expect(r.text).toContain("</html>");
  }
}

describe("delivery, handover and receipt review over HTTP", () => {
  it("hands a card over at the LRA desk and completes the application at the RA", async () => {
    const rows = demoRegisterRows();
    // Intake to issuance request, over HTTP.
    const token = (await lra.reviewer.getJson("/applications/new")).json().formToken;
    const created = await lra.reviewer.postJson("/applications", { ...applicationInputFor(rows[3], 3), formToken: token });
    expect(created.status, created.text).toBe(201);
    const id = created.json().application.id as number;
    for (const u of requiredUploads("handover")) expect((await lra.reviewer.upload(`/applications/${id}/documents`, { kind: u.kind }, { filename: u.filename, bytes: u.bytes })).status).toBe(201);
    expect((await lra.reviewer.postJson(`/applications/${id}/identity-check`, identityCheckInput())).status).toBe(200);
    expect((await lra.reviewer.postJson(`/applications/${id}/decision`, { decision: "lra_approve" })).status).toBe(200);
    const batch = (await lra.manager.getJson("/batches")).json().batches[0];
    await pagesRender(lra.manager, ["/", "/applications", "/applications/new", `/applications/${id}`, "/batches", "/deliveries"]);
    expect((await lra.manager.post(`/batches/${batch.id}/forward`, { accept: "html", form: { confirmed: "1" } })).status).toBe(303);
    await pagesRender(ra.officer, ["/", "/applications", "/applications/new", "/batches", `/applications/${id}`, "/issuance-requests", "/receipts", "/receipts?state=all"]);
    expect((await ra.officer.post(`/batches/${batch.id}/receive`, { accept: "html", form: {} })).status).toBe(303);
    expect((await ra.officer.postJson(`/applications/${id}/decision`, { decision: "ra_approve" })).status).toBe(200);
    const ir = (await ra.officer.postJson(`/applications/${id}/issuance-request`, {})).json().issuanceRequest;
    const approvePage = await ra.approver.get("/issuance-requests", { accept: "html" });
    expect(approvePage.text).toContain("登録 一郎");
    expect(approvePage.text).toContain(`/ra/issuance-requests/${ir.id}/approve`);
    expect((await ra.approver.post(`/issuance-requests/${ir.id}/approve`, { accept: "html", form: {} })).status).toBe(303);

    // The IA (services): personalise, pack and ship.
    const [claimed] = await claimIssuanceRequests(t.db, ia.operator, 5);
    expect(Number(claimed.request.id)).toBe(ir.id);
    await completeIssuanceRequest(t.db, ia.operator, claimed.lease, { cardLabel: "CARD-E2E-0001", certificates: [] });
    const lraId = Number((await t.db("applications").where({ id }).first("lra_id")).lra_id);
    const { batch: delivery } = await createDeliveryBatch(t.db, ia.operator, lraId);
    await shipDeliveryBatch(t.db, ia.operator, Number(delivery.id));

    // LRA: the delivery is listed (not to the other association); receive it.
    const deliveries = (await lra.reviewer.getJson("/deliveries")).json().deliveries;
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ id: Number(delivery.id), state: "shipped" });
    expect(deliveries[0].applications[0]).toMatchObject({ id, state: "shipped", receipt: { state: "issued", receiptNo: expect.stringMatching(/^R-/) } });
    expect((await lra.other.getJson("/deliveries")).json().deliveries).toEqual([]);
    expect((await lra.other.postJson(`/deliveries/${delivery.id}/receive`, {})).status).toBe(403);
    expect((await lra.other.getJson(`/applications/${id}/handover`)).status).toBe(403);

    // Handover before the delivery is received: refused with the reason.
    const receipt1 = await lra.reviewer.upload(`/applications/${id}/documents`, { kind: "signed_receipt" }, { filename: "receipt.pdf", bytes: samplePdf("signed receipt 1") });
    expect(receipt1.status, receipt1.text).toBe(201);
    const early = await lra.reviewer.postJson(`/applications/${id}/handover`, { documentType: "driver_licence", documentNumber: "123456789012", photoMatches: true, signedReceiptDocumentId: receipt1.json().document.id });
    expect(early.status).toBe(409);
    expect(early.json().errorJa).toContain("配送バッチの受領");

    const rec = await lra.reviewer.postJson(`/deliveries/${delivery.id}/receive`, {});
    expect(rec.status, rec.text).toBe(200);
    expect(rec.json().delivery.state).toBe("received");
    await pagesRender(lra.reviewer, ["/deliveries", `/applications/${id}/handover`, `/applications/${id}`]);
    const hv = (await lra.reviewer.getJson(`/applications/${id}/handover`)).json();
    expect(hv.signedReceipts.map((d: { id: number }) => d.id)).toEqual([receipt1.json().document.id]);

    // The receipt QR (issue 12 §7): scanned on the deliveries page it opens this card's handover
    // page (full-width input as a scanner behind a Japanese IME types it); the page shows the card.
    const receiptNo: string = deliveries[0].applications[0].receipt.receiptNo;
    const wide = [...receiptNo].map((ch) => (ch === "-" ? "－" : String.fromCharCode(ch.charCodeAt(0) + 0xfee0))).join("");
    const scan = await lra.reviewer.get(`/handover/scan?receiptNo=${encodeURIComponent(wide)}`, { accept: "html" });
    expect(scan.status).toBe(303);
    expect(scan.headers.get("location")).toBe(`/lra/applications/${id}/handover`);
    expect((await lra.other.get(`/handover/scan?receiptNo=${receiptNo}`, { accept: "html" })).status).toBe(403);
    const hvPage = (await lra.reviewer.get(`/applications/${id}/handover`, { accept: "html" })).text;
    expect(hvPage).toContain("CARD-E2E-0001");
    expect(hvPage).toContain('name="receiptNo"');
    const wrongCard = await lra.reviewer.postJson(`/applications/${id}/handover`, { documentType: "driver_licence", documentNumber: "1234", photoMatches: true, signedReceiptDocumentId: receipt1.json().document.id, receiptNo: "R-AAAAAAAAAAAA" });
    expect(wrongCard.status).toBe(400);
    expect(wrongCard.json().issues[0]).toMatchObject({ field: "receiptNo" });

    // The photo must have been compared.
    const noPhoto = await lra.reviewer.postJson(`/applications/${id}/handover`, { documentType: "driver_licence", documentNumber: "123456789012", photoMatches: false, signedReceiptDocumentId: receipt1.json().document.id });
    expect(noPhoto.status).toBe(400);
    const handed = await lra.reviewer.postJson(`/applications/${id}/handover`, { documentType: "driver_licence", documentNumber: "123456789012", photoMatches: true, signedReceiptDocumentId: receipt1.json().document.id, receiptNo });
    expect(handed.status, handed.text).toBe(200);
    expect(handed.json().application.state).toBe("handed_over");

    // RA: the receipt waits for review; return it with a note (required), the desk records it again.
    const waiting = (await ra.officer.getJson("/receipts?state=recorded")).json().receipts;
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatchObject({ applicationId: id, state: "recorded", signedDocumentId: receipt1.json().document.id, handoverCheck: { documentType: "driver_licence", photoMatches: true } });
    await pagesRender(ra.officer, ["/receipts"]);
    expect((await ra.officer.getJson(`/documents/${waiting[0].signedDocumentId}`)).status).toBe(200);
    expect((await ra.officer.postJson(`/receipts/${waiting[0].id}/review`, { decision: "return" })).status).toBe(400);
    const returned = await ra.officer.postJson(`/receipts/${waiting[0].id}/review`, { decision: "return", note: "署名欄が空白です" });
    expect(returned.status).toBe(200);
    expect(returned.json().receipt).toMatchObject({ state: "returned", reviewNote: "署名欄が空白です" });
    const page = await lra.reviewer.get(`/applications/${id}/handover`, { accept: "html" });
    expect(page.text).toContain("署名欄が空白です");
    const receipt2 = await lra.reviewer.upload(`/applications/${id}/documents`, { kind: "signed_receipt" }, { filename: "receipt-2.pdf", bytes: samplePdf("signed receipt 2") });
    expect(receipt2.status).toBe(201);

    // The desk records the corrected receipt; the RA accepts it and the application completes.
    const again = await t.db("receipts").where({ application_id: id }).first();
    expect(again.state).toBe("returned");
    const hv2 = (await lra.reviewer.getJson(`/applications/${id}/handover`)).json();
    expect(hv2.receipt).toMatchObject({ state: "returned", reviewNote: "署名欄が空白です" });
    const same = await lra.reviewer.postJson(`/applications/${id}/receipt`, { signedReceiptDocumentId: receipt1.json().document.id });
    expect(same.status).toBe(409); // the returned scan again: refused
    expect((await lra.other.postJson(`/applications/${id}/receipt`, { signedReceiptDocumentId: receipt2.json().document.id })).status).toBe(403);
    const again2 = await lra.reviewer.post(`/applications/${id}/receipt`, { accept: "html", form: { signedReceiptDocumentId: String(receipt2.json().document.id) } });
    expect(again2.status).toBe(303);
    const accepted = await ra.officer.post(`/receipts/${again.id}/review`, { accept: "html", form: { decision: "accept" } });
    expect(accepted.status).toBe(303);
    expect((await t.db("applications").where({ id }).first("state")).state).toBe("completed");
    const done = (await ra.officer.getJson(`/applications?q=${rows[3].registration_number}&state=completed`)).json().applications;
    expect(done.map((a: { id: number }) => a.id)).toEqual([id]);
  });
});
