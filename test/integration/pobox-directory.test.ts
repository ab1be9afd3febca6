/**
 * Issue 15 §4 and the send-time check: the repository's directory (GET /directory/enc) lists only
 * valid `enc` certificates of our CA (demo-enc-ca), searchable by subscriber, facility and hcRole;
 * the sending client (hpki pobox send's sendDocument) re-validates chain and CRL and refuses a
 * revoked recipient — also when a stale directory still offers the revoked certificate. The reader
 * opens the envelope on the SoftHSM card the enc key was generated on. Real HTTP (repo + pobox
 * roles in one server), real Postgres, SoftHSM; the box's SSO sign-in is covered by
 * pobox-box.test.ts, so accounts here get their token from completeSignIn directly.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { receiveDocument, sendDocument, type DirectoryTrust } from "../../src/cli/pobox-ops.ts";
import { encryptionPolicy, RecipientRefusedError, validatedRecipient } from "../../src/cli/pobox-recipients.ts";
import type { PoboxSession } from "../../src/cli/pobox-client.ts";
import { cardKeyAgent } from "../../src/hsm/card-decrypt.ts";
import type { CardSession } from "../../src/hsm/cards.ts";
import { issueOntoCard } from "../../src/ia/cards.ts";
import { generateCrl, loadCrlPolicy } from "../../src/ia/crl-generation.ts";
import { ensureOcspResponders } from "../../src/ia/ocsp-responders.ts";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { loadOcspPolicy } from "../../src/ocsp/responders.ts";
import { fromPemOrDer } from "../../src/pki/pem.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { completeSignIn } from "../../src/pobox/sso-rp.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import fs from "node:fs";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";

const by = { actor: "test", role: "ia" };
const REPO = path.resolve(import.meta.dirname, "../..");
const MARKER = "診断 diagnosis-marker-d1r";
let ia: TestIa;
let server: StartedServer;
let trust: DirectoryTrust;
let sender: PoboxSession;
let reader: PoboxSession;
const cards: Record<string, { label: string; pin: string; serialHex: string; keyId: Buffer; der: Buffer }> = {};
let readerCard: CardSession;

async function encCard(subscriberId: string, hcRole: string, org: string): Promise<void> {
  const subject = { hcRole, subscriberId, name: { latin: "Test Person", kanji: "試験　太郎" }, organization: { latin: org } };
  const card = await issueAuthCard(ia.ctx, subject, by);
  const parsed = parseSubscriberSubject(subject, ia.ctx.policies.profiles.get("enc")!, ia.ctx.policies.hcRoles);
  const c = await issueOntoCard(ia.ctx.db, ia.ctx.cards, ia.ctx.issuance, { cardLabel: card.label, pin: card.pin, profile: "enc", subject: parsed }, by);
  const row = await ia.ctx.db("certificates").where({ id: c.id }).first("card_key_id");
  cards[subscriberId] = { ...card, serialHex: c.serialHex, keyId: Buffer.from(row.card_key_id), der: c.der };
}

async function crls(): Promise<void> {
  for (const ca of ["demo-enc-ca", "demo-root"]) await generateCrl({ db: ia.ctx.db, keys: ia.ctx.keys, policy: loadCrlPolicy() }, ca, by);
}

beforeAll(async () => {
  ia = await openTestIa("pobox-dir");
  await runDemoCeremony(ia.ctx, by);
  await encCard("DIR0000001", "Medical Doctor", "Tokyo Chuo Hospital");
  await encCard("DIR0000002", "Pharmacist", "Sakura Pharmacy");
  await encCard("DIR0000003", "Medical Doctor", "Tokyo Chuo Hospital");
  await crls();
  await ensureOcspResponders({ db: ia.ctx.db, caKeys: ia.ctx.keys, ocspKeys: ia.ctx.ocspKeys().keys, policy: loadOcspPolicy() }, by);
  server = await startServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, roles: ["repo", "pobox"], port: 0 });
  trust = { repoUrl: server.url, anchors: [new Uint8Array(fromPemOrDer(fs.readFileSync(ia.pem("demo-root"))))], policy: encryptionPolicy(ia.ctx.policies.profiles.get("enc")) };
  const token = async (subscriberId: string) => (await completeSignIn(ia.ctx.db, { subscriberId }, true)).token!;
  sender = { box: `${server.url}/pobox`, token: await token("DIR0000009") };
  reader = { box: `${server.url}/pobox`, token: await token("DIR0000001") };
  readerCard = await ia.ctx.cards.openCard(cards.DIR0000001.label, cards.DIR0000001.pin);
}, 300_000);

afterAll(async () => {
  readerCard?.close();
  await server?.close();
  await ia?.cleanup();
});

const search = async (q: string) => ((await (await fetch(`${server.url}/directory/enc?${q}`)).json()) as { certificates: { subscriberId: string; serialHex: string; hcRole: string; profile: string }[] }).certificates;

describe("encryption-certificate directory and send-time validation", () => {
  it("the directory finds enc certificates by subscriber, facility and hcRole (JSON)", async () => {
    expect((await search("subscriber=DIR0000001")).map((c) => c.serialHex)).toEqual([cards.DIR0000001.serialHex]);
    expect((await search("facility=Tokyo%20Chuo%20Hospital")).map((c) => c.subscriberId).sort()).toEqual(["DIR0000001", "DIR0000003"]);
    expect((await search("hcRole=Pharmacist")).map((c) => c.subscriberId)).toEqual(["DIR0000002"]);
    expect((await search("facility=Tokyo%20Chuo%20Hospital&hcRole=Pharmacist"))).toEqual([]);
    // Authentication certificates are not encryption certificates.
    expect((await search("subscriber=DIR0000001")).every((c) => c.profile === "enc")).toBe(true);
    expect((await fetch(`${server.url}/directory/enc?limit=0`)).status).toBe(400);
  });

  it("sends to a validated reader, who opens it on the card", async () => {
    const sent = await sendDocument(sender, trust, { content: Buffer.from(MARKER), to: [{ kind: "person", subscriberId: "DIR0000001" }], documentClass: "diagnosis", forwardAllowed: true });
    const r = await receiveDocument(reader, sent.id, cardKeyAgent(readerCard, cards.DIR0000001.keyId, cards.DIR0000001.der));
    expect(Buffer.from(r.content).toString()).toBe(MARKER);
  });

  it("hpki pobox receive --card opens on the card in a CLI process (PIN from a file) and sends the read receipt", async () => {
    const sent = await sendDocument(sender, trust, { content: Buffer.from(MARKER), to: [{ kind: "person", subscriberId: "DIR0000001" }], documentClass: "diagnosis", forwardAllowed: true });
    const sessionFile = path.join(ia.work, "reader-session.json");
    fs.writeFileSync(sessionFile, JSON.stringify(reader), { mode: 0o600 });
    const pinFile = path.join(ia.work, "pin");
    fs.writeFileSync(pinFile, cards.DIR0000001.pin, { mode: 0o600 });
    const out = path.join(ia.work, "opened.txt");
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: ia.home };
    for (const v of ["PKCS11_MODULE", "SOFTHSM2_CONF", "DATABASE_URL"]) delete env[v];
    // Asynchronously: the box answering the CLI runs in this process.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [path.join(REPO, "bin/hpki.js"), "pobox", "receive", sent.id, "--card", cards.DIR0000001.label, "--pin-file", pinFile, "--out", out, "--session", sessionFile, "--json"], { env });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d) => (stdout += d));
      c.stderr.on("data", (d) => (stderr += d));
      c.on("close", (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).toMatchObject({ id: sent.id, as: "reader" });
    expect(fs.readFileSync(out, "utf8")).toBe(MARKER);
    const d = await ia.ctx.db("pobox_deliveries").where({ message_id: sent.id }).first();
    expect(d.state).toBe("read");
  });

  it("refuses a revoked recipient at send time — from the directory, and from a stale directory still offering the certificate", async () => {
    const stale = await (await fetch(`${server.url}/directory/enc?subscriber=DIR0000003`)).text();
    await revokeCertificate(ia.ctx.db, { caName: "demo-enc-ca", serialHex: cards.DIR0000003.serialHex, reason: "keyCompromise" }, by);
    await crls();
    expect(await search("subscriber=DIR0000003")).toEqual([]);
    const before = Number((await ia.ctx.db("pobox_messages").count({ n: "*" }).first())?.n);
    await expect(sendDocument(sender, trust, { content: Buffer.from(MARKER), to: [{ kind: "person", subscriberId: "DIR0000003" }], documentClass: "diagnosis", forwardAllowed: true }))
      .rejects.toBeInstanceOf(RecipientRefusedError);
    // A directory that still lists it (stale cache, or not ours): the client's own CRL check refuses it.
    const proxy = http.createServer((req, res) => {
      if (req.url?.startsWith("/directory/enc")) return void res.writeHead(200, { "content-type": "application/json" }).end(stale);
      void fetch(`${server.url}${req.url}`).then(async (r) => res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "" }).end(Buffer.from(await r.arrayBuffer())));
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const err = await validatedRecipient(url, "DIR0000003", trust.anchors, trust.policy).catch((e) => e);
      expect(err).toBeInstanceOf(RecipientRefusedError);
      expect(err.message).toMatch(/revoked/i);
      expect(err.messageJa).toContain("暗号化用証明書を使えません");
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
    expect(Number((await ia.ctx.db("pobox_messages").count({ n: "*" }).first())?.n)).toBe(before);
  });
});
