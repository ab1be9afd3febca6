/**
 * Subscribers with personalised cards for the revocation and expiry tests: applications taken
 * through the real pipeline services (RA desk or LRA), issued by the IA worker onto SoftHSM cards
 * (signature + authentication certificate on each card), optionally completed (handover and
 * receipt review) so they can be renewed.
 */
import fs from "node:fs";
import { personaliseApprovedRequests } from "../../src/ia/card-personalisation.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { createDeliveryBatch, handOverCard, receiveDeliveryBatch, reviewReceipt, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { approveIssuanceRequest, createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { forwardLraBatch } from "../../src/pipeline/lra-batches.ts";
import type { Operator } from "../../src/pipeline/operator.ts";
import type { TestIa } from "../helpers/ia.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, DEMO_LICENCE_REGISTER, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";

export interface Staff {
  officer: TestOperator;
  officer2: TestOperator;
  approver: TestOperator;
  approver2: TestOperator;
  reviewer: TestOperator;
  manager: TestOperator;
  otherReviewer: TestOperator;
  ia: TestOperator;
  auditor: TestOperator;
}

export interface IssuedSubscriber {
  applicationId: number;
  applicationNo: string;
  email: string;
  cardLabel: string;
  certificates: { caName: string; serialHex: string; profile: string }[];
}

/** Demo hierarchy, licence register and one operator per role (LRA "13-001", other LRA "27-001"). */
export async function setUpRegistration(t: TestIa): Promise<Staff> {
  await runDemoCeremony(t.ctx, { actor: "test", role: "ia" });
  await importLicenceRegister(t.ctx.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  const mk = (role: Parameters<typeof createTestOperator>[1], o: { lraCode?: string; displayName?: string } = {}) => createTestOperator(t.ctx.db, role, o);
  return {
    officer: await mk("ra_officer", { displayName: "登録 一郎" }),
    officer2: await mk("ra_officer", { displayName: "登録 二郎" }),
    approver: await mk("ra_approver", { displayName: "承認 三郎" }),
    approver2: await mk("ra_approver", { displayName: "承認 四郎" }),
    reviewer: await mk("lra_reviewer", { lraCode: "13-001" }),
    manager: await mk("lra_manager", { lraCode: "13-001" }),
    otherReviewer: await mk("lra_reviewer", { lraCode: "27-001" }),
    ia: await mk("ia_operator"),
    auditor: await mk("auditor"),
  };
}

let nextRow = 0;

/**
 * Takes `n` applicants through the pipeline up to an approved issuance request (via the LRA
 * "13-001" when `viaLra`, else at the RA desk). @returns the application ids.
 */
export async function approvedIssuanceRequests(t: TestIa, s: Staff, n: number, opts: { viaLra?: boolean } = {}): Promise<number[]> {
  const db = t.ctx.db;
  const rows = demoRegisterRows();
  const intake: Operator = opts.viaLra ? s.reviewer.operator : s.officer.operator;
  const ids: number[] = [];
  for (let k = 0; k < n; k++) {
    const i = nextRow++;
    const app = await submitApplication(db, intake, t.ctx.policies.hcRoles, applicationInputFor(rows[i], i));
    for (const u of requiredUploads(`rv${i}`)) await addDocument(db, intake, Number(app.id), u);
    await recordIdentityCheck(db, intake, Number(app.id), identityCheckInput());
    if (opts.viaLra) {
      await decideApplication(db, intake, Number(app.id), "lra_approve");
      const batchId = Number((await db("applications").where({ id: app.id }).first("lra_batch_id")).lra_batch_id);
      await forwardLraBatch(db, s.manager.operator, batchId);
    }
    await decideApplication(db, s.officer.operator, Number(app.id), "ra_approve");
    const ir = await createIssuanceRequest(db, s.officer.operator, Number(app.id));
    await approveIssuanceRequest(db, s.approver.operator, Number(ir.id));
    ids.push(Number(app.id));
  }
  return ids;
}

/**
 * Takes `n` applicants through the pipeline to issued cards: via the LRA "13-001" when `viaLra`,
 * else at the RA desk; `complete` also hands the cards over and accepts the receipts (RA desk only).
 */
export async function issueSubscribers(t: TestIa, s: Staff, n: number, opts: { viaLra?: boolean; complete?: boolean } = {}): Promise<IssuedSubscriber[]> {
  const db = t.ctx.db;
  const ids = await approvedIssuanceRequests(t, s, n, opts);
  const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
  if (run.failed.length) throw new Error(`personalisation failed: ${JSON.stringify(run.failed)}`);
  const out: IssuedSubscriber[] = [];
  for (const id of ids) {
    const app = await db("applications").where({ id }).first();
    const card = run.issued.find((c) => c.applicationNo === app.application_no)!;
    out.push({ applicationId: id, applicationNo: app.application_no, email: app.email, cardLabel: card.cardLabel, certificates: card.certificates });
  }
  if (opts.complete && !opts.viaLra) {
    const { batch } = await createDeliveryBatch(db, s.ia.operator, null);
    await shipDeliveryBatch(db, s.ia.operator, Number(batch.id));
    await receiveDeliveryBatch(db, s.officer.operator, Number(batch.id));
    for (const id of ids) {
      const doc = await addDocument(db, s.officer.operator, id, { kind: "signed_receipt", filename: "receipt.pdf", bytes: samplePdf(`receipt-${id}`) });
      await handOverCard(db, s.officer.operator, id, { documentType: "my_number_card", documentNumber: "AB12", photoMatches: "on", signedReceiptDocumentId: doc.id });
      const receipt = await db("receipts").where({ application_id: id }).first("id");
      await reviewReceipt(db, s.officer2.operator, Number(receipt.id), "accept");
    }
  }
  return out;
}
