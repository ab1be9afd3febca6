/**
 * Operator card sign-in on the consoles over real HTTP: our IA issues authentication certificates
 * onto SoftHSM cards, an administrator binds a card to an RA operator, the card signs the
 * console's challenge (the key never leaves the card) and the operator reaches a protected route.
 * Refusals — unbound card, revoked certificate, replayed challenge, tampered signature, an LRA
 * operator's card at the RA console — are answered in English and Japanese and audited.
 * a fresh PostgreSQL database.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { toPem } from "../../src/pki/pem.ts";
import { signLoginChallenge, type SignedChallenge } from "../../src/sso/card-agent.ts";
import { cardLoginFailure } from "../../src/status/card-login-failure.ts";
import { bindOperatorCertificate, consoleCardVerifier, unbindOperatorCertificate } from "../../src/card-login/card-login.ts";
import { setOperatorDisabled } from "../../src/operators/operators.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";

const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };

let ia: TestIa;
let server: StartedServer;
const cards: Record<string, { label: string; pin: string; cert: Buffer }> = {};
let raOp: TestOperator;
let lraOp: TestOperator;
let raDisabled: TestOperator;

async function issueCard(name: string, subscriberId: string): Promise<void> {
  const card = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId, name: { latin: `Operator ${name}`, kanji: "運用　太郎" } }, by);
  // The certificate as the operator would hand it to the administrator (from the card).
  const probe = await signLoginChallenge(ia.ctx.cards, card.label, card.pin, "probe");
  cards[name] = { ...card, cert: Buffer.from(probe.certificate, "base64") };
}

/** GET /login/card and the card's signature over the challenge. */
async function signedChallenge(c: ConsoleClient, card: string): Promise<SignedChallenge> {
  const r = await c.getJson("/login/card");
  expect(r.status).toBe(200);
  const challenge = r.json().challenge as string;
  expect(challenge).toMatch(/^HPKI-CONSOLE-LOGIN-1\nconsole=ra\nnonce=[A-Za-z0-9_-]{43}\nexpires=/);
  return signLoginChallenge(ia.ctx.cards, cards[card].label, cards[card].pin, challenge);
}

async function lastAudit(action: string): Promise<{ actor: string; details: Record<string, unknown> }> {
  const row = await ia.ctx.db("audit_log").where({ action }).orderBy("seq", "desc").first("actor", "details");
  return { actor: row.actor, details: typeof row.details === "string" ? JSON.parse(row.details) : row.details };
}

function expectBilingual(body: { error?: string; errorJa?: string }): void {
  expect(body.error).toBeTruthy();
  expect(body.errorJa).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
}

beforeAll(async () => {
  ia = await openTestIa("console-card");
  await runDemoCeremony(ia.ctx, by);
  await issueCard("ra", "OPS000001");
  await issueCard("lra", "OPS000002");
  await issueCard("unbound", "OPS000003");
  await issueCard("revoked", "OPS000004");
  await issueCard("disabled", "OPS000005");
  await issueCard("unbound-later", "OPS000006");
  raOp = await createTestOperator(ia.ctx.db, "ra_officer");
  lraOp = await createTestOperator(ia.ctx.db, "lra_reviewer");
  const raRevoked = await createTestOperator(ia.ctx.db, "ra_officer");
  await bindOperatorCertificate(ia.ctx.db, raOp.username, cards.ra.cert, admin);
  await bindOperatorCertificate(ia.ctx.db, lraOp.username, cards.lra.cert, admin);
  await bindOperatorCertificate(ia.ctx.db, raRevoked.username, cards.revoked.cert, admin);
  raDisabled = await createTestOperator(ia.ctx.db, "ra_approver");
  await bindOperatorCertificate(ia.ctx.db, raDisabled.username, cards.disabled.cert, admin);
  const cfg = loadConfig({ HPKI_HOME: ia.home, HPKI_SESSION_SECRET: "card-login-console-secret-0123456789" });
  server = await startServer({ cfg, db: ia.ctx.db, roles: ["lra", "ra"], port: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await ia?.cleanup();
});

describe("console card sign-in", () => {
  it("binding is audited, verified first and unique per card holder", async () => {
    const a = await lastAudit("operator.card_bound");
    expect(a.actor).toBe("test-admin");
    expect(a.details.subscriberId).toBe("OPS000005");
    await expect(bindOperatorCertificate(ia.ctx.db, lraOp.username, cards.ra.cert, admin)).rejects.toMatchObject({ status: 409 });
    // A CA certificate is no operator's authentication certificate: the verifier refuses it.
    const root = await ia.ctx.db("certificate_authorities").where({ kind: "root" }).first("certificate");
    await expect(bindOperatorCertificate(ia.ctx.db, raOp.username, Buffer.from(root.certificate), admin)).rejects.toMatchObject({ name: "PathValidationError" });
  });

  it("an RA operator signs in to the RA console with the bound card and uses a protected route", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    expect((await c.getJson("/")).status).toBe(401);
    const signed = await signedChallenge(c, "ra");
    const r = await c.postJson("/login/card", { certificate: toPem(Buffer.from(signed.certificate, "base64")), signature: signed.signature });
    expect(r.status, r.text).toBe(200);
    expect(r.json().operator.username).toBe(raOp.username);
    expect(typeof r.json().csrfToken).toBe("string");
    const home = await c.getJson("/");
    expect(home.status).toBe(200);
    expect(home.json().operator.username).toBe(raOp.username);
    const a = await lastAudit("operator.login");
    expect(a.actor).toBe(raOp.username);
    expect(a.details).toMatchObject({ method: "card", console: "ra", subscriberId: "OPS000001" });
    // The same signed response again (the challenge is used): refused as a replay.
    const c2 = new ConsoleClient(server.url, "/ra");
    await c2.getJson("/login/card");
    const replay = await c2.postJson("/login/card", signed);
    expect(replay.status).toBe(401);
    expect(replay.json().code).toBe("challenge-replayed");
    expectBilingual(replay.json());
    expect((await lastAudit("operator.login_failed")).details).toMatchObject({ method: "card", reason: "challenge-replayed" });
  });

  it("the browser form takes the pasted output of hpki card login and redirects home", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const page = await c.get("/login/card", { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("hpki card login");
    expect(page.text).toContain("HPKIカードでログイン");
    const challenge = /<textarea[^>]*id="field-challenge"[^>]*>([^<]+)<\/textarea>/.exec(page.text)![1].replace(/&#x3D;/g, "=").replace(/&#x2F;/g, "/");
    const signed = await signLoginChallenge(ia.ctx.cards, cards.ra.label, cards.ra.pin, challenge);
    const r = await c.post("/login/card", { accept: "html", form: { response: JSON.stringify(signed) } });
    expect(r.status, r.text.slice(0, 500)).toBe(303);
    expect(r.headers.get("location")).toBe("/ra/");
    expect((await c.getJson("/")).status).toBe(200);
  });

  it("a wrong PIN, reported by the agent from the card's own refusal, gets a clear page and an audit record without the PIN", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const page = await c.get("/login/card", { accept: "html" });
    const challenge = /<textarea[^>]*id="field-challenge"[^>]*>([^<]+)<\/textarea>/.exec(page.text)![1].replace(/&#x3D;/g, "=").replace(/&#x2F;/g, "/");
    const wrongPin = "98765432";
    const refusal = await signLoginChallenge(ia.ctx.cards, cards.ra.label, wrongPin, challenge).then(() => undefined, (e: unknown) => e);
    const report = cardLoginFailure(refusal, challenge);
    expect(report).toEqual({ challenge, error: "pin-incorrect" });
    const r = await c.post("/login/card", { accept: "html", form: { response: JSON.stringify(report) } });
    expect(r.status).toBe(401);
    expect(r.text).toContain("カードがPINを受け付けませんでした");
    const a = await lastAudit("operator.login_failed");
    expect(a.details).toMatchObject({ method: "card", reason: "pin-incorrect", console: "ra" });
    expect(JSON.stringify(await ia.ctx.db("audit_log").select("details"))).not.toContain(wrongPin);
    // The challenge was used up: the same report (or a signature over it) is a replay.
    const again = await c.post("/login/card", { accept: "json", form: { response: JSON.stringify(report) } });
    expect(again.status).toBe(401);
    expect((await lastAudit("operator.login_failed")).details).toMatchObject({ reason: "challenge-replayed" });
  });

  it("refuses an unbound card", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const signed = await signedChallenge(c, "unbound");
    const r = await c.postJson("/login/card", signed);
    expect(r.status).toBe(401);
    expectBilingual(r.json());
    expect(r.json().errorJa).toContain("登録されていません");
    const a = await lastAudit("operator.login_failed");
    expect(a.actor).toBe("card:OPS000003");
    expect(a.details).toMatchObject({ method: "card", reason: "unbound", console: "ra" });
    expect((await c.getJson("/")).status).toBe(401);
  });

  it("refuses a tampered signature", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const signed = await signedChallenge(c, "ra");
    const sig = Buffer.from(signed.signature, "base64");
    sig[sig.length - 1] ^= 1;
    const r = await c.postJson("/login/card", { ...signed, signature: sig.toString("base64") });
    expect(r.status).toBe(401);
    expect(r.json().code).toBe("bad-challenge-signature");
    expectBilingual(r.json());
    expect((await lastAudit("operator.login_failed")).details).toMatchObject({ reason: "bad-challenge-signature", subscriberId: "OPS000001" });
    // The challenge was used up by the failed attempt: a correct signature over it is refused now.
    const again = await c.postJson("/login/card", signed);
    expect(again.json().code).toBe("challenge-replayed");
  });

  it("refuses an LRA operator's card at the RA console (403)", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const signed = await signedChallenge(c, "lra");
    const r = await c.postJson("/login/card", signed);
    expect(r.status).toBe(403);
    expectBilingual(r.json());
    const a = await lastAudit("operator.login_refused");
    expect(a.actor).toBe(lraOp.username);
    expect(a.details).toMatchObject({ method: "card", reason: "role", console: "ra" });
    // The same card is fine at the LRA console.
    const l = new ConsoleClient(server.url, "/lra");
    const ch = (await l.getJson("/login/card")).json().challenge as string;
    const s2 = await signLoginChallenge(ia.ctx.cards, cards.lra.label, cards.lra.pin, ch);
    expect((await l.postJson("/login/card", s2)).status).toBe(200);
  });

  it("refuses a revoked certificate once the verifier has read the revocation", async () => {
    const row = await ia.ctx.db("certificates").where({ subscriber_id: "OPS000004", profile: "auth-person" }).first("serial_hex");
    const serial = row.serial_hex as string;
    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex: serial, reason: "keyCompromise" }, by);
    await (await consoleCardVerifier(ia.ctx.db)).refresh({ full: true });
    const c = new ConsoleClient(server.url, "/ra");
    const signed = await signedChallenge(c, "revoked");
    const r = await c.postJson("/login/card", signed);
    expect(r.status).toBe(401);
    expect(r.json().code).toBe("revoked");
    expectBilingual(r.json());
    const failed = (await lastAudit("operator.login_failed")).details;
    expect(failed).toMatchObject({ method: "card", reason: "revoked" });
    const bare = (h: unknown) => String(h).toUpperCase().replace(/^(00)+/, "");
    expect(bare(failed.serial)).toBe(bare(serial));
  });

  it("refuses the card of a disabled operator", async () => {
    await setOperatorDisabled(ia.ctx.db, raDisabled.username, true, admin);
    const c = new ConsoleClient(server.url, "/ra");
    const r = await c.postJson("/login/card", await signedChallenge(c, "disabled"));
    expect(r.status).toBe(401);
    expectBilingual(r.json());
    const a = await lastAudit("operator.login_failed");
    expect(a.actor).toBe(raDisabled.username);
    expect(a.details).toMatchObject({ method: "card", reason: "disabled" });
  });

  it("ends a card session when the card is unbound; the same operator's password session stays", async () => {
    const op = await createTestOperator(ia.ctx.db, "ra_officer");
    await bindOperatorCertificate(ia.ctx.db, op.username, cards["unbound-later"].cert, admin);
    const byCard = new ConsoleClient(server.url, "/ra");
    expect((await byCard.postJson("/login/card", await signedChallenge(byCard, "unbound-later"))).status).toBe(200);
    const byPassword = new ConsoleClient(server.url, "/ra");
    await byPassword.login(op);
    expect((await byCard.getJson("/")).status).toBe(200);
    await unbindOperatorCertificate(ia.ctx.db, op.username, { all: true }, admin);
    expect((await byCard.getJson("/")).status).toBe(401);
    expect((await byPassword.getJson("/")).status).toBe(200);
  });

  it("GET /login links to the card sign-in", async () => {
    const c = new ConsoleClient(server.url, "/ra");
    const page = await c.get("/login", { accept: "html" });
    expect(page.text).toContain('href="/ra/login/card"');
  });
});

