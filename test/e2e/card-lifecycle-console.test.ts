/**
 * The card after handover over the consoles' HTTP interface (issue 13 §1, §2, §6, §7, §8), on
 * SoftHSM cards and the run's PostgreSQL: the card page with its history in the LRA, RA and IA
 * consoles; the CA and root certificates on the card (pkcs11-tool); SO PIN slip files sealed and
 * deleted, the SO PIN then nowhere in the clear; a PIN unblock requested at the LRA desk (identity
 * re-checked), approved by an RA approver (not by an officer), executed at the IA with SO login +
 * C_InitPIN; the new PIN known only from the printed PIN mailer (PDF), with which the card signs;
 * the mailer printed once and erased, its sending tracked; the card returned (cessationOfOperation
 * revocation through the revocation requests and the IA worker) and destroyed; the audit chain intact.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createPublicKey, createVerify, X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { migrateSoPinSlips } from "../../src/ia/card-pins.ts";
import { personaliseApprovedRequests, readPinMailer } from "../../src/ia/card-personalisation.ts";
import { pinMailerPath } from "../../src/ia/cards.ts";
import { executeApprovedRevocationRequests } from "../../src/ia/revocation-worker.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { createDeliveryBatch, handOverCard, receiveDeliveryBatch, reviewReceipt, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { approveIssuanceRequest, createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { forwardLraBatch, receiveLraBatch } from "../../src/pipeline/lra-batches.ts";
import { approveRevocationRequest } from "../../src/pipeline/revocation-requests.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { waitFor } from "../helpers/wait.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, DEMO_LICENCE_REGISTER, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";

const SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
let t: TestIa;
let server: StartedServer;
const ops = {} as Record<"reviewer" | "manager" | "officer" | "approver" | "iaOp", TestOperator>;
const c = {} as Record<"lra" | "ra" | "raApprover" | "ia", ConsoleClient>;
const rows = demoRegisterRows();
const db = () => t.ctx.db;
let cardLabel = "";
let initialPin = "";
let legacySoPin = "";

/** One application through intake, review, issuance, delivery and handover to an active card. */
async function activeCard(i: number): Promise<string> {
  const app = await submitApplication(db(), ops.reviewer.operator, t.ctx.policies.hcRoles, applicationInputFor(rows[i], i));
  const id = Number(app.id);
  for (const u of requiredUploads(`cl${i}`)) await addDocument(db(), ops.reviewer.operator, id, u);
  await recordIdentityCheck(db(), ops.reviewer.operator, id, identityCheckInput());
  await decideApplication(db(), ops.reviewer.operator, id, "lra_approve");
  const batchId = Number((await db()("applications").where({ id }).first("lra_batch_id")).lra_batch_id);
  await forwardLraBatch(db(), ops.manager.operator, batchId);
  await receiveLraBatch(db(), ops.officer.operator, batchId);
  await decideApplication(db(), ops.officer.operator, id, "ra_approve");
  const ir = await createIssuanceRequest(db(), ops.officer.operator, id);
  await approveIssuanceRequest(db(), ops.approver.operator, Number(ir.id));
  const r = await personaliseApprovedRequests(t.ctx, ops.iaOp.operator);
  expect(r.failed).toEqual([]);
  const label = r.issued[0].cardLabel;
  const lraId = Number((await db()("applications").where({ id }).first("lra_id")).lra_id);
  const { batch } = await createDeliveryBatch(db(), ops.iaOp.operator, lraId);
  await shipDeliveryBatch(db(), ops.iaOp.operator, Number(batch.id));
  await receiveDeliveryBatch(db(), ops.manager.operator, Number(batch.id));
  const doc = await addDocument(db(), ops.reviewer.operator, id, { kind: "signed_receipt", filename: "receipt.pdf", bytes: samplePdf(`receipt ${i}`) });
  await handOverCard(db(), ops.reviewer.operator, id, { documentType: "my_number_card", documentNumber: "AB12", photoMatches: "on", signedReceiptDocumentId: doc.id });
  const receipt = await db()("receipts").where({ application_id: id }).first("id");
  await reviewReceipt(db(), ops.officer.operator, Number(receipt.id), "accept");
  return label;
}

function pdfText(bytes: Buffer, name: string): string {
  const file = path.join(t.work, name);
  fs.writeFileSync(file, bytes);
  const r = spawnSync("pdftotext", ["-layout", "-enc", "UTF-8", file, "-"], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** Every text of the database (all tables' rows as JSON text). */
async function databaseText(): Promise<string> {
  const tables = (await db().raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).rows.map((r: { tablename: string }) => r.tablename);
  let out = "";
  for (const name of tables) out += (await db().raw(`SELECT coalesce(string_agg(row_to_json(x)::text, E'\\n'), '') AS t FROM "${name}" x`)).rows[0].t;
  return out;
}

/** Paths of files under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    if (fs.readFileSync(p).includes(needle)) hits.push(p);
  }
  return hits;
}

beforeAll(async () => {
  t = await openTestIa("card-life");
  await runDemoCeremony(t.ctx, { actor: "test", role: "ia" });
  await importLicenceRegister(db(), fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  ops.reviewer = await createTestOperator(db(), "lra_reviewer", { lraCode: "13-001" });
  ops.manager = await createTestOperator(db(), "lra_manager", { lraCode: "13-001" });
  ops.officer = await createTestOperator(db(), "ra_officer");
  ops.approver = await createTestOperator(db(), "ra_approver");
  ops.iaOp = await createTestOperator(db(), "ia_operator");
  cardLabel = await activeCard(0);
  initialPin = readPinMailer(pinMailerPath(t.ctx.cfg.mailDir, cardLabel));
  server = await startServer({ cfg: t.ctx.cfg, db: db(), roles: ["lra", "ra", "ia"], port: 0 });
  c.lra = new ConsoleClient(server.url, "/lra");
  await c.lra.login(ops.reviewer);
  c.ra = new ConsoleClient(server.url, "/ra");
  await c.ra.login(ops.officer);
  c.raApprover = new ConsoleClient(server.url, "/ra");
  await c.raApprover.login(ops.approver);
  c.ia = new ConsoleClient(server.url, "/ia");
  await c.ia.login(ops.iaOp);
}, 300_000);

afterAll(async () => {
  await server?.close();
  await t?.cleanup();
});

describe("the card after handover over HTTP (issue 13)", () => {
  it("shows the card with its lifecycle history in the LRA, RA and IA consoles", async () => {
    for (const client of [c.lra, c.ra, c.ia]) {
      const page = (await client.getJson(`/cards/${cardLabel}`)).json();
      expect(page.card).toMatchObject({ label: cardLabel, state: "active" });
      expect(page.history.map((h: { transition: string }) => h.transition)).toEqual(["provision", "personalise", "ship", "hand_over", "activate"]);
      expect(page.certificates.map((x: { state: string }) => x.state)).toEqual(["issued", "issued"]);
      const html = await client.get(`/cards/${cardLabel}`, { accept: "html" });
      expect(html.status, html.text.slice(0, 300)).toBe(200);
      expect(html.text).toContain("利用中");
      expect((await client.get("/cards", { accept: "html" })).status).toBe(200);
    }
    const other = await createTestOperator(db(), "lra_reviewer", { lraCode: "27-001" });
    const otherLra = new ConsoleClient(server.url, "/lra");
    await otherLra.login(other);
    expect((await otherLra.getJson(`/cards/${cardLabel}`)).status).toBe(404);
  });

  it("holds the issuing CA and root certificates under the JAHIS labels (pkcs11-tool)", () => {
    const out = execFileSync("pkcs11-tool", ["--module", SOFTHSM2_MODULE, "--token-label", cardLabel, "--list-objects", "--type", "cert"], {
      env: { ...process.env, SOFTHSM2_CONF: t.ctx.cfg.softhsmConf }, encoding: "utf8",
    });
    expect(out).toContain("label:      HPKI CA CERTIFICATE");
    expect(out).toContain("label:      HPKI ROOT CA CERTIFICATE");
    // Two issuing CAs (signature, authentication), one root, and the two subscriber certificates.
    expect(out.match(/Certificate Object/g)).toHaveLength(5);
    expect(out.match(/HPKI ROOT CA CERTIFICATE/g)).toHaveLength(1);
  });

  it("seals an SO PIN slip of an earlier version and deletes it: the SO PIN is nowhere in the clear", async () => {
    // A card made as earlier versions did: its SO PIN in a 0600 slip file under $HPKI_HOME/mail.
    const [blank] = await t.ctx.cards.provisionBlankCards(1);
    legacySoPin = blank.soPin;
    await db()("cards").insert({ label: blank.label, card_serial: blank.cardSerial, status: "blank" });
    const slip = path.join(t.ctx.cfg.mailDir, `so-pin-${blank.label}.txt`);
    fs.writeFileSync(slip, `HPKI card SO PIN\ncard: ${blank.label}\nSO PIN: ${blank.soPin}\n`, { mode: 0o600 });
    const r = await migrateSoPinSlips(t.ctx, { actor: "test", role: "ia" });
    expect(r).toEqual({ sealed: [blank.label], unknown: [] });
    expect(fs.existsSync(slip)).toBe(false);
    expect(fs.readdirSync(t.ctx.cfg.mailDir).filter((f) => f.startsWith("so-pin-"))).toEqual([]);
    expect(filesContaining(t.home, blank.soPin)).toEqual([]);
    expect(await databaseText()).not.toContain(blank.soPin);
    expect(Number((await db()("card_so_pins").count({ n: "*" }).first())?.n)).toBe(2);
    // Idempotent.
    expect(await migrateSoPinSlips(t.ctx, { actor: "test", role: "ia" })).toEqual({ sealed: [], unknown: [] });
  });

  it("unblocks the PIN: LRA request (identity re-checked), RA approver (two-person), IA with the card; the card signs with the new PIN", async () => {
    const noId = await c.lra.postJson(`/cards/${cardLabel}/pin-unblock-requests`, { reason: "PIN誤入力によるロック" });
    expect(noId.status).toBe(400);
    const filed = await c.lra.postJson(`/cards/${cardLabel}/pin-unblock-requests`, {
      reason: "PIN誤入力によるロック", identityCheck: { documentType: "driver_licence", documentNumber: "123456789012", photoMatches: true },
    });
    expect(filed.status, filed.text).toBe(201);
    const request = filed.json().request;
    expect(request).toMatchObject({ state: "requested", channel: "lra_desk" });
    expect((await c.ia.getJson(`/cards/${cardLabel}`)).json().card.state).toBe("pin_locked");
    expect((await c.ia.get(`/cards/${cardLabel}`, { accept: "html" })).text).toContain("PINロック中");
    // Only an RA approver approves; then the IA executes.
    expect((await c.ra.postJson(`/pin-unblock-requests/${request.id}/decision`, { decision: "approve" })).status).toBe(403);
    expect((await c.ia.postJson(`/pin-unblock-requests/${request.id}/execute`, {})).status).toBe(409);
    const approved = await c.raApprover.postJson(`/pin-unblock-requests/${request.id}/decision`, { decision: "approve" });
    expect(approved.status, approved.text).toBe(200);
    expect((await c.ia.get("/pin-unblock-requests", { accept: "html" })).text).toContain(request.requestNo);
    const run = await c.ia.postJson(`/pin-unblock-requests/${request.id}/execute`, {});
    expect(run.status, run.text).toBe(200);
    const { unblock } = run.json();
    expect(Object.keys(unblock).sort()).toEqual(["cardLabel", "pinMailerNo", "requestNo"]);
    expect((await c.ia.getJson(`/cards/${cardLabel}`)).json().card.state).toBe("active");

    // The old PIN no longer opens the card.
    await expect(t.ctx.cards.openCard(cardLabel, initialPin)).rejects.toMatchObject({ code: "CKR_PIN_INCORRECT" });
    // The new PIN exists only in the mailer: sealed until printed, then erased.
    const pending = await db()("pin_mailers").where({ mailer_no: unblock.pinMailerNo }).first();
    expect(pending).toMatchObject({ kind: "unblock", state: "pending" });
    expect(pending.pin_sealed).not.toBeNull();
    expect((await c.ia.get("/pin-mailers", { accept: "html" })).text).toContain(unblock.pinMailerNo);
    const printed = await c.ia.bytes("POST", `/pin-mailers/${unblock.pinMailerNo}/print`);
    expect(printed.status).toBe(200);
    expect(printed.type).toContain("application/pdf");
    const text = pdfText(printed.bytes, "unblock-mailer.pdf");
    expect(text).toContain("暗証番号（PIN）通知書");
    expect(text).toContain(unblock.pinMailerNo);
    const newPin = /PIN:\s+(\d{8})/.exec(text)![1];
    expect(newPin).not.toBe(initialPin);
    const after = await db()("pin_mailers").where({ mailer_no: unblock.pinMailerNo }).first();
    expect(after).toMatchObject({ state: "printed", pin_sealed: null, printed_by: ops.iaOp.username });
    expect((await c.ia.bytes("POST", `/pin-mailers/${unblock.pinMailerNo}/print`)).status).toBe(409);
    const sent = await c.ia.postJson(`/pin-mailers/${unblock.pinMailerNo}/sent`, {});
    expect(sent.status).toBe(200);
    expect(sent.json().mailer).toMatchObject({ mailerNo: unblock.pinMailerNo, sameDayAsCard: true }); // the card shipped today in this test

    // The unblocked card signs with the new PIN; the signature verifies with its certificate.
    const card = await t.ctx.cards.openCard(cardLabel, newPin);
    try {
      const certs = await card.listCertificates();
      const mine = certs.find((x) => x.label === "sign-certificate")!;
      const data = Buffer.from("PINロック解除後の署名");
      const sig = await card.sign(mine.id, data);
      const pub = createPublicKey(new X509Certificate(mine.der).publicKey.export({ type: "spki", format: "pem" }));
      expect(createVerify("SHA256").update(data).verify(pub, sig)).toBe(true);
    } finally {
      card.close();
    }
    await new Promise((r) => setTimeout(r, 50));

    // `hpki card change-pin`'s C_SetPIN: the holder sets a PIN of their own.
    await t.ctx.cards.changeUserPin(cardLabel, newPin, "24681357");
    (await t.ctx.cards.openCard(cardLabel, "24681357")).close();
    await new Promise((r) => setTimeout(r, 50));

    // Neither the new PIN nor any SO PIN is in the database or the audit log.
    const dbText = await databaseText();
    expect(dbText).not.toContain(newPin);
    expect(dbText).not.toContain(legacySoPin);
    expect(filesContaining(t.home, newPin)).toEqual([]);
  });

  it("prints the initial PIN mailer once and deletes its file", async () => {
    const m = await db()("pin_mailers as m").join("cards as c", "c.id", "m.card_id").where({ "c.label": cardLabel, "m.kind": "initial" }).first("m.mailer_no");
    const r = await c.ia.bytes("POST", `/pin-mailers/${m.mailer_no}/print`);
    expect(r.status).toBe(200);
    expect(pdfText(r.bytes, "initial-mailer.pdf")).toContain(initialPin);
    expect(fs.existsSync(pinMailerPath(t.ctx.cfg.mailDir, cardLabel))).toBe(false);
  });

  it("records the return (certificates revoked for cessationOfOperation) and the destruction", async () => {
    const ret = await c.lra.postJson(`/cards/${cardLabel}/return`, { reason: "退職による返却" });
    expect(ret.status, ret.text).toBe(200);
    expect(ret.json().card.state).toBe("returned");
    const rr = ret.json().revocationRequest;
    expect(rr).toMatchObject({ state: "requested" });
    await approveRevocationRequest(db(), ops.approver.operator, rr.id);
    // The server's IA also executes approved requests as they are announced (LISTEN): whichever
    // runs first, wait until the revocations are committed.
    const done = await executeApprovedRevocationRequests(t.ctx);
    expect(done.failed).toEqual([]);
    const revoked = () => db()("revocations as r").join("certificates as c", "c.id", "r.certificate_id").where("c.card_label", cardLabel).select("r.reason", "c.lifecycle_state");
    await waitFor(async () => {
      const rows = await revoked();
      return rows.length >= 2 && rows.every((r) => r.lifecycle_state === "revoked");
    }, "the returned card's certificates revoked");
    const revs = await revoked();
    expect(revs).toEqual([{ reason: "cessationOfOperation", lifecycle_state: "revoked" }, { reason: "cessationOfOperation", lifecycle_state: "revoked" }]);
    expect((await c.ia.postJson(`/cards/${cardLabel}/events`, { transition: "destroy" })).status).toBe(400);
    const destroyed = await c.ia.postJson(`/cards/${cardLabel}/events`, { transition: "destroy", reason: "シュレッダーで裁断" });
    expect(destroyed.status, destroyed.text).toBe(200);
    const page = (await c.ra.getJson(`/cards/${cardLabel}`)).json();
    expect(page.card.state).toBe("destroyed");
    expect(page.history.slice(-2).map((h: { transition: string; actor: string }) => [h.transition, h.actor])).toEqual([
      ["return", ops.reviewer.username], ["destroy", ops.iaOp.username],
    ]);
    expect(page.history.map((h: { transition: string }) => h.transition)).toEqual(expect.arrayContaining(["pin_lock", "pin_unblock", "return", "destroy"]));
    expect(page.certificates.map((x: { state: string }) => x.state)).toEqual(["revoked", "revoked"]);
    expect((await verifyAuditChain(db())).ok).toBe(true);
  });
});
