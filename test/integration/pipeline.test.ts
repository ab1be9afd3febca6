/**
 * The registration pipeline through its services on a real database and SoftHSM: from LRA intake
 * to the RA's receipt review, with certificates on cards that OpenSSL verifies; and the refusals
 * the issue lists (licence mismatch, missing document, duplicate, double submit, two-person
 * rule, concurrent approval, cross-association access, bad uploads).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { personaliseApprovedRequests, readPinMailer } from "../../src/ia/card-personalisation.ts";
import { pinMailerPath } from "../../src/ia/cards.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { createDeliveryBatch, handOverCard, receiveDeliveryBatch, reviewReceipt, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { ConflictError, ForbiddenError, ValidationError } from "../../src/pipeline/errors.ts";
import { approveIssuanceRequest, claimIssuanceRequests, createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { forwardLraBatch, receiveLraBatch } from "../../src/pipeline/lra-batches.ts";
import type { Operator } from "../../src/pipeline/operator.ts";
import { toPem } from "../../src/pki/pem.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { opensslVerify } from "../helpers/openssl.ts";
import { createTestOperator } from "../helpers/operators.ts";
import { waitFor } from "../helpers/wait.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf, DEMO_LICENCE_REGISTER } from "../helpers/pipeline.ts";

let t: TestIa;
const ops = {} as Record<"reviewer" | "manager" | "otherReviewer" | "officer" | "officer2" | "approver" | "ia", Operator>;
const rows = demoRegisterRows();
let next = 0;

beforeAll(async () => {
  t = await openTestIa("pipeline");
  await runDemoCeremony(t.ctx, { actor: "test", role: "ia" });
  await importLicenceRegister(t.ctx.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  const mk = async (role: Parameters<typeof createTestOperator>[1], lraCode?: string) => (await createTestOperator(t.ctx.db, role, { lraCode })).operator;
  ops.reviewer = await mk("lra_reviewer", "13-001");
  ops.manager = await mk("lra_manager", "13-001");
  ops.otherReviewer = await mk("lra_reviewer", "27-001");
  ops.officer = await mk("ra_officer");
  ops.officer2 = await mk("ra_officer");
  ops.approver = await mk("ra_approver");
  ops.ia = await mk("ia_operator");
});
afterAll(async () => t?.cleanup());

const db = () => t.ctx.db;
const hcRoles = () => t.ctx.policies.hcRoles;

/** Intake + documents + identity check by the LRA reviewer; returns the application id. */
async function lraIntake(over: Record<string, unknown> = {}, opts: { skipKinds?: string[] } = {}): Promise<number> {
  const i = next++;
  const app = await submitApplication(db(), ops.reviewer, hcRoles(), applicationInputFor(rows[i], i, over));
  for (const u of requiredUploads(`app${i}`).filter((u) => !opts.skipKinds?.includes(u.kind))) {
    await addDocument(db(), ops.reviewer, Number(app.id), u);
  }
  await recordIdentityCheck(db(), ops.reviewer, Number(app.id), identityCheckInput());
  return Number(app.id);
}

async function state(id: number): Promise<string> {
  return (await db()("applications").where({ id }).first("state")).state;
}

describe("registration pipeline (services)", () => {
  it("takes an application from LRA intake to the RA's receipt review, with certificates on a card", async () => {
    const id = await lraIntake();
    expect((await db()("applications").where({ id }).first()).licence_check.result).toBe("match");
    await decideApplication(db(), ops.reviewer, id, "lra_approve");
    const batchId = Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
    await expect(forwardLraBatch(db(), ops.reviewer, batchId)).rejects.toBeInstanceOf(ForbiddenError); // manager signs off
    const fwd = await forwardLraBatch(db(), ops.manager, batchId);
    expect(fwd.applications).toBeGreaterThanOrEqual(1);
    await receiveLraBatch(db(), ops.officer, batchId);
    await decideApplication(db(), ops.officer, id, "ra_approve");
    const app = await db()("applications").where({ id }).first();
    expect(app.subscriber_id).toMatch(/^HP\d{8}$/);

    const ir = await createIssuanceRequest(db(), ops.officer, id);
    await approveIssuanceRequest(db(), ops.approver, Number(ir.id));
    const run = await personaliseApprovedRequests(t.ctx, ops.ia);
    expect(run.failed).toEqual([]);
    const card = run.issued.find((c) => c.requestId === Number(ir.id))!;
    expect(card.certificates.map((c) => c.profile).sort()).toEqual(["auth-person", "sign"]);
    expect(await state(id)).toBe("issued");

    // OpenSSL checks both certificates against the demo chain; the card holds them.
    for (const c of card.certificates) {
      const row = await db()("certificates as c").join("certificate_authorities as a", "a.id", "c.ca_id").where({ "c.serial_hex": c.serialHex }).first("c.der", "c.card_label", "a.name");
      expect(row.card_label).toBe(card.cardLabel);
      const leaf = path.join(t.work, `${c.serialHex}.pem`);
      fs.writeFileSync(leaf, toPem(Buffer.from(row.der)));
      const v = opensslVerify(t.pem("demo-root"), t.pem(row.name), leaf);
      expect(v.output).toContain(": OK");
    }
    const pin = readPinMailer(pinMailerPath(t.ctx.cfg.mailDir, card.cardLabel));
    const session = await t.ctx.cards.openCard(card.cardLabel, pin);
    try {
      expect((await session.listCertificates()).length).toBe(2);
    } finally {
      session.close();
    }

    const { batch } = await createDeliveryBatch(db(), ops.ia, app.lra_id);
    await shipDeliveryBatch(db(), ops.ia, Number(batch.id));
    await expect(receiveDeliveryBatch(db(), ops.otherReviewer, Number(batch.id))).rejects.toBeInstanceOf(ForbiddenError);
    await receiveDeliveryBatch(db(), ops.manager, Number(batch.id));
    const receiptDoc = await addDocument(db(), ops.reviewer, id, { kind: "signed_receipt", filename: "receipt.pdf", bytes: samplePdf("receipt") });
    await handOverCard(db(), ops.reviewer, id, { documentType: "my_number_card", documentNumber: "AB12", photoMatches: "on", signedReceiptDocumentId: receiptDoc.id });
    expect(await state(id)).toBe("handed_over");
    expect((await db()("cards").where({ label: card.cardLabel }).first()).status).toBe("handed_over");
    const receipt = await db()("receipts").where({ application_id: id }).first();
    await reviewReceipt(db(), ops.officer, Number(receipt.id), "accept");
    expect(await state(id)).toBe("completed");
    expect((await db()("cards").where({ label: card.cardLabel }).first()).status).toBe("active");

    const audit = await verifyAuditChain(db());
    expect(audit.ok).toBe(true);
    const actions = (await db()("audit_log").where({ object_id: app.application_no }).orderBy("seq").pluck("action")) as string[];
    expect(actions).toEqual(expect.arrayContaining([
      "application.received", "application.lra_approved", "application.forwarded", "application.ra_approved",
      "application.issuance_requested", "application.issued", "application.shipped", "application.handed_over", "application.completed",
    ]));
  });

  it("stops an approval on a licence mismatch, field by field", async () => {
    const id = await lraIntake({ licenceDate: "1999-01-01" });
    const check = (await db()("applications").where({ id }).first()).licence_check;
    expect(check.result).toBe("mismatch");
    expect(check.fields.find((f: { field: string }) => f.field === "registrationDate").match).toBe(false);
    const e = await decideApplication(db(), ops.reviewer, id, "lra_approve").catch((x) => x);
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.issues.map((i: { field: string }) => i.field)).toEqual(["licenceCheck"]);
    expect(await state(id)).toBe("received");
  });

  it("stops an approval on a missing document and names it", async () => {
    const id = await lraIntake({}, { skipKinds: ["licence_copy"] });
    const e = await decideApplication(db(), ops.reviewer, id, "lra_approve").catch((x) => x);
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.issues).toEqual([expect.objectContaining({ field: "documents.licence_copy", messageJa: expect.stringContaining("免許証の写し") })]);
  });

  it("refuses a duplicate application for the same licence and creates nothing twice on a double submit", async () => {
    const i = next++;
    const input = applicationInputFor(rows[i], i);
    const a = await submitApplication(db(), ops.reviewer, hcRoles(), input, { idempotencyKey: "form-token-1" });
    const b = await submitApplication(db(), ops.reviewer, hcRoles(), input, { idempotencyKey: "form-token-1" });
    expect(b.id).toBe(a.id);
    await expect(submitApplication(db(), ops.reviewer, hcRoles(), input, { idempotencyKey: "form-token-2" })).rejects.toBeInstanceOf(ConflictError);
    expect(Number((await db()("applications").where({ licence_number: rows[i].registration_number }).count({ n: "*" }))[0].n)).toBe(1);
  });

  it("validates every field with Japanese messages and writes nothing on bad input", async () => {
    const before = await t.count("applications");
    const e = await submitApplication(db(), ops.reviewer, hcRoles(), applicationInputFor(rows[0], 0, {
      nameKana: "Yamada", email: "not-an-email", qualification: "Wizard", birthDate: "1975-02-30", requestSign: "", requestAuth: "",
    })).catch((x) => x);
    expect(e).toBeInstanceOf(ValidationError);
    const fields = e.issues.map((i: { field: string }) => i.field);
    expect(fields).toEqual(expect.arrayContaining(["nameKana", "email", "qualification", "birthDate"]));
    expect(e.issues.every((i: { messageJa: string }) => /[ぁ-んァ-ン一-龯]/.test(i.messageJa))).toBe(true);
    expect(await t.count("applications")).toBe(before);
  });

  it("refuses uploads whose bytes are not PDF/JPEG/PNG, empty or oversize, leaving no rows", async () => {
    const i = next++;
    const app = await submitApplication(db(), ops.reviewer, hcRoles(), applicationInputFor(rows[i], i));
    const before = await t.count("application_documents");
    for (const bytes of [Buffer.from("MZ\x90\x00 this is an executable renamed .pdf"), Buffer.alloc(0), Buffer.concat([samplePdf("big"), Buffer.alloc(10 * 1024 * 1024)])]) {
      await expect(addDocument(db(), ops.reviewer, Number(app.id), { kind: "licence_copy", filename: "x.pdf", bytes })).rejects.toBeInstanceOf(ValidationError);
    }
    expect(await t.count("application_documents")).toBe(before);
    const d1 = await addDocument(db(), ops.reviewer, Number(app.id), { kind: "licence_copy", filename: "x.pdf", bytes: samplePdf("same") });
    const d2 = await addDocument(db(), ops.reviewer, Number(app.id), { kind: "licence_copy", filename: "x.pdf", bytes: samplePdf("same") });
    expect(d2.id).toBe(d1.id);
  });

  it("keeps regional associations apart", async () => {
    const id = await lraIntake();
    await expect(decideApplication(db(), ops.otherReviewer, id, "lra_approve")).rejects.toBeInstanceOf(ForbiddenError);
    await expect(addDocument(db(), ops.otherReviewer, id, { kind: "other", filename: "a.pdf", bytes: samplePdf("x") })).rejects.toBeInstanceOf(ForbiddenError);
    await expect(decideApplication(db(), ops.officer, id, "ra_approve")).rejects.toBeInstanceOf(ConflictError); // not forwarded yet
  });

  it("enforces the two-person rule on issuance requests", async () => {
    const id = await lraIntake();
    await decideApplication(db(), ops.reviewer, id, "lra_approve");
    const batchId = Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
    await forwardLraBatch(db(), ops.manager, batchId);
    await decideApplication(db(), ops.officer, id, "ra_approve");
    const creatorApprover = (await createTestOperator(db(), "ra_approver")).operator;
    const ir = await createIssuanceRequest(db(), creatorApprover, id);
    const e = await approveIssuanceRequest(db(), creatorApprover, Number(ir.id)).catch((x) => x);
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.messageJa).toContain("二者承認");
    await expect(approveIssuanceRequest(db(), ops.officer, Number(ir.id))).rejects.toBeInstanceOf(ForbiddenError); // not an approver
    await approveIssuanceRequest(db(), ops.approver, Number(ir.id));
    // The database refuses it too, whatever the service does.
    await expect(db()("issuance_requests").where({ id: ir.id }).update({ approved_by: creatorApprover.id })).rejects.toThrow(/two_person/);
  });

  it("lets exactly one of two officers approving at once succeed", async () => {
    const id = await lraIntake();
    await decideApplication(db(), ops.reviewer, id, "lra_approve");
    const batchId = Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
    await forwardLraBatch(db(), ops.manager, batchId);
    const results = await Promise.allSettled([
      decideApplication(db(), ops.officer, id, "ra_approve"),
      decideApplication(db(), ops.officer2, id, "ra_approve"),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(ConflictError);
    expect(rejected.reason.messageJa).toContain("他の担当者");
    expect(results).toHaveLength(2);
    const approvals = await db()("audit_log").where({ action: "application.ra_approved", object_id: (await db()("applications").where({ id }).first()).application_no }).count({ n: "*" });
    expect(Number(approvals[0].n)).toBe(1);
  });

  it("resumes a request a crashed IA worker left in issuing — only once its lease has expired, so two workers never share one", async () => {
    const id = await lraIntake();
    await decideApplication(db(), ops.reviewer, id, "lra_approve");
    await forwardLraBatch(db(), ops.manager, Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id));
    await decideApplication(db(), ops.officer, id, "ra_approve");
    const ir = await createIssuanceRequest(db(), ops.officer, id);
    await personaliseApprovedRequests(t.ctx, ops.ia); // empty the queue of earlier tests' requests
    await approveIssuanceRequest(db(), ops.approver, Number(ir.id));
    // A worker claims it under a 2-second lease and dies before personalising the card.
    const [claimed] = await claimIssuanceRequests(db(), ops.ia, 1, { leaseMs: 2000 });
    expect(Number(claimed.request.id)).toBe(Number(ir.id));
    // Another worker running now leaves it alone and does not count it: the lease is live.
    const busy = await personaliseApprovedRequests(t.ctx, ops.ia);
    expect(busy.issued.map((c) => c.requestId)).not.toContain(Number(ir.id));
    expect((await db()("issuance_requests").where({ id: ir.id }).first("state")).state).toBe("issuing");
    // Once the lease has expired (database clock) it is taken over and finished, with one card and its certificates.
    await waitFor(async () => (await db().raw("SELECT lease_expires_at <= now() AS over FROM issuance_requests WHERE id = ?", [ir.id])).rows[0].over === true, "the lease to expire");
    const resumed = await personaliseApprovedRequests(t.ctx, ops.ia);
    const card = resumed.issued.find((c) => c.requestId === Number(ir.id))!;
    expect(card.certificates).toHaveLength(2);
    expect(await state(id)).toBe("issued");
    expect(await db()("audit_log").where({ action: "issuance_request.resumed", object_id: String(ir.id) }).count({ n: "*" }).then((r) => Number(r[0].n))).toBe(1);
  });
});
