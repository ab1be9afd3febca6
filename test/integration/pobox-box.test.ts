/**
 * Issue 15 §5–§7 at the PO box, against a real `hpki serve --role sso,pobox` process (its own
 * $HPKI_HOME, our Postgres): persons sign in through the SSO center with SoftHSM cards (the CLI's
 * flow, pobox-client.ts); envelopes are sealed here and opened on the cards (CKM_ECDH1_DERIVE).
 * Shows: the box's database (pg_dump) and files hold no plaintext (marker searched for, as text and
 * hex); a forward adds a recipient without changing the encrypted content bytes and the chain is
 * recorded; the sender can forbid forwarding; a forward with other content is refused; organisational
 * encryption — the designated pharmacist decrypts through the box's re-encryption, the box's own
 * material opens nothing, a revoked designation stops new re-encryptions and erases the kfrag.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boxCall, loginWithCard, type PoboxSession } from "../../src/cli/pobox-client.ts";
import { receiveDocument, registerOwnPreKey } from "../../src/cli/pobox-ops.ts";
import { addFacilityMember } from "../../src/pobox/organisation.ts";
import { readAuthEnvelopedData } from "../../src/pki/envelope-asn1.ts";
import { addRecipient, openEnvelope, sealEnvelope, unwrapContentKey } from "../../src/pki/envelope.ts";
import { sealForOrganisations } from "../../src/pki/envelope-organisation.ts";
import { createKfrag, generatePreKeyPair, openOriginal, umbral } from "../../src/pki/pre.ts";
import { preRecipientOfInfo } from "../../src/pki/pre-recipient.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { tempDir } from "../helpers/openssl.ts";
import { openAgent, personWithCard, servePobox, type TestPerson } from "../helpers/pobox.ts";
import { childEnv } from "../helpers/sso-serve.ts";
import { buildTestChain } from "../unit/helpers/pki-fixtures.ts";

const MARKER = "紹介状 referral-marker-7f3a 山田様";
const RX_MARKER = "処方箋 prescription-marker-91c2";
let ia: TestIa;
let home: string;
let child: { url: string; stop(): Promise<number | null> } | undefined;
let box: string;
const p: Record<string, TestPerson> = {};
const s: Record<string, PoboxSession> = {};
const chain = buildTestChain(new Date(), "p256");
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

beforeAll(async () => {
  ia = await openTestIa("pobox");
  await runDemoCeremony(ia.ctx, { actor: "test", role: "ia" });
  p.sender = await personWithCard(ia, chain, "POB0000001", "Medical Doctor", { latin: "Taro Yamada", kanji: "山田　太郎" });
  p.specialist = await personWithCard(ia, chain, "POB0000002", "Medical Doctor", { latin: "Keiko Mori", kanji: "森　恵子" });
  p.second = await personWithCard(ia, chain, "POB0000003", "Medical Doctor", { latin: "Goro Ito", kanji: "伊藤　五郎" });
  p.pharmacist = await personWithCard(ia, chain, "POB0000004", "Pharmacist", { latin: "Hanako Sato", kanji: "佐藤　花子" });
  p.admin = await personWithCard(ia, chain, "POB0000005", "Pharmacist", { latin: "Ichiro Suzuki", kanji: "鈴木　一郎" });
  home = tempDir("pobox-child-");
  child = await servePobox(ia, childEnv(home, ia.databaseUrl), "sso,pobox");
  box = `${child.url}/pobox`;
  for (const [k, person] of Object.entries(p)) {
    s[k] = await loginWithCard(box, ia.ctx.cards, person.card);
    await openAgent(ia, person);
  }
}, 300_000);

afterAll(async () => {
  for (const person of Object.values(p)) person.session?.close();
  await child?.stop();
  await ia?.cleanup();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe("medical PO box (hpki serve --role sso,pobox)", () => {
  let referralId: string;

  it("signs persons in through the SSO center with the card and maps them by subscriber id", async () => {
    const me = await boxCall<{ subscriberId: string; hcRole: string; kind: string }>(s.sender, "GET", "/me");
    expect(me).toMatchObject({ subscriberId: "POB0000001", hcRole: "Medical Doctor", kind: "person" });
    const audit = await ia.ctx.db("audit_log").where({ action: "pobox.signed-in" }).count({ n: "*" }).first();
    expect(Number(audit?.n)).toBe(5);
    // Without a token: refused.
    const res = await fetch(`${box}/api/me`, { headers: { accept: "application/json" } });
    expect(res.status).toBe(401);
  });

  it("stores the envelope, delivers it, and the reader opens it on the card; receipts recorded", async () => {
    const envelope = await sealEnvelope(Buffer.from(MARKER), [p.specialist.encCert]);
    const sent = await boxCall<{ id: string }>(s.sender, "POST", "/messages", { recipients: [{ subscriberId: "POB0000002" }], documentClass: "referral", forwardAllowed: true, envelope: b64(envelope) });
    referralId = sent.id;
    const inbox = await boxCall<{ messages: { id: string; deliveries: { state: string }[] }[] }>(s.specialist, "GET", "/messages");
    expect(inbox.messages.map((m) => m.id)).toContain(referralId);
    expect(inbox.messages[0].deliveries[0].state).toBe("delivered");
    const r = await receiveDocument(s.specialist, referralId, p.specialist.agent);
    expect(Buffer.from(r.content).toString()).toBe(MARKER);
    const sentBox = await boxCall<{ messages: { id: string; deliveries: { state: string; readAt: string }[] }[] }>(s.sender, "GET", "/messages?box=sent");
    expect(sentBox.messages.find((m) => m.id === referralId)?.deliveries[0]).toMatchObject({ state: "read" });
    // Someone else cannot fetch it.
    await expect(boxCall(s.second, "GET", `/messages/${referralId}/envelope`)).rejects.toMatchObject({ status: 404 });
  });

  it("a forward adds a recipient without changing the encrypted content bytes; the chain is recorded", async () => {
    const original = new Uint8Array(await boxCall<Buffer>(s.specialist, "GET", `/messages/${referralId}/envelope`));
    const cek = await unwrapContentKey(original, p.specialist.agent);
    const forwarded = await addRecipient(original, cek, p.second.encCert);
    const f = await boxCall<{ id: string; rootId: string }>(s.specialist, "POST", `/messages/${referralId}/forward`, { recipients: [{ subscriberId: "POB0000003" }], envelope: b64(forwarded) });
    expect(f.rootId).toBe(referralId);
    const stored = new Uint8Array(await boxCall<Buffer>(s.second, "GET", `/messages/${f.id}/envelope`));
    const a = readAuthEnvelopedData(original);
    const b = readAuthEnvelopedData(stored);
    expect(Buffer.from(b.encryptedContentInfoDer).equals(Buffer.from(a.encryptedContentInfoDer))).toBe(true);
    expect(Buffer.from(b.macDer).equals(Buffer.from(a.macDer))).toBe(true);
    expect(b.recipientInfos).toHaveLength(2);
    expect(Buffer.from(await openEnvelope(stored, p.second.agent)).toString()).toBe(MARKER);
    const chainOut = await boxCall<{ chain: { id: string; parentId: string | null; forwarder: string; recipients: string[] }[] }>(s.second, "GET", `/messages/${f.id}/chain`);
    expect(chainOut.chain.map((c) => [c.parentId, c.forwarder, c.recipients])).toEqual([
      [null, "person:POB0000001", ["person:POB0000002"]],
      [referralId, "person:POB0000002", ["person:POB0000003"]],
    ]);
    // A "forward" whose content was re-encrypted is refused.
    const other = await sealEnvelope(Buffer.from(MARKER), [p.specialist.encCert, p.second.encCert]);
    await expect(boxCall(s.specialist, "POST", `/messages/${referralId}/forward`, { recipients: [{ subscriberId: "POB0000003" }], envelope: b64(other) }))
      .rejects.toMatchObject({ status: 422, code: "CONTENT_CHANGED" });
  });

  it("the original sender can forbid forwarding", async () => {
    const envelope = await sealEnvelope(Buffer.from(MARKER), [p.specialist.encCert]);
    const sent = await boxCall<{ id: string }>(s.sender, "POST", "/messages", { recipients: [{ subscriberId: "POB0000002" }], documentClass: "referral", forwardAllowed: false, envelope: b64(envelope) });
    const cek = await unwrapContentKey(envelope, p.specialist.agent);
    const forwarded = await addRecipient(envelope, cek, p.second.encCert);
    await expect(boxCall(s.specialist, "POST", `/messages/${sent.id}/forward`, { recipients: [{ subscriberId: "POB0000003" }], envelope: b64(forwarded) }))
      .rejects.toMatchObject({ status: 403, code: "FORWARD_FORBIDDEN" });
  });

  it("refuses what is not an envelope, and an envelope with fewer recipient infos than addressees", async () => {
    await expect(boxCall(s.sender, "POST", "/messages", { recipients: [{ subscriberId: "POB0000002" }], documentClass: "referral", envelope: b64(Buffer.from(MARKER)) }))
      .rejects.toMatchObject({ status: 422, code: "NOT_AN_ENVELOPE" });
    const one = await sealEnvelope(Buffer.from("x"), [p.specialist.encCert]);
    await expect(boxCall(s.sender, "POST", "/messages", { recipients: [{ subscriberId: "POB0000002" }, { subscriberId: "POB0000003" }], documentClass: "referral", envelope: b64(one) }))
      .rejects.toMatchObject({ status: 422, code: "RECIPIENTS_MISSING" });
  });

  describe("organisational encryption (組織暗号)", () => {
    const facility = "PHARM0001";
    let facilityKeys: { secretKey: Uint8Array; publicKey: Uint8Array };
    let holderSigner: { secretKey: Uint8Array; publicKey: Uint8Array };
    let designationId: number;
    let rxId: string;

    it("the facility publishes its key, the admin designates the pharmacist with a kfrag, the pharmacist decrypts", async () => {
      await addFacilityMember(ia.ctx.db, facility, "POB0000005", "admin", "test-operator");
      await addFacilityMember(ia.ctx.db, facility, "POB0000004", "staff", "test-operator");
      facilityKeys = await generatePreKeyPair();
      holderSigner = await generatePreKeyPair();
      await boxCall(s.admin, "POST", `/facilities/${facility}/key`, { prePublicKey: b64(facilityKeys.publicKey), verifyingKey: b64(holderSigner.publicKey) });
      // The pharmacist's PRE key: made on their computer, the secret sealed to their card's enc certificate.
      await registerOwnPreKey(s.pharmacist, p.pharmacist.encCert);
      const designeePk = await boxCall<{ publicKey: string }>(s.admin, "GET", "/people/POB0000004/pre-key");
      const kfrag = await createKfrag(facilityKeys.secretKey, Buffer.from(designeePk.publicKey, "base64"), holderSigner.secretKey);
      const d = await boxCall<{ id: number }>(s.admin, "POST", "/designations", { facility, documentClass: "prescription", designee: "POB0000004", kfrag: b64(kfrag) });
      designationId = d.id;
      // A pharmacist (not admin) cannot designate.
      await expect(boxCall(s.pharmacist, "POST", "/designations", { facility, documentClass: "prescription", designee: "POB0000004", kfrag: b64(kfrag) })).rejects.toMatchObject({ status: 403 });

      const envelope = await sealForOrganisations(Buffer.from(RX_MARKER), [], [facilityKeys.publicKey]);
      rxId = (await boxCall<{ id: string }>(s.sender, "POST", "/messages", { recipients: [{ kind: "facility", subscriberId: facility }], documentClass: "prescription", envelope: b64(envelope) })).id;
      const inbox = await boxCall<{ messages: { id: string }[] }>(s.pharmacist, "GET", "/messages");
      expect(inbox.messages.map((m) => m.id)).toContain(rxId);
      const r = await receiveDocument(s.pharmacist, rxId, p.pharmacist.agent);
      expect(r.as).toBe("designee");
      expect(Buffer.from(r.content).toString()).toBe(RX_MARKER);
      // Another doctor, not designated, gets no re-encryption.
      await expect(boxCall(s.second, "GET", `/messages/${rxId}/reencryption`)).rejects.toMatchObject({ status: 403, code: "NOT_DESIGNATED" });
    });

    it("the box alone cannot decrypt: what it holds (capsule, encrypted key, kfrag, its own re-encryption) opens nothing", async () => {
      const m = await ia.ctx.db("pobox_messages").where({ id: rxId }).first();
      const g = await ia.ctx.db("pobox_designations").where({ id: designationId }).first();
      const ori = readAuthEnvelopedData(m.envelope).recipientInfos.find((ri) => ri.kind === "other")!;
      const u = await umbral();
      const pre = preRecipientOfInfo(ori.der)!;
      expect(g.kfrag).not.toBeNull();
      // No secret key is stored at the box: the designee's is an envelope to their card; a random key fails.
      await expect(openOriginal(u.SecretKey.random().toBEBytes(), pre.capsule, pre.encryptedKey)).rejects.toThrow();
      const cfrag = u.reencrypt(u.Capsule.fromBytes(pre.capsule), u.KeyFrag.fromBytes(g.kfrag).skipVerification());
      expect(() => u.decryptReencrypted(u.SecretKey.random(), u.PublicKey.fromCompressedBytes(facilityKeys.publicKey), u.Capsule.fromBytes(pre.capsule), [cfrag], pre.encryptedKey)).toThrow();
    });

    it("revoking the designation erases the kfrag (audited) and stops new re-encryptions", async () => {
      await boxCall(s.admin, "POST", `/designations/${designationId}/revoke`);
      const g = await ia.ctx.db("pobox_designations").where({ id: designationId }).first();
      expect(g.kfrag).toBeNull();
      expect(g.revoked_by).toBe("person:POB0000005");
      const audit = await ia.ctx.db("audit_log").where({ action: "pobox.designation.revoked", object_id: String(designationId) }).first();
      expect(audit.details).toMatchObject({ kfragErased: true });
      await expect(boxCall(s.pharmacist, "GET", `/messages/${rxId}/reencryption`)).rejects.toMatchObject({ status: 403, code: "NOT_DESIGNATED" });
      const envelope = await sealForOrganisations(Buffer.from(RX_MARKER), [], [facilityKeys.publicKey]);
      const next = (await boxCall<{ id: string }>(s.sender, "POST", "/messages", { recipients: [{ kind: "facility", subscriberId: facility }], documentClass: "prescription", envelope: b64(envelope) })).id;
      // Not designated any more: the box does not even serve the envelope to them.
      await expect(receiveDocument(s.pharmacist, next, p.pharmacist.agent)).rejects.toMatchObject({ status: 404 });
    });
  });

  it("the box's database and files contain no plaintext (marker searched for as text and hex)", async () => {
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", ia.databaseUrl!], { maxBuffer: 512 * 1024 * 1024 }).toString("utf8");
    expect(dump).toContain("pobox_messages");
    for (const m of [MARKER, RX_MARKER]) {
      expect(dump.includes(m)).toBe(false);
      expect(dump.toLowerCase().includes(Buffer.from(m).toString("hex"))).toBe(false);
      expect(dump.includes(Buffer.from(m).toString("base64"))).toBe(false);
    }
    const files = (fs.readdirSync(home, { recursive: true }) as string[]).map((f) => path.join(home, f)).filter((f) => fs.statSync(f).isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const m of [MARKER, RX_MARKER]) expect(bytes.includes(Buffer.from(m)), f).toBe(false);
    }
    const sentAudit = await ia.ctx.db("audit_log").where({ action: "pobox.message.sent" }).count({ n: "*" }).first();
    expect(Number(sentAudit?.n)).toBeGreaterThanOrEqual(4);
  });
});
