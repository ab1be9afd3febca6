/**
 * Browser card login through the local card agent (issue 14 §9): the SSO center's login page (real
 * HTTP, real oidc-provider) calls the agent on 127.0.0.1 (card-agent-server.ts), which signs the
 * HPKI-SSO-LOGIN-2 challenge with a SoftHSM card's authentication key. The agent answers only the
 * configured SSO origin and signs only that origin's challenges; the SSO center refuses a
 * challenge signed for another origin or client; headless Chromium logs in through the agent and a
 * real relying party (openid-client) verifies the ID token.
 */
import http from "node:http";
import express from "express";
import * as oidc from "openid-client";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { startCardAgent, type CardAgent } from "../../src/sso/card-agent-server.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { createSsoServer, type SsoServer } from "../../src/sso/server.ts";
import { cardLoginFailure } from "../../src/status/card-login-failure.ts";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { rpConfig, startLogin, type TestRp } from "../helpers/sso-login.ts";

const by = { actor: "test", role: "ia" };
const doctor = { hcRole: "Medical Doctor", subscriberId: "AGT000001", name: { latin: "Taro Yamada", kanji: "山田　太郎" } };

let ia: TestIa;
let sso: SsoServer;
let httpServer: http.Server;
// The relying party's redirect endpoint (a real listener: Chromium follows the SSO's 303 there).
let rpServer: http.Server;
let rpBase: string;
const callbacks: string[] = [];
let base: string;
let agent: CardAgent;
let browser: Browser;
let card: { label: string; pin: string };
const said: string[] = [];
let signs = 0;
const rp: Record<string, TestRp> = {};

beforeAll(async () => {
  ia = await openTestIa("sso-agent");
  await runDemoCeremony(ia.ctx, by);
  card = await issueAuthCard(ia.ctx, doctor, by);
  const app = express();
  httpServer = http.createServer(app);
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(httpServer.address() as { port: number }).port}`;
  // The agent as `hpki card agent --pin-file` runs it: the PIN comes from the agent's side only.
  agent = await startCardAgent({
    ssoOrigin: base, port: 0, say: (l) => said.push(l),
    sign: async (c) => {
      signs++;
      return signLoginChallenge(ia.ctx.cards, card.label, card.pin, c.text).catch((e: unknown) => {
        const report = cardLoginFailure(e, c.text);
        if (report) return report;
        throw e;
      });
    },
  });
  sso = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl: base }, { verifier: { refreshIntervalMs: 0 }, cardAgentUrl: agent.url });
  app.use("/sso", sso.router);
  rpServer = http.createServer((req, res) => {
    callbacks.push(`${rpBase}${req.url}`);
    res.writeHead(200, { "Content-Type": "text/plain" }).end("relying party callback");
  });
  await new Promise<void>((r) => rpServer.listen(0, "127.0.0.1", () => r()));
  rpBase = `http://127.0.0.1:${(rpServer.address() as { port: number }).port}`;
  for (const name of ["emr", "lab"]) {
    const redirect = `${rpBase}/${name}/cb`;
    const { secret } = await registerClient(ia.ctx.db, { clientId: name, name: `${name.toUpperCase()} 電子カルテ`, redirectUris: [redirect], postLogoutRedirectUris: [], allowedHcRoles: [], accountMapping: "pairwise" }, { actor: "test-admin", role: "admin" });
    rp[name] = { id: name, secret, redirect };
  }
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await agent?.close();
  rpServer?.closeAllConnections();
  await new Promise((r) => rpServer?.close(r));
  await sso?.close();
  httpServer?.closeAllConnections();
  await new Promise((r) => httpServer?.close(r));
  await ia?.cleanup();
});

const agentFetch = (path: string, origin: string | undefined, init: RequestInit = {}) =>
  fetch(`${agent.url}${path}`, { ...init, headers: { ...(origin ? { Origin: origin } : {}), ...(init.headers as Record<string, string> | undefined) } });
const replaceLine = (text: string, field: string, value: string) => text.replace(new RegExp(`^${field}=.*$`, "m"), `${field}=${value}`);

describe("card agent (hpki card agent) and the SSO login page", { timeout: 240_000 }, () => {
  it("answers only pages of the configured SSO origin (CORS), preflight included", async () => {
    const ok = await agentFetch("/v1/status", base);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(base);
    expect(await ok.json()).toEqual({ agent: "hpki-card-agent", version: 1, ssoOrigin: base });
    for (const origin of ["http://evil.test", "http://127.0.0.1:1", "null", undefined]) {
      const r = await agentFetch("/v1/status", origin);
      expect(r.status).toBe(403);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
    const evilPreflight = await agentFetch("/v1/sign", "http://evil.test", { method: "OPTIONS", headers: { "Access-Control-Request-Method": "POST" } });
    expect(evilPreflight.status).toBe(403);
    expect(evilPreflight.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await agentFetch("/v1/sign", base, { method: "OPTIONS", headers: { "Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(base);
    expect(preflight.headers.get("access-control-allow-private-network")).toBe("true");
    // A foreign page cannot make the card sign, even with a genuine challenge.
    const s = await startLogin(sso.issuer, rp.emr);
    const before = signs;
    const evilSign = await agentFetch("/v1/sign", "http://evil.test", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ challenge: s.challenge }) });
    expect(evilSign.status).toBe(403);
    expect(signs).toBe(before);
    expect(said.some((l) => l.includes("http://evil.test"))).toBe(true);
  });

  it("signs only challenges of its SSO origin, and shows which service and origin ask", async () => {
    const s = await startLogin(sso.issuer, rp.emr);
    const before = signs;
    const relayed = replaceLine(s.challenge, "origin", "http://evil.test");
    const r = await agentFetch("/v1/sign", base, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ challenge: relayed }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toBe("challenge-invalid");
    expect(signs).toBe(before);

    said.length = 0;
    const good = await agentFetch("/v1/sign", base, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ challenge: s.challenge }) });
    expect(good.status).toBe(200);
    const signed = (await good.json()) as { challenge: string; certificate: string; signature: string; service: unknown };
    expect(signed.service).toEqual({ clientId: "emr", clientName: "EMR 電子カルテ", origin: base });
    expect(said.join("\n")).toContain("EMR 電子カルテ (emr)");
    expect(said.join("\n")).toContain(`SSO: ${base}`);
    const { service: _service, ...body } = signed;
    const done = await s.browser.request(s.submit, { body, json: true });
    expect(done.status, done.body).toBe(200);
  });

  it("the SSO center refuses a challenge signed for another origin or another client", async () => {
    const s = await startLogin(sso.issuer, rp.emr);
    const post = async (text: string) => s.browser.request(s.submit, { body: await signLoginChallenge(ia.ctx.cards, card.label, card.pin, text), json: true });
    // Signed by the genuine card, but for a challenge naming another origin (a relaying page) …
    const otherOrigin = await post(replaceLine(s.challenge, "origin", "https://evil.example"));
    expect(otherOrigin.status).toBe(403);
    expect(otherOrigin.json).toMatchObject({ error: "challenge-invalid" });
    // … or another service (relayed from the login of "lab" to "emr", or relabelled).
    const otherClient = await post(replaceLine(replaceLine(s.challenge, "client_id", "lab"), "client_name", "LAB 電子カルテ"));
    expect(otherClient.status).toBe(403);
    expect(otherClient.json).toMatchObject({ error: "challenge-invalid" });
    const lab = await startLogin(sso.issuer, rp.lab);
    const relayedFromLab = await post(lab.challenge);
    expect(relayedFromLab.status).toBe(403);
    expect(relayedFromLab.json).toMatchObject({ error: "challenge-invalid" });
    const audits = await ia.ctx.db("audit_log").where({ action: "sso.login-refused" }).select("details");
    const details = audits.map((a) => String((typeof a.details === "string" ? JSON.parse(a.details) : a.details).detail));
    expect(details.some((d) => d.includes("another origin"))).toBe(true);
    expect(details.some((d) => d.includes("another client"))).toBe(true);
    // The genuine challenge, untouched, still logs in (the refused attempts did not consume it).
    const genuine = await post(s.challenge);
    expect(genuine.status, genuine.body).toBe(200);
  });

  it("headless Chromium logs in through the agent; the relying party verifies the ID token", async () => {
    const config = await rpConfig(sso.issuer, rp.emr);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: rp.emr.redirect, scope: "openid hcrole", state, nonce, ui_locales: "ja",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url.toString());
    await page.waitForSelector("#agent-ready:not([hidden])");
    expect(await page.isHidden("#agent-missing")).toBe(true);
    await page.screenshot({ path: artifact("sso-card-agent-login.png") });
    said.length = 0;
    await Promise.all([page.waitForURL(`${rp.emr.redirect}**`), page.click("#agent-login")]);
    // The redirect itself, not a later request of the page (Chromium asks the RP for /favicon.ico).
    const callback = callbacks.filter((u) => u.startsWith(`${rp.emr.redirect}?`)).at(-1);
    expect(said.join("\n")).toContain("EMR 電子カルテ (emr)");
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback!), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    const claims = tokens.claims()!;
    expect(claims.acr).toBe("urn:hpki-ca:acr:card-pin");
    expect(claims.amr).toEqual(["hwk", "mfa", "pin", "sc"]);
    expect(claims.hcRole).toBe("Medical Doctor");
    await context.close();
  });

  it("a scope beyond the defaults: Chromium shows the Japanese consent page with the service and the scope, and approval reaches the service", async () => {
    const config = await rpConfig(sso.issuer, rp.lab);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: rp.lab.redirect, scope: "openid hcrole subscriber", state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const context = await browser.newContext({ locale: "ja-JP" });
    const page = await context.newPage();
    await page.goto(url.toString());
    await page.waitForSelector("#agent-ready:not([hidden])");
    await Promise.all([page.waitForSelector('button[value="approve"]'), page.click("#agent-login")]);
    const text = (await page.textContent("body"))!;
    expect(text).toContain("LAB 電子カルテ");
    expect(text).toContain("subscriber");
    // Only the scope beyond the defaults is asked (hcrole is a default).
    expect(await page.locator("li code").allTextContents()).toEqual(["subscriber"]);
    expect(await page.locator(".consent-where dd").allTextContents()).toEqual([base, new URL(rp.lab.redirect).origin]);
    await page.screenshot({ path: artifact("sso-consent.png"), fullPage: true });
    await Promise.all([page.waitForURL(`${rp.lab.redirect}**`), page.click('button[value="approve"]')]);
    const callback = callbacks.filter((u) => u.startsWith(`${rp.lab.redirect}?`)).at(-1);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback!), { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()!.subscriberId).toBeTruthy();
    await context.close();
  });

  it("where no agent answers, the page says (Japanese and English) how to start one; the paste form stays", async () => {
    // A second SSO front on the same database whose page points at a port where nothing listens.
    const app = express();
    const lone = http.createServer(app);
    await new Promise<void>((r) => lone.listen(0, "127.0.0.1", () => r()));
    const loneBase = `http://127.0.0.1:${(lone.address() as { port: number }).port}`;
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const deadAgent = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise((r) => closed.close(r));
    const other = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl: loneBase }, { verifier: { refreshIntervalMs: 0 }, cardAgentUrl: deadAgent });
    app.use("/sso", other.router);
    try {
      const config = await rpConfig(other.issuer, rp.emr);
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: rp.emr.redirect, scope: "openid", state: oidc.randomState(),
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
      });
      const page = await browser.newPage();
      await page.goto(url.toString());
      await page.waitForSelector("#agent-missing:not([hidden])");
      const text = await page.textContent("#agent-missing");
      expect(text).toContain("カードエージェントが応答しません");
      expect(text).toContain("No card agent answers");
      expect(text).toContain(`hpki card agent --card <card-label> --sso-origin ${loneBase}`);
      expect(await page.isVisible("textarea[name=response]")).toBe(true);
      await page.screenshot({ path: artifact("sso-card-agent-missing.png") });
      await page.close();
    } finally {
      await other.close();
      lone.closeAllConnections();
      await new Promise((r) => lone.close(r));
    }
  });
});
