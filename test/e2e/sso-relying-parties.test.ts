/**
 * Issue 14 from the relying parties' side, against a real `hpki serve --role sso` process (its own
 * $HPKI_HOME and SSO token, our database): two independent relying parties — openid-client (Node)
 * and Authlib (Python, Debian's python3-authlib) — each log in with a SoftHSM card through code +
 * PKCE, refresh, call userinfo and log out. A certificate put on hold mid-session: the next refresh
 * (both RPs) and the next prompt=none fail within the stated bound (HPKI_SSO_REFRESH_MS), and each
 * RP's back-channel logout endpoint (a real HTTP server here) receives a logout token whose
 * signature, events, sid and sub check out. A service links an account by the sub it saw and sub
 * does not change. Postgres only (the child shares the database).
 */
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import fs from "node:fs";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { ACR_CARD_PIN } from "../../src/sso/provider.ts";
import { TestBrowser } from "../helpers/browser.ts";
import { issueAuthCard, openTestIa, type TestIa } from "../helpers/ia.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { tempDir } from "../helpers/openssl.ts";
import { cardLogin, finishLogin, followApproving, rpConfig, startLogin, type TestRp } from "../helpers/sso-login.ts";
import { childEnv, serveSso } from "../helpers/sso-serve.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const PY_RP = path.join(repo, "test/helpers/authlib_rp.py");
/** The stated bound's parameter: the SSO child refreshes its revocation index (and sweeps) this often. */
const REFRESH_MS = 1000;
const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };

let ia: TestIa;
let home: string;
let child: { url: string; stop(): Promise<number | null> } | undefined;
let issuer: string;
let receiver: http.Server;
let receiverUrl: string;
/** Logout tokens received, by the receiving RP's path ("/emr", "/py"). */
const logoutTokens: { path: string; token: string; at: number }[] = [];
const cards: Record<string, { label: string; pin: string; serialHex: string }> = {};
const emr: TestRp = { id: "emr", secret: "", redirect: "http://rp-emr.test/cb" };
const py: TestRp = { id: "py-rp", secret: "", redirect: "http://rp-py.test/cb" };

async function issueCard(name: string, subject: Record<string, unknown>): Promise<void> {
  const card = await issueAuthCard(ia.ctx, subject, by);
  const row = await ia.ctx.db("certificates").where({ subscriber_id: subject.subscriberId }).orderBy("id", "desc").first("serial_hex");
  cards[name] = { ...card, serialHex: row.serial_hex };
}

/** One step of the Authlib relying party (a python3 child; asynchronous, so this process's back-channel receiver keeps answering). */
function pyRp(step: string, extra: Record<string, unknown> = {}): Promise<any> {
  const input = JSON.stringify({ step, issuer, client_id: py.id, client_secret: py.secret, redirect_uri: py.redirect, scope: "openid hcrole offline_access", ...extra });
  return new Promise((resolve, reject) => {
    const p = spawn("/usr/bin/python3", [PY_RP]);
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`authlib RP ${step} failed (${code}): ${err}`))));
    p.stdin.end(input);
  });
}

/** Waits for `cond` (polling every 100 ms) up to `ms`; returns the first truthy value. */
async function waitFor<T>(what: string, cond: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The browser logs in with `card` at the Authlib RP; returns the RP's result of the finish step. */
async function pyLogin(browser: TestBrowser, card: { label: string; pin: string }, extra: Record<string, unknown> = {}) {
  const start = await pyRp("start", extra);
  // Straight back when the session covers this client (offline_access approved before); else the login page.
  const first = await followApproving(browser, start.url, py.redirect);
  let callback = first.stoppedAt;
  if (!callback) {
    expect(first.last.url).toContain(`${issuer}/interaction/`);
    const page = (await browser.request(first.last.url, { json: true })).json as { challenge: string; submit: string };
    const signed = await signLoginChallenge(ia.ctx.cards, card.label, card.pin, page.challenge);
    const done = await browser.request(page.submit, { body: signed, json: true });
    expect(done.status, done.body).toBe(200);
    // offline_access is beyond the client's defaults: the person allows it on the consent page once.
    callback = (await followApproving(browser, (done.json as { redirectTo: string }).redirectTo, py.redirect)).stoppedAt;
  }
  expect(callback).toBeDefined();
  return await pyRp("finish", { ...extra, callback, state: start.state, verifier: start.verifier, nonce: start.nonce });
}

beforeAll(async () => {
  ia = await openTestIa("sso-rp");
  await runDemoCeremony(ia.ctx, by);
  await issueCard("doctor", { hcRole: "Medical Doctor", subscriberId: "RP0000001", name: { latin: "Keiko Mori", kanji: "森　恵子" } });
  await issueCard("held", { hcRole: "Medical Doctor", subscriberId: "RP0000002", name: { latin: "Goro Ito", kanji: "伊藤　五郎" } });

  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const token = new URLSearchParams(body).get("logout_token");
      if (req.method === "POST" && token) logoutTokens.push({ path: req.url ?? "", token, at: Date.now() });
      res.writeHead(token ? 200 : 400).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

  emr.secret = (await registerClient(ia.ctx.db, {
    clientId: emr.id, name: "地域医療連携EMR", redirectUris: [emr.redirect], postLogoutRedirectUris: ["http://rp-emr.test/bye"],
    allowedHcRoles: ["Medical Doctor"], accountMapping: "linked", backchannelLogoutUri: `${receiverUrl}/emr`,
  }, admin)).secret;
  py.secret = (await registerClient(ia.ctx.db, {
    clientId: py.id, name: "Python RP", redirectUris: [py.redirect], allowedHcRoles: [], accountMapping: "pairwise", backchannelLogoutUri: `${receiverUrl}/py`,
  }, admin)).secret;

  home = tempDir("sso-rp-child-");
  child = await serveSso({ ...childEnv(home, ia.databaseUrl), HPKI_SSO_REFRESH_MS: String(REFRESH_MS), HPKI_SSO_IDLE_TIMEOUT_S: "900" });
  issuer = `${child.url}/sso`;
}, 300_000);

afterAll(async () => {
  await child?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await ia?.cleanup();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe("SSO center with two independent relying parties (hpki serve --role sso)", () => {
  it("discovery advertises only what works", async () => {
    const meta = (await rpConfig(issuer, emr)).serverMetadata();
    expect(meta.response_types_supported).toEqual(["code"]);
    expect(meta.token_endpoint_auth_methods_supported).not.toContain("client_secret_jwt");
    // private_key_jwt works for clients registered with their keys (test/integration/sso-client-keys.test.ts).
    expect(meta.token_endpoint_auth_methods_supported).toContain("private_key_jwt");
    expect(meta.id_token_signing_alg_values_supported!.sort()).toEqual(["ES256", "PS256", "RS256"]);
    expect(meta.subject_types_supported).toEqual(["pairwise"]);
    expect(meta.acr_values_supported).toContain(ACR_CARD_PIN);
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.backchannel_logout_session_supported).toBe(true);
    expect(meta.introspection_endpoint).toBe(`${issuer}/token/introspection`);
    expect(meta.revocation_endpoint).toBe(`${issuer}/token/revocation`);
    expect(meta.claims_supported).toEqual(expect.arrayContaining(["acr", "amr", "auth_time", "service_account_id"]));
  });


  let doctorSub: string;
  it("openid-client: code + PKCE with the card, acr/amr/auth_time, userinfo, refresh rotation with reuse detection, introspection and revocation", async () => {
    const s = await startLogin(issuer, emr);
    const r = await cardLogin(ia.ctx.cards, s, cards.doctor);
    expect(r.status, r.body).toBe(200);
    const tokens = await finishLogin(s, emr, (r.json as { redirectTo: string }).redirectTo);
    const claims = tokens.claims()!;
    expect(claims.acr).toBe(ACR_CARD_PIN);
    expect([...((claims.amr as string[] | undefined) ?? [])].sort()).toEqual(["hwk", "mfa", "pin", "sc"]);
    expect(typeof claims.auth_time).toBe("number");
    expect(claims.sid).toBeTruthy();
    expect(claims.service_account_id).toBeUndefined();
    doctorSub = claims.sub;
    expect((await oidc.fetchUserInfo(s.config, tokens.access_token, doctorSub)).hcRole).toBe("Medical Doctor");

    const r1 = await oidc.refreshTokenGrant(s.config, tokens.refresh_token!);
    expect(r1.refresh_token).not.toBe(tokens.refresh_token);
    expect(r1.claims()!).toMatchObject({ sub: doctorSub, acr: ACR_CARD_PIN, auth_time: claims.auth_time });
    const intro = await oidc.tokenIntrospection(s.config, r1.access_token);
    expect(intro).toMatchObject({ active: true, sub: doctorSub, client_id: emr.id });
    await oidc.tokenRevocation(s.config, r1.access_token);
    expect((await oidc.tokenIntrospection(s.config, r1.access_token)).active).toBe(false);
    // Reuse of a rotated refresh token: refused, and the whole grant with it (RFC 9700 §4.14.2).
    await expect(oidc.refreshTokenGrant(s.config, tokens.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });
    await expect(oidc.refreshTokenGrant(s.config, r1.refresh_token!)).rejects.toMatchObject({ error: "invalid_grant" });

    // Token values are not in the database (only their SHA-256).
    const dump = JSON.stringify(await ia.ctx.db("sso_oidc_payloads").select());
    for (const v of [tokens.access_token, tokens.refresh_token!, r1.access_token, r1.refresh_token!]) expect(dump).not.toContain(v);
  }, 180_000);

  it("the service links the account by the sub it saw: sub unchanged, service_account_id appears; RP-initiated logout notifies the RP", async () => {
    const browser = new TestBrowser();
    const s = await startLogin(issuer, emr, browser);
    const tokens = await finishLogin(s, emr, ((await cardLogin(ia.ctx.cards, s, cards.doctor)).json as { redirectTo: string }).redirectTo);
    expect(tokens.claims()!.sub).toBe(doctorSub);
    const basic = { authorization: `Basic ${Buffer.from(`${emr.id}:${emr.secret}`).toString("base64")}`, "content-type": "application/json" };
    const link = await fetch(`${issuer}/api/links`, { method: "POST", headers: basic, body: JSON.stringify({ sub: doctorSub, accountId: "EMR-000123" }) });
    expect(link.status).toBe(201);
    const after = await oidc.refreshTokenGrant(s.config, tokens.refresh_token!);
    expect(after.claims()!).toMatchObject({ sub: doctorSub, service_account_id: "EMR-000123" });
    expect(await oidc.fetchUserInfo(s.config, after.access_token, doctorSub)).toMatchObject({ sub: doctorSub, service_account_id: "EMR-000123" });

    const before = logoutTokens.length;
    const end = oidc.buildEndSessionUrl(s.config, { id_token_hint: after.id_token!, post_logout_redirect_uri: "http://rp-emr.test/bye" });
    const page = await browser.request(end.toString());
    const action = /<form[^>]*action="([^"]+)"/.exec(page.body)![1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)![1];
    const done = await browser.request(new URL(action, end).toString(), { body: new URLSearchParams({ xsrf, logout: "yes" }) });
    expect(done.location).toBe("http://rp-emr.test/bye");
    const got = await waitFor("a logout token at /emr", async () => logoutTokens.slice(before).find((t) => t.path === "/emr"));
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const { payload } = await jwtVerify(got.token, jwks, { issuer, audience: emr.id });
    expect(payload).toMatchObject({ sub: doctorSub, sid: after.claims()!.sid, events: { "http://schemas.openid.net/event/backchannel-logout": {} } });
    expect(payload.nonce).toBeUndefined();
  }, 180_000);

  it("Authlib (Python): code + PKCE, ID token checked, userinfo, refresh, logout", async () => {
    const browser = new TestBrowser();
    const r = await pyLogin(browser, cards.doctor);
    expect(r.claims).toMatchObject({ iss: issuer, aud: py.id, acr: ACR_CARD_PIN, hcRole: "Medical Doctor" });
    expect(typeof r.claims.auth_time).toBe("number");
    // Pairwise: this client sees another sub than emr for the same person.
    expect(r.claims.sub).not.toBe(doctorSub);
    expect(r.userinfo).toMatchObject({ sub: r.claims.sub, hcRole: "Medical Doctor" });
    expect(r.refreshed_claims.sub).toBe(r.claims.sub);
    expect(r.userinfo_after_refresh.sub).toBe(r.claims.sub);
    // Logout from the Python RP's end-session URL (confirm page), then the refresh token is gone.
    const page = await browser.request(r.end_session_url);
    expect(page.status).toBe(200);
    const action = /<form[^>]*action="([^"]+)"/.exec(page.body)![1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)![1];
    const before = logoutTokens.length;
    const done = await browser.request(new URL(action, r.end_session_url).toString(), { body: new URLSearchParams({ xsrf, logout: "yes" }) });
    expect(done.status).toBeLessThan(400);
    const got = await waitFor("a logout token at /py", async () => logoutTokens.slice(before).find((t) => t.path === "/py"));
    const { payload } = await jwtVerify(got.token, createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: py.id, typ: "logout+jwt" });
    expect(payload).toMatchObject({ sub: r.claims.sub, sid: r.claims.sid });
    // The SSO session is gone: prompt=none comes back with login_required.
    const start = await pyRp("start", { prompt: "none" });
    const back = new URL((await browser.follow(start.url, py.redirect)).stoppedAt!);
    expect(back.searchParams.get("error")).toBe("login_required");
    // offline_access was granted: that refresh token outlives the session (OIDC Core §11; README).
    expect((await pyRp("refresh", { refresh_token: r.refresh_token })).ok).toBe(true);
  }, 180_000);

  it("a certificate put on hold mid-session: refresh (both RPs) and prompt=none fail within the bound; both RPs get a valid back-channel logout token", async () => {
    const browser = new TestBrowser();
    const s = await startLogin(issuer, emr, browser);
    const tokens = await finishLogin(s, emr, ((await cardLogin(ia.ctx.cards, s, cards.held)).json as { redirectTo: string }).redirectTo);
    const emrClaims = tokens.claims()!;
    // Same browser, same SSO session: the Python RP needs no card.
    const p = await pyLogin(browser, cards.held);
    const pyRefresh: string = p.refresh_token;
    let emrRefresh = tokens.refresh_token!;
    const before = logoutTokens.length;

    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex: cards.held.serialHex, reason: "certificateHold" }, by);
    const revokedAt = Date.now();
    // Until the SSO process has read the revocation the tokens work; then never again.
    const refusedAt = await waitFor("the refresh to be refused", async () => {
      try {
        emrRefresh = (await oidc.refreshTokenGrant(s.config, emrRefresh)).refresh_token!;
        return undefined;
      } catch (e) {
        expect(e).toMatchObject({ error: "invalid_grant" });
        return Date.now();
      }
    });
    console.log(`revocation → refresh refused: ${refusedAt - revokedAt} ms (HPKI_SSO_REFRESH_MS=${REFRESH_MS})`);
    expect(await pyRp("refresh", { refresh_token: pyRefresh })).toEqual({ ok: false, error: "invalid_grant" });
    await expect(oidc.fetchUserInfo(s.config, tokens.access_token, emrClaims.sub)).rejects.toBeDefined();

    // prompt=none: back at the RP with login_required, no new code.
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: emr.redirect, scope: "openid", state, prompt: "none",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const back = new URL((await browser.follow(url.toString(), emr.redirect)).stoppedAt!);
    expect(back.searchParams.get("error")).toBe("login_required");
    expect(back.searchParams.get("state")).toBe(state);
    expect(back.searchParams.get("code")).toBeNull();

    // Back-channel logout tokens for both RPs, each with the sub and sid that RP knows.
    const got = await waitFor("logout tokens at /emr and /py", async () => {
      const mine = logoutTokens.slice(before);
      return mine.some((t) => t.path === "/emr") && mine.some((t) => t.path === "/py") ? mine : undefined;
    });
    console.log(`revocation → back-channel logout received: ${Math.max(...got.map((t) => t.at)) - revokedAt} ms`);
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const emrToken = await jwtVerify(got.find((t) => t.path === "/emr")!.token, jwks, { issuer, audience: emr.id, typ: "logout+jwt" });
    expect(emrToken.payload).toMatchObject({ sub: emrClaims.sub, sid: emrClaims.sid, events: { "http://schemas.openid.net/event/backchannel-logout": {} } });
    expect(emrToken.payload.jti).toBeTruthy();
    const pyToken = await jwtVerify(got.find((t) => t.path === "/py")!.token, jwks, { issuer, audience: py.id, typ: "logout+jwt" });
    expect(pyToken.payload).toMatchObject({ sub: p.claims.sub, sid: p.claims.sid });
    const ended = await ia.ctx.db("audit_log").where({ action: "sso.sessions-ended" }).first("details", "at");
    console.log(`revocation → sessions ended (audit): ${new Date(ended.at).getTime() - revokedAt} ms`);
    expect(typeof ended.details === "string" ? JSON.parse(ended.details) : ended.details).toMatchObject({ reason: "revoked", clients: expect.arrayContaining([emr.id, py.id]) });
  }, 180_000);
});
