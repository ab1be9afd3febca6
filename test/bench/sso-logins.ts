/**
 * Full SSO logins per second (issue 14, Benchmark), for `npm run bench -- sso --full-logins N`.
 *
 * The SSO center runs as it does in production: `hpki serve --role sso [--workers W]` in its own
 * processes, on the bench's database (with the revoked serials already in it) and embedded SoftHSM.
 * This process is the load: `concurrency` people at their workstations, each with their own SoftHSM
 * card, log in one after the other through a relying party — openid-client builds the
 * authorization request (code + PKCE), the browser follows it to the login interaction, the card
 * signs the challenge, the browser posts it and follows the redirects to the callback, and
 * openid-client redeems the code and verifies the ID token against the JWKS.
 *
 * CPU is read per side (procfs, proc-cpu.ts): the SSO processes, the PostgreSQL server, and this
 * process (relying party, browsers and cards: the load, which in real life runs on other machines).
 * The server's cost per login is SSO + PostgreSQL; `capacity` is the logins per second the
 * machine's cores give at that cost. The wall-clock rate is lower here because the load shares the
 * same cores.
 */
import * as oidc from "openid-client";
import type { IaContext } from "../../src/ia/context.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { TestBrowser } from "../helpers/browser.ts";
import { childEnv, serveSso } from "../helpers/sso-serve.ts";
import { cpuMsBetween, parentPid, treeCpuMs } from "./proc-cpu.ts";

/** What the full-login run measured. */
export interface FullLoginResult {
  logins: number;
  concurrency: number;
  ssoProcesses: number;
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU ms per login in the SSO processes. */
  ssoCpuMs: number;
  /** CPU ms per login in the PostgreSQL server (undefined when it runs on another machine). */
  postgresCpuMs: number | undefined;
  /** CPU ms per login in this process: relying party, browsers, cards. */
  loadCpuMs: number;
  indexEntries: number;
}

export interface FullLoginOptions {
  count: number;
  concurrency: number;
  warmup: number;
  /** SSO processes (`hpki serve --workers`). */
  workers: number;
  /** The bench's $HPKI_HOME and database URL, for the SSO child. */
  home: string;
  databaseUrl: string;
  indexEntries: number;
}

/** Runs `count` full logins (after `warmup`), `concurrency` at a time, one card per lane. */
export async function benchFullLogins(ctx: IaContext, cards: { label: string; pin: string }[], o: FullLoginOptions): Promise<FullLoginResult> {
  if (cards.length < o.concurrency) throw new Error(`${o.concurrency} lanes need as many cards (have ${cards.length})`);
  const redirect = "http://rp.bench/cb";
  const { secret } = await registerClient(ctx.db, { clientId: "bench-rp", name: "Bench RP", redirectUris: [redirect], allowedHcRoles: ["Medical Doctor"], accountMapping: "pairwise" }, { actor: "bench", role: "admin" });
  const backend = Number((await ctx.db.raw("SELECT pg_backend_pid() AS pid")).rows[0].pid);
  const postmaster = parentPid(backend);
  const sso = await serveSso(childEnv(o.home, o.databaseUrl), "sso", 0, o.workers);
  try {
    const issuer = `${sso.url}/sso`;
    const config = await oidc.discovery(new URL(issuer), "bench-rp", secret, undefined, { execute: [oidc.allowInsecureRequests] });

    const loginOnce = async (card: { label: string; pin: string }): Promise<void> => {
      const browser = new TestBrowser();
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirect, scope: "openid hcrole", state, nonce, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      });
      const toLogin = await browser.follow(url.toString(), `${issuer}/interaction/`);
      if (!toLogin.stoppedAt) throw new Error(`no login interaction: ${toLogin.last.status} ${toLogin.last.body.slice(0, 300)}`);
      const page = (await browser.request(toLogin.stoppedAt, { json: true })).json as { challenge: string; submit: string };
      const signed = await signLoginChallenge(ctx.cards, card.label, card.pin, page.challenge);
      const done = await browser.request(page.submit, { body: signed, json: true });
      if (done.status !== 200) throw new Error(`login refused: ${done.status} ${done.body.slice(0, 300)}`);
      const back = await browser.follow((done.json as { redirectTo: string }).redirectTo, redirect);
      if (!back.stoppedAt) throw new Error(`no callback: ${back.last.status} ${back.last.body.slice(0, 300)}`);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
      if (tokens.claims()?.acr !== "urn:hpki-ca:acr:card-pin") throw new Error("ID token without the card acr");
    };

    // Warm-up in every lane, so each SSO worker has compiled its paths.
    await Promise.all(cards.slice(0, o.concurrency).map(async (card) => {
      for (let i = 0; i < Math.ceil(o.warmup / o.concurrency); i++) await loginOnce(card);
    }));
    const lat: number[] = [];
    let next = 0;
    const before = { load: process.cpuUsage(), sso: treeCpuMs(sso.pid), pg: postmaster ? treeCpuMs(postmaster) : undefined };
    const start = performance.now();
    await Promise.all(cards.slice(0, o.concurrency).map(async (card) => {
      while (next < o.count) {
        next++;
        const a = performance.now();
        await loginOnce(card);
        lat.push(performance.now() - a);
      }
    }));
    const seconds = (performance.now() - start) / 1000;
    const load = process.cpuUsage(before.load);
    const ssoMs = cpuMsBetween(before.sso, treeCpuMs(sso.pid));
    const pgMs = postmaster && before.pg ? cpuMsBetween(before.pg, treeCpuMs(postmaster)) : undefined;
    lat.sort((x, y) => x - y);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
    const n = lat.length;
    return {
      logins: n, concurrency: o.concurrency, ssoProcesses: o.workers, loginsPerSecond: n / seconds, p50Ms: pct(0.5), p99Ms: pct(0.99),
      ssoCpuMs: ssoMs / n, postgresCpuMs: pgMs === undefined ? undefined : pgMs / n, loadCpuMs: (load.user + load.system) / 1000 / n, indexEntries: o.indexEntries,
    };
  } finally {
    await sso.stop();
  }
}
