/**
 * Shared steps of the card replacement tests (issue 13 §3–§5): the RA console and an IA worker on
 * one fresh state, and the path of a replacement record from review to the handed-over new card
 * over the console's HTTP interface (the IA's own steps — personalisation, delivery batch — called
 * as its worker does).
 */
import { expect } from "vitest";
import { personaliseApprovedRequests } from "../../src/ia/card-personalisation.ts";
import { executeApprovedRevocationRequests } from "../../src/ia/revocation-worker.ts";
import { createDeliveryBatch, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import type { RoleName } from "../../src/web/role.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import type { TestIa } from "../helpers/ia.ts";
import { identityCheckInput, samplePdf } from "../helpers/pipeline.ts";
import type { Staff } from "../integration/revocation-workflow-fixture.ts";

export interface RaDesk {
  server: StartedServer;
  officer: ConsoleClient;
  officer2: ConsoleClient;
  approver: ConsoleClient;
  approver2: ConsoleClient;
}

/** The RA (and LRA) consoles on `t`'s database (configuration `cfg` over the IA's), with the RA staff signed in. */
export async function openRaDesk(t: TestIa, s: Staff, roles: RoleName[] = ["ra", "lra"], cfg: Partial<TestIa["ctx"]["cfg"]> = {}): Promise<RaDesk> {
  const server = await startServer({ cfg: { ...t.ctx.cfg, ...cfg }, db: t.ctx.db, roles, port: 0 });
  const c = async (op: Staff["officer"]) => {
    const client = new ConsoleClient(server.url, "/ra");
    await client.login(op);
    return client;
  };
  return { server, officer: await c(s.officer), officer2: await c(s.officer2), approver: await c(s.approver), approver2: await c(s.approver2) };
}

/** Runs the IA's revocation worker once; returns how many requests it executed. */
export async function runRevocationWorker(t: TestIa, s: Staff): Promise<number> {
  const r = await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
  return r.executed.length;
}

/**
 * A replacement record at the RA desk (state received, documents uploaded) through identity
 * check, RA approval, the issuance request (officer) and its approval (another person), the IA's
 * personalisation, delivery and the handover with the signed receipt, to the receipt accepted.
 * `approved`: identity check and approval already done. @returns the new card's label and certificates.
 */
export async function driveToHandover(
  t: TestIa,
  s: Staff,
  d: RaDesk,
  applicationId: number,
  o: { approved?: boolean } = {},
): Promise<{ cardLabel: string; certificates: { caName: string; serialHex: string; profile: string }[] }> {
  if (!o.approved) {
    expect((await d.officer.postJson(`/applications/${applicationId}/identity-check`, identityCheckInput())).status).toBe(200);
    const approved = await d.officer.postJson(`/applications/${applicationId}/decision`, { decision: "ra_approve" });
    expect(approved.status, approved.text).toBe(200);
  }
  const ir = await d.officer.postJson(`/applications/${applicationId}/issuance-request`, {});
  expect(ir.status, ir.text).toBe(201);
  const irId = Number(ir.json().issuanceRequest.id);
  expect((await d.officer.postJson(`/issuance-requests/${irId}/approve`, {})).status).toBe(403); // officer never approves
  const ok = await d.approver.postJson(`/issuance-requests/${irId}/approve`, {});
  expect(ok.status, ok.text).toBe(200);
  const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
  expect(run.failed).toEqual([]);
  const app = await t.ctx.db("applications").where({ id: applicationId }).first();
  const card = run.issued.find((c) => c.applicationNo === app.application_no)!;
  expect(card).toBeDefined();
  const { batch } = await createDeliveryBatch(t.ctx.db, s.ia.operator, null);
  await shipDeliveryBatch(t.ctx.db, s.ia.operator, Number(batch.id));
  expect((await d.officer.postJson(`/deliveries/${Number(batch.id)}/receive`, {})).status).toBe(200);
  const doc = await d.officer.upload(`/applications/${applicationId}/documents`, { kind: "signed_receipt" }, { filename: "receipt.pdf", bytes: samplePdf(`receipt-${applicationId}`) });
  expect(doc.status).toBe(201);
  const handed = await d.officer.postJson(`/applications/${applicationId}/handover`, {
    documentType: "my_number_card", documentNumber: "AB12", photoMatches: "on", signedReceiptDocumentId: doc.json().document.id,
  });
  expect(handed.status, handed.text).toBe(200);
  const receipt = await t.ctx.db("receipts").where({ application_id: applicationId }).first("id");
  expect((await d.officer2.postJson(`/receipts/${Number(receipt.id)}/review`, { decision: "accept" })).status).toBe(200);
  return { cardLabel: card.cardLabel, certificates: card.certificates };
}
