/**
 * The SSO center end to end over real HTTP: our CA issues authentication certificates onto
 * SoftHSM cards, oidc-provider serves /sso, a real relying party (openid-client) runs
 * authorization code + PKCE, the card signs the login challenge (the key never leaves the card),
 * and refusals (hcRole, tampering, replay, foreign CA, revocation) are answered and audited.
 * a fresh PostgreSQL database.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import express from "express";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { toPem } from "../../src/pki/pem.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { cardLoginFailure } from "../../src/status/card-login-failure.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { createSsoServer, type SsoOptions, type SsoServer } from "../../src/sso/server.ts";
import { TestBrowser } from "../helpers/browser.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { cardLogin as cardLoginWith, finishLogin, rpConfig as rpConfigOf, startLogin as startLoginAt, type StartedLogin } from "../helpers/sso-login.ts";

const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };
const doctor = {
  hcRole: "Medical Doctor", subscriberId: "SSO000001",
  name: { latin: "Taro Yamada", kanji: "山田　太郎" },
  organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
};
const pharmacist = { hcRole: "Pharmacist", subscriberId: "SSO000002", name: { latin: "Hanako Sato", kanji: "佐藤　花子" } };
const tlsDoctor = { hcRole: "Medical Doctor", subscriberId: "SSO000003", name: { latin: "Ichiro Suzuki", kanji: "鈴木　一郎" } };

let ia: TestIa;
let sso: SsoServer;
let httpServer: http.Server;
let base: string;
const cards: Record<string, { label: string; pin: string }> = {};
const rp: Record<string, { id: string; secret: string; redirect: string; logout: string }> = {};
const trustedProxies: string[] = [];
let tlsFiles: { serverCert: string; clientKey: string; clientCert: string; clientSerial: string };

async function startSso(options: SsoOptions): Promise<void> {
  const app = express();
  httpServer = http.createServer(app);
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(httpServer.address() as { port: number }).port}`;
  sso = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl: base }, options);
  app.use("/sso", sso.router);
}

async function issueCard(name: string, subject: Record<string, unknown>): Promise<void> {
  cards[name] = await issueAuthCard(ia.ctx, subject, by);
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

beforeAll(async () => {
  ia = await openTestIa("sso");
  await runDemoCeremony(ia.ctx, by);
  await issueCard("doctor", doctor);
  await issueCard("pharmacist", pharmacist);

  // TLS: a self-signed server certificate (test only), and a doctor's auth certificate issued by
  // our CA for a key made in software (CSR-style issuance), since Node's TLS cannot use a card key.
  const w = ia.work;
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.pem",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2"], w);
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const profile = ia.ctx.policies.profiles.get("auth-person")!;
  const issued = await ia.ctx.issuance.issue({
    profile: "auth-person", subject: parseSubscriberSubject(tlsDoctor, profile, ia.ctx.policies.hcRoles),
    subjectPublicKeyInfo: publicKey.export({ format: "der", type: "spki" }),
  }, by);
  tlsFiles = {
    serverCert: fs.readFileSync(path.join(w, "server.pem"), "utf8"),
    clientKey: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    clientCert: toPem(issued.der),
    clientSerial: issued.serialHex,
  };

  await startSso({
    tls: { port: 0, key: fs.readFileSync(path.join(w, "server.key")), cert: fs.readFileSync(path.join(w, "server.pem")) },
    verifier: { refreshIntervalMs: 0 },
    trustedProxies,
  });
  for (const [name, roles, mapping] of [["emr", ["Medical Doctor"], "linked"], ["portal-any", [], "pairwise"]] as const) {
    const redirect = `http://rp-${name}.test/cb`;
    const logout = `http://rp-${name}.test/bye`;
    const { secret } = await registerClient(ia.ctx.db, { clientId: name, name: `${name} service`, redirectUris: [redirect], postLogoutRedirectUris: [logout], allowedHcRoles: [...roles], accountMapping: mapping }, admin);
    rp[name] = { id: name, secret, redirect, logout };
  }
});

afterAll(async () => {
  await sso?.close();
  httpServer?.closeAllConnections();
  await new Promise((r) => httpServer?.close(r));
  await ia?.cleanup();
});

// The RP side (test/helpers/sso-login.ts), bound to this file's server and clients.
type Started = StartedLogin;
const rpConfig = (name: string) => rpConfigOf(sso.issuer, rp[name]);
const startLogin = (name: string, browser?: TestBrowser, scope?: string) => startLoginAt(sso.issuer, rp[name], browser, scope);
const finish = (s: Started, name: string, redirectTo: string) => finishLogin(s, rp[name], redirectTo);
const cardLogin = (s: Started, card: { label: string; pin: string }) => cardLoginWith(ia.ctx.cards, s, card);

async function auditCount(action: string, code?: string): Promise<number> {
  const rows = await ia.ctx.db("audit_log").where({ action }).select("details");
  return rows.filter((r) => !code || (typeof r.details === "string" ? JSON.parse(r.details) : r.details).code === code).length;
}

describe("SSO center: OpenID provider + card login", () => {
  it("serves discovery and a JWKS generated into the database", async () => {
    const config = await rpConfig("emr");
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(`${base}/sso`);
    expect(meta.code_challenge_methods_supported).toContain("S256");
    const jwks = (await (await fetch(meta.jwks_uri!)).json()) as { keys: { kid: string; kty: string; d?: string }[] };
    const stored = await ia.ctx.db("sso_signing_keys").select("kid");
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(stored.map((r) => r.kid).sort());
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
    // RS256 by default; PS256 and ES256 keys for clients registered with them (issue 14 §5).
    expect(jwks.keys.map((k) => `${k.kty}/${(k as { alg?: string }).alg}`).sort()).toEqual(["EC/ES256", "RSA/PS256", "RSA/RS256"]);
  });

  it("the login page is Japanese by default, English on request, and carries the challenge", async () => {
    const s = await startLogin("emr");
    const ja = await s.browser.request(s.interactionUrl);
    expect(ja.body).toContain('<html lang="ja">');
    expect(ja.body).toContain("HPKIカードでログインします");
    expect(ja.body).toContain("Medical Doctor");
    const en = await s.browser.request(`${s.interactionUrl}?lang=en`);
    expect(en.body).toContain("Log in with your HPKI card to");
    // Handlebars escapes "=" as &#x3D;: the browser shows and posts the original text.
    const challenge = /<pre id="challenge">([^<]+)<\/pre>/.exec(en.body)![1].replace(/&#x3D;/g, "=");
    expect(challenge).toMatch(/^HPKI-SSO-LOGIN-2\norigin=http:\/\/127\.0\.0\.1:\d+\nissuer=http:\/\/127\.0\.0\.1:\d+\/sso\nclient_id=emr\nclient_name=emr service\ninteraction=/);
  });

  let firstSub: string;
  let refreshToken: string | undefined;
  let idToken: string | undefined;
  let loggedIn: TestBrowser;

  it("a real RP completes code + PKCE with a signed challenge from a SoftHSM card and gets hcRole", async () => {
    const s = await startLogin("emr");
    const r = await cardLogin(s, cards.doctor);
    expect(r.status, r.body).toBe(200);
    const tokens = await finish(s, "emr", (r.json as { redirectTo: string }).redirectTo);
    const claims = tokens.claims()!;
    expect(claims.hcRole).toBe("Medical Doctor");
    expect(claims.subscriberId).toBe("SSO000001");
    expect(claims.name).toBe("Taro Yamada");
    expect(claims["name#ja-Hani-JP"]).toBe("山田　太郎");
    expect(claims.organization).toBe("Tokyo Chuo Hospital");
    firstSub = claims.sub;
    // No confirmed link yet: a pairwise pseudonym, not our internal person id.
    const person = await ia.ctx.db("sso_persons").where({ subscriber_id: "SSO000001" }).first("id");
    expect(firstSub).not.toBe(person.id);
    const info = await oidc.fetchUserInfo(s.config, tokens.access_token, firstSub);
    expect(info.hcRole).toBe("Medical Doctor");
    refreshToken = tokens.refresh_token;
    idToken = tokens.id_token;
    loggedIn = s.browser;
    expect(await auditCount("sso.login")).toBe(1);
  });

  it("refresh tokens work", async () => {
    expect(refreshToken).toBeDefined();
    const config = await rpConfig("emr");
    const t = await oidc.refreshTokenGrant(config, refreshToken!);
    expect(t.access_token).toBeTruthy();
    // Rotated at every use (reuse detection: sso-rp.test.ts).
    expect(t.refresh_token).toBeTruthy();
    expect(t.refresh_token).not.toBe(refreshToken);
    refreshToken = t.refresh_token;
    expect(t.claims()?.sub).toBe(firstSub);
  });

  it("the person asks for a link in the portal, the service confirms it by the sub it saw; sub stays, service_account_id appears", async () => {
    const portal = await loggedIn.request(`${base}/sso/portal?lang=en`);
    expect(portal.status).toBe(200);
    expect(portal.body).toContain("Services open to you");
    expect(portal.body).toContain("emr service");
    const csrf = /name="csrf" value="([^"]+)"/.exec(portal.body)![1];
    const forged = await loggedIn.request(`${base}/sso/portal/links`, { body: new URLSearchParams({ csrf: "x", clientId: "emr", accountId: "AAA" }) });
    expect(forged.status).toBe(403);
    const asked = await loggedIn.request(`${base}/sso/portal/links`, { body: new URLSearchParams({ csrf, clientId: "emr", accountId: "AAA" }) });
    expect(asked.status).toBe(303);

    const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`emr:${secret}`).toString("base64")}` });
    expect((await fetch(`${base}/sso/api/links/pending`, { headers: basic("wrong") })).status).toBe(401);
    const pending = (await (await fetch(`${base}/sso/api/links/pending`, { headers: basic(rp.emr.secret) })).json()) as { sub: string; accountId: string; nameKanji: string }[];
    expect(pending).toHaveLength(1);
    // The service is told the sub it saw at the login, never our internal person id.
    expect(pending[0]).toMatchObject({ sub: firstSub, accountId: "AAA", nameKanji: "山田　太郎" });
    expect(pending[0]).not.toHaveProperty("personId");
    const confirm = (sub: string) => fetch(`${base}/sso/api/links/confirm`, { method: "POST", headers: { ...basic(rp.emr.secret), "content-type": "application/json" }, body: JSON.stringify({ sub }) });
    expect((await confirm("not-a-sub-it-saw")).status).toBe(404);
    const confirmed = await confirm(firstSub);
    expect(confirmed.status).toBe(200);
    expect(await confirmed.json()).toMatchObject({ sub: firstSub, accountId: "AAA", status: "confirmed" });

    // The session is still there: the next authorization needs no card; sub is unchanged and the
    // service's account id is a claim of its own (OIDC Core §2: sub is never reassigned).
    const config = await rpConfig("emr");
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: rp.emr.redirect, scope: "openid hcrole", state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
    const { stoppedAt } = await loggedIn.follow(url.toString(), rp.emr.redirect);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(stoppedAt!), { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()!.sub).toBe(firstSub);
    expect(tokens.claims()!.service_account_id).toBe("AAA");
    expect(tokens.claims()!.hcRole).toBe("Medical Doctor");
    // The refresh token from before the link still works (rotated) and keeps the sub.
    const refreshed = await oidc.refreshTokenGrant(config, refreshToken!);
    refreshToken = refreshed.refresh_token;
    expect(refreshed.claims()!.sub).toBe(firstSub);
    expect(refreshed.claims()!.service_account_id).toBe("AAA");
    expect(await auditCount("sso.link-confirmed")).toBe(1);
  });

  it("RP-initiated logout ends the session", async () => {
    const config = await rpConfig("emr");
    const end = oidc.buildEndSessionUrl(config, { id_token_hint: idToken!, post_logout_redirect_uri: rp.emr.logout });
    const page = await loggedIn.request(end.toString());
    expect(page.status).toBe(200);
    const action = /<form[^>]*action="([^"]+)"/.exec(page.body)![1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)![1];
    const done = await loggedIn.request(new URL(action, end).toString(), { body: new URLSearchParams({ xsrf, logout: "yes" }) });
    expect(done.location).toBe(rp.emr.logout);
    const portal = await loggedIn.request(`${base}/sso/portal?lang=en`);
    expect(portal.body).toContain("To use the portal, log in with your HPKI card.");
  });

  it("the portal logs in with the card by itself and lists the services open to the person (Japanese)", async () => {
    const browser = new TestBrowser();
    const start = await browser.request(`${base}/sso/portal`);
    expect(start.body).toContain("HPKIカードでポータルにログイン");
    const { stoppedAt } = await browser.follow(`${base}/sso/portal/login`, `${base}/sso/interaction/`);
    const page = await browser.request(stoppedAt!, { json: true });
    const j = page.json as { challenge: string; submit: string };
    const signed = await signLoginChallenge(ia.ctx.cards, cards.pharmacist.label, cards.pharmacist.pin, j.challenge);
    const done = await browser.request(j.submit, { body: signed, json: true });
    expect(done.status, done.body).toBe(200);
    const back = await browser.follow((done.json as { redirectTo: string }).redirectTo, `${base}/sso/portal/callback`);
    expect(back.stoppedAt).toBeDefined();
    const portal = await browser.request(`${base}/sso/portal`);
    expect(portal.body).toContain("佐藤　花子");
    expect(portal.body).toContain("利用できるサービス");
    // A pharmacist sees the service open to any role, not the doctors-only one.
    expect(portal.body).toContain("portal-any service");
    expect(portal.body).not.toContain("emr service");
    expect(portal.body).toContain("最近のログイン");
  });

  it("a client allowing only Medical Doctor refuses a Pharmacist, with a page and an audit record", async () => {
    const s = await startLogin("emr");
    const r = await cardLogin(s, cards.pharmacist);
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: "hcrole-not-allowed", messageJa: "この資格ではこのサービスにログインできません。" });
    expect(await auditCount("sso.login-refused", "hcrole-not-allowed")).toBe(1);
    // "Return to the service": the RP gets access_denied with its state and a Japanese description.
    const back = await s.browser.request((r.json as { returnUrl: string }).returnUrl, { body: new URLSearchParams({ reason: "hcrole-not-allowed" }) });
    expect(back.status).toBe(303);
    const { stoppedAt } = await s.browser.follow(new URL(back.location!, base).toString(), rp.emr.redirect);
    const cb = new URL(stoppedAt!);
    expect(cb.searchParams.get("error")).toBe("access_denied");
    expect(cb.searchParams.get("state")).toBe(s.state);
    expect(cb.searchParams.get("error_description")).toBe("この資格ではこのサービスにログインできません。");
    await expect(oidc.authorizationCodeGrant(s.config, cb, { pkceCodeVerifier: s.verifier, expectedState: s.state })).rejects.toMatchObject({ error: "access_denied" });
    // The same pharmacist may log in where any role is allowed.
    const any = await startLogin("portal-any");
    const ok = await cardLogin(any, cards.pharmacist);
    expect(ok.status, ok.body).toBe(200);
    const tokens = await finish(any, "portal-any", (ok.json as { redirectTo: string }).redirectTo);
    expect(tokens.claims()!.hcRole).toBe("Pharmacist");
  });

  it("a wrong PIN reported by the agent gets a clear page (Japanese) and an audit record; the PIN is nowhere stored", async () => {
    const s = await startLogin("emr");
    const wrongPin = "13572468";
    const refusal = await signLoginChallenge(ia.ctx.cards, cards.doctor.label, wrongPin, s.challenge).then(() => undefined, (e: unknown) => e);
    const report = cardLoginFailure(refusal, s.challenge)!;
    expect(report.error).toBe("pin-incorrect");
    // Pasted into the login page form, as a person would.
    const r = await s.browser.request(s.submit, { body: new URLSearchParams({ response: JSON.stringify(report) }) });
    expect(r.status).toBe(403);
    expect(r.body).toContain("カードがPINを受け付けませんでした");
    expect(await auditCount("sso.login-refused", "pin-incorrect")).toBe(1);
    const login = await ia.ctx.db("sso_logins").where({ outcome: "pin-incorrect" }).first();
    expect(login).toMatchObject({ method: "challenge", client_id: "emr", person_id: null });
    const dump = JSON.stringify([await ia.ctx.db("audit_log").select("details"), await ia.ctx.db("sso_logins").select()]);
    expect(dump).not.toContain(wrongPin);
    // The right PIN on a fresh challenge logs in.
    const fresh = await startLogin("emr", s.browser);
    const ok = await cardLogin(fresh, cards.doctor);
    expect(ok.status, ok.body).toBe(200);
  });

  it("refuses a tampered challenge signature, then the replayed challenge; a fresh challenge works", async () => {
    const s = await startLogin("emr");
    const signed = await signLoginChallenge(ia.ctx.cards, cards.doctor.label, cards.doctor.pin, s.challenge);
    const sig = Buffer.from(signed.signature, "base64");
    sig[10] ^= 1;
    const tampered = await s.browser.request(s.submit, { body: { ...signed, signature: sig.toString("base64") }, json: true });
    expect(tampered.json).toMatchObject({ error: "bad-challenge-signature" });
    const replay = await s.browser.request(s.submit, { body: signed, json: true });
    expect(replay.status).toBe(403);
    expect(replay.json).toMatchObject({ error: "challenge-replayed" });
    // A challenge signed for another interaction is refused too.
    const other = await startLogin("emr");
    const cross = await other.browser.request(other.submit, { body: await signLoginChallenge(ia.ctx.cards, cards.doctor.label, cards.doctor.pin, s.challenge), json: true });
    expect(cross.json).toMatchObject({ error: "challenge-invalid" });
    // A fresh challenge, posted as the login page's HTML form does (CRLF line ends, base64 fields).
    const fresh = await s.browser.request(s.interactionUrl, { json: true });
    const text = (fresh.json as { challenge: string }).challenge;
    const good = await signLoginChallenge(ia.ctx.cards, cards.doctor.label, cards.doctor.pin, text);
    const again = await s.browser.request(s.submit, { body: new URLSearchParams({ ...good, challenge: text.replace(/\n/g, "\r\n") }) });
    expect(again.status, again.body).toBe(303);
    expect(again.location).toMatch(/\/sso\/auth\//);
    // The doctor logged in before: the refused attempt with their certificate shows in their history.
    const refusedRow = await ia.ctx.db("sso_logins").where({ outcome: "bad-challenge-signature" }).first("person_id");
    expect(refusedRow.person_id).toMatch(/^p-/);
    expect(await auditCount("sso.login-refused", "bad-challenge-signature")).toBe(1);
    expect(await auditCount("sso.login-refused", "challenge-replayed")).toBe(1);
  });

  it("refuses a certificate from an unconfigured CA (signature by its own key is valid)", async () => {
    const w = ia.work;
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-subj", "/C=JP/O=Other/CN=HPKI-01-OtherAuthCA-forAuthentication-forIndividual", "-days", "2"], w);
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "mallory.key", "-out", "mallory.csr", "-subj", "/C=JP/CN=Mallory/serialNumber=SSO000001"], w);
    fs.writeFileSync(path.join(w, "ext.cnf"), "keyUsage=critical,digitalSignature\ncertificatePolicies=critical,1.2.392.100495.1.5.1.2.0.1\n");
    openssl(["x509", "-req", "-in", "mallory.csr", "-CA", "other-ca.pem", "-CAkey", "other-ca.key", "-out", "mallory.pem", "-days", "2", "-extfile", "ext.cnf"], w);
    const s = await startLogin("emr");
    const key = fs.readFileSync(path.join(w, "mallory.key"), "utf8");
    const signature = sign("sha256", Buffer.from(s.challenge), key).toString("base64");
    const r = await s.browser.request(s.submit, { body: { challenge: s.challenge, certificate: fs.readFileSync(path.join(w, "mallory.pem"), "utf8"), signature }, json: true });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: "untrusted-issuer" });
    expect(await auditCount("sso.login-refused", "untrusted-issuer")).toBe(1);
  });

  it("a client registered with allowed scopes gets invalid_scope for any other (no subscriber id to correlate persons)", async () => {
    const narrow = { id: "narrow", redirect: "http://rp-narrow.test/cb", secret: "" };
    narrow.secret = (await registerClient(ia.ctx.db, { clientId: narrow.id, name: "narrow", redirectUris: [narrow.redirect], allowedScopes: ["hcrole"] }, admin)).secret;
    const config = await rpConfigOf(sso.issuer, narrow);
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: narrow.redirect, scope: "openid hcrole subscriber", state,
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const back = new URL((await new TestBrowser().follow(url.toString(), narrow.redirect)).stoppedAt!);
    expect(back.searchParams.get("error")).toBe("invalid_scope");
    expect(back.searchParams.get("state")).toBe(state);
    const s = await startLoginAt(sso.issuer, narrow, new TestBrowser(), "openid hcrole");
    const r = await cardLogin(s, cards.doctor);
    const claims = (await finishLogin(s, narrow, (r.json as { redirectTo: string }).redirectTo)).claims()!;
    expect(claims.hcRole).toBe("Medical Doctor");
    expect(claims.subscriberId).toBeUndefined();
  });

  it("acr_values asking for card + PIN: the TLS login is not offered and is refused (acr-not-met); the card login gives that acr", async () => {
    const plain = await startLogin("emr");
    const config = await rpConfig("emr");
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: rp.emr.redirect, scope: "openid", state, acr_values: "urn:hpki-ca:acr:card-pin",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const browser = new TestBrowser();
    const { stoppedAt } = await browser.follow(url.toString(), `${base}/sso/interaction/`);
    const page = (await browser.request(stoppedAt!, { json: true })).json as { uid: string; challenge: string; submit: string; tlsLogin?: string };
    expect(page.tlsLogin).toBeUndefined();
    const tls = plain.tlsLogin.replace(/interaction\/[^/]+\/tls$/, `interaction/${page.uid}/tls`);
    const refused = await browser.tlsGet(tls, { key: tlsFiles.clientKey, cert: tlsFiles.clientCert, ca: tlsFiles.serverCert });
    expect(refused.status).toBe(403);
    expect(refused.json).toMatchObject({ error: "acr-not-met" });
    const signed = await signLoginChallenge(ia.ctx.cards, cards.doctor.label, cards.doctor.pin, page.challenge);
    const ok = await browser.request(page.submit, { body: signed, json: true });
    expect(ok.status, ok.body).toBe(200);
    const back = await browser.follow((ok.json as { redirectTo: string }).redirectTo, rp.emr.redirect);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()!.acr).toBe("urn:hpki-ca:acr:card-pin");
  });

  it("TLS client authentication with an auth certificate from our CA succeeds; after revocation and an index refresh it is refused", async () => {
    const s = await startLogin("emr");
    expect(s.tlsLogin).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/sso\/interaction\/.+\/tls$/);
    const noCert = await s.browser.tlsGet(s.tlsLogin, { ca: tlsFiles.serverCert });
    expect(noCert.json).toMatchObject({ error: "malformed-certificate" });
    const ok = await s.browser.tlsGet(s.tlsLogin, { key: tlsFiles.clientKey, cert: tlsFiles.clientCert, ca: tlsFiles.serverCert });
    expect(ok.status, ok.body).toBe(200);
    const tokens = await finish(s, "emr", (ok.json as { redirectTo: string }).redirectTo);
    expect(tokens.claims()!).toMatchObject({ hcRole: "Medical Doctor", subscriberId: "SSO000003" });

    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex: tlsFiles.clientSerial, reason: "keyCompromise" }, by);
    const before = await startLogin("emr");
    // The index has not been refreshed yet (no timer in this test): the certificate still passes.
    expect((await sso.verifier.verify(Buffer.from(tlsFiles.clientCert.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"))).identity.subscriberId).toBe("SSO000003");
    await sso.verifier.refresh(); // incremental: picks up the new revocations row
    const refused = await before.browser.tlsGet(before.tlsLogin, { key: tlsFiles.clientKey, cert: tlsFiles.clientCert, ca: tlsFiles.serverCert });
    expect(refused.status).toBe(403);
    expect(refused.json).toMatchObject({ error: "revoked" });
    expect(await auditCount("sso.login-refused", "revoked")).toBe(1);
  });

  it("a client certificate header is accepted only from an allowlisted proxy address", async () => {
    const viaProxy = async (s: Started) => {
      const url = s.tlsLogin.replace(/^https:\/\/127\.0\.0\.1:\d+/, base);
      const cookie = [...s.browser.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      const r = await fetch(url, { headers: { cookie, accept: "application/json", "x-ssl-client-cert": encodeURIComponent(toPem(fs.readFileSync(path.join(ia.work, "pharmacist-proxy.pem")))) } });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const profile = ia.ctx.policies.profiles.get("auth-person")!;
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const issued = await ia.ctx.issuance.issue({ profile: "auth-person", subject: parseSubscriberSubject({ ...pharmacist, subscriberId: "SSO000004" }, profile, ia.ctx.policies.hcRoles), subjectPublicKeyInfo: publicKey.export({ format: "der", type: "spki" }) }, by);
    fs.writeFileSync(path.join(ia.work, "pharmacist-proxy.pem"), issued.der);
    await sso.verifier.refresh();
    // 127.0.0.1 is not an allowlisted proxy yet: the header is ignored, no certificate was presented.
    const ignored = await viaProxy(await startLogin("portal-any"));
    expect(ignored).toMatchObject({ status: 403, json: { error: "malformed-certificate" } });
    trustedProxies.push("127.0.0.1", "::ffff:127.0.0.1");
    const accepted = await viaProxy(await startLogin("portal-any"));
    expect(accepted.status).toBe(200);
    expect(accepted.json.redirectTo).toMatch(/\/sso\/auth\//);
  });
});

describe("SSO center behind a TLS-terminating proxy (--public-url)", () => {
  it("discovery lists only https endpoints on the public origin whatever Host/X-Forwarded-* say, and openid-client accepts it", async () => {
    const publicUrl = "https://sso.example.test";
    const app = express();
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const local = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const proxied = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl }, { verifier: { refreshIntervalMs: 0 } });
    app.use("/sso", proxied.router);
    try {
      // What the proxy forwards: plain HTTP, the internal Host, and headers a client may forge.
      const meta = (await (await fetch(`${local}/sso/.well-known/openid-configuration`, {
        headers: { host: "evil.test", "x-forwarded-host": "evil.test", "x-forwarded-proto": "http" },
      })).json()) as Record<string, unknown>;
      expect(meta.issuer).toBe(`${publicUrl}/sso`);
      const urls = Object.entries(meta).filter(([k, v]) => typeof v === "string" && (k.endsWith("_endpoint") || k === "jwks_uri"));
      expect(urls.length).toBeGreaterThanOrEqual(7);
      for (const [k, v] of urls) expect(v, k).toMatch(/^https:\/\/sso\.example\.test\/sso\//);
      // openid-client (no insecure-request allowance) discovers the https issuer through the proxy.
      const viaProxy: oidc.CustomFetch = (url, options) => fetch(url.replace(publicUrl, local), options as RequestInit);
      const config = await oidc.discovery(new URL(`${publicUrl}/sso`), rp.emr.id, rp.emr.secret, undefined, { [oidc.customFetch]: viaProxy });
      expect(config.serverMetadata().token_endpoint).toBe(`${publicUrl}/sso/token`);
    } finally {
      await proxied.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("SSO session idle timeout", () => {
  it("a session unused for longer than the idle timeout is gone: prompt=none comes back with login_required", async () => {
    const app = express();
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const short = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl: url }, { verifier: { refreshIntervalMs: 0 }, session: { idleTimeoutS: 4 } });
    app.use("/sso", short.router);
    try {
      const s = await startLoginAt(short.issuer, rp.emr);
      const r = await cardLoginWith(ia.ctx.cards, s, cards.doctor);
      await finishLogin(s, rp.emr, (r.json as { redirectTo: string }).redirectTo);
      const silent = async () => {
        const state = oidc.randomState();
        const u = oidc.buildAuthorizationUrl(s.config, {
          redirect_uri: rp.emr.redirect, scope: "openid", state, prompt: "none",
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
        });
        return new URL((await s.browser.follow(u.toString(), rp.emr.redirect)).stoppedAt!);
      };
      const before = await silent();
      // Within the idle timeout the session answers silently (each use extends it)…
      expect(before.searchParams.get("error")).toBeNull();
      expect(before.searchParams.get("code")).toBeTruthy();
      // …and once unused for longer, it is gone.
      await new Promise((r) => setTimeout(r, 5000));
      expect((await silent()).searchParams.get("error")).toBe("login_required");
    } finally {
      await short.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
