/**
 * Full SSO logins per second (issue 14, Benchmark), for `npm run bench -- sso --full-logins N`:
 * a real SSO role (createSsoServer, as `hpki serve --role sso` mounts it) on an HTTP listener with
 * the revocation index already holding the revoked serials; each login is the whole flow a relying
 * party and a browser make — openid-client builds the authorization request (code + PKCE), the
 * browser follows it to the login interaction, the SoftHSM card signs the challenge (one card
 * reader: signatures one at a time), the browser posts it and follows consent to the callback, and
 * openid-client redeems the code and verifies the ID token against the JWKS. `concurrency` logins
 * run at once. Everything (SSO, relying party, browser, card) shares this one Node process, so the
 * CPU per login is the whole system's.
 */
import http from "node:http";
import express from "express";
import * as oidc from "openid-client";
import type { IaContext } from "../../src/ia/context.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { createSsoServer } from "../../src/sso/server.ts";
import { TestBrowser } from "../helpers/browser.ts";

/** What the full-login run measured. */
export interface FullLoginResult {
  logins: number;
  concurrency: number;
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerLogin: number;
  indexEntries: number;
}

/** Runs `count` full logins (after `warmup`) with `card`, `concurrency` at a time. */
export async function benchFullLogins(ctx: IaContext, card: { label: string; pin: string }, o: { count: number; concurrency: number; warmup: number }): Promise<FullLoginResult> {
  const app = express();
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const sso = await createSsoServer({ cfg: ctx.cfg, db: ctx.db, publicUrl: base }, { verifier: { refreshIntervalMs: 0, maxStalenessMs: 3600_000 } });
  app.use("/sso", sso.router);
  try {
    const redirect = "http://rp.bench/cb";
    const { secret } = await registerClient(ctx.db, { clientId: "bench-rp", name: "Bench RP", redirectUris: [redirect], allowedHcRoles: ["Medical Doctor"], accountMapping: "pairwise" }, { actor: "bench", role: "admin" });
    const config = await oidc.discovery(new URL(sso.issuer), "bench-rp", secret, undefined, { execute: [oidc.allowInsecureRequests] });
    let cardQueue: Promise<unknown> = Promise.resolve();
    const signOnCard = (text: string) => {
      const p = cardQueue.then(() => signLoginChallenge(ctx.cards, card.label, card.pin, text));
      cardQueue = p.catch(() => undefined);
      return p;
    };

    const loginOnce = async (): Promise<void> => {
      const browser = new TestBrowser();
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirect, scope: "openid hcrole", state, nonce, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      });
      const toLogin = await browser.follow(url.toString(), `${sso.issuer}/interaction/`);
      if (!toLogin.stoppedAt) throw new Error(`no login interaction: ${toLogin.last.status} ${toLogin.last.body.slice(0, 300)}`);
      const page = (await browser.request(toLogin.stoppedAt, { json: true })).json as { challenge: string; submit: string };
      const signed = await signOnCard(page.challenge);
      const done = await browser.request(page.submit, { body: signed, json: true });
      if (done.status !== 200) throw new Error(`login refused: ${done.status} ${done.body.slice(0, 300)}`);
      const back = await browser.follow((done.json as { redirectTo: string }).redirectTo, redirect);
      if (!back.stoppedAt) throw new Error(`no callback: ${back.last.status} ${back.last.body.slice(0, 300)}`);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
      if (tokens.claims()?.acr !== "urn:hpki-ca:acr:card-pin") throw new Error("ID token without the card acr");
    };

    for (let i = 0; i < o.warmup; i++) await loginOnce();
    const lat: number[] = [];
    let next = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (next < o.count) {
        next++;
        const a = performance.now();
        await loginOnce();
        lat.push(performance.now() - a);
      }
    }));
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    lat.sort((x, y) => x - y);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
    return {
      logins: lat.length, concurrency: o.concurrency, loginsPerSecond: lat.length / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99),
      cpuMsPerLogin: (cpu.user + cpu.system) / 1000 / lat.length, indexEntries: sso.verifier.index.footprint().entries,
    };
  } finally {
    await sso.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}
