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
import { spawn } from "node:child_process";
import path from "node:path";
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

    const loginOnce = (card: { label: string; pin: string }) =>
      codeFlowLogin(config, issuer, (challenge) => signLoginChallenge(ctx.cards, card.label, card.pin, challenge), "urn:hpki-ca:acr:card-pin");
    const before = { load: process.cpuUsage(), sso: treeCpuMs(sso.pid), pg: postmaster ? treeCpuMs(postmaster) : undefined };
    const { lat, seconds } = await driveLanes(cards.slice(0, o.concurrency), o.count, o.warmup, loginOnce, () => {
      before.load = process.cpuUsage();
      before.sso = treeCpuMs(sso.pid);
      before.pg = postmaster ? treeCpuMs(postmaster) : undefined;
    });
    const load = process.cpuUsage(before.load);
    const ssoMs = cpuMsBetween(before.sso, treeCpuMs(sso.pid));
    const pgMs = postmaster && before.pg ? cpuMsBetween(before.pg, treeCpuMs(postmaster)) : undefined;
    const n = lat.length;
    return {
      logins: n, concurrency: o.concurrency, ssoProcesses: o.workers, loginsPerSecond: n / seconds, p50Ms: percentile(lat, 0.5), p99Ms: percentile(lat, 0.99),
      ssoCpuMs: ssoMs / n, postgresCpuMs: pgMs === undefined ? undefined : pgMs / n, loadCpuMs: (load.user + load.system) / 1000 / n, indexEntries: o.indexEntries,
    };
  } finally {
    await sso.stop();
  }
}

/** What the bare oidc-provider reference measured (oidc-floor-child.ts). */
export interface BareProviderResult {
  logins: number;
  loginsPerSecond: number;
  /** CPU ms per login of the provider's process. */
  cpuMs: number;
}

/**
 * The same code flow, `count` logins `concurrency` at a time, against oidc-provider alone
 * (oidc-floor-child.ts: in-memory storage, a login that is one POST): the library's own cost per
 * login on this machine, in this run.
 */
export async function benchBareProvider(count: number, concurrency: number, warmup: number): Promise<BareProviderResult> {
  const secret = "bench-floor-secret-bench-floor-secret";
  const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "oidc-floor-child.ts"), secret], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const { url, pid } = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve(JSON.parse(line));
      });
      child.on("exit", (code) => reject(new Error(`the oidc-provider reference exited (${code}) before listening`)));
    });
    const config = await oidc.discovery(new URL(url), "bench-rp", secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const lanes = Array.from({ length: concurrency }, (_, i) => i);
    let before = treeCpuMs(pid);
    const { lat, seconds } = await driveLanes(lanes, count, warmup, () => codeFlowLogin(config, url, async () => ({})), () => (before = treeCpuMs(pid)));
    return { logins: lat.length, loginsPerSecond: lat.length / seconds, cpuMs: cpuMsBetween(before, treeCpuMs(pid)) / lat.length };
  } finally {
    child.kill("SIGTERM");
  }
}

/**
 * One person's login through a relying party: openid-client builds the authorization request
 * (code + PKCE), the browser follows it to the login interaction, `sign` answers the page's
 * challenge (the card), the browser posts that and follows the redirects to the callback, and
 * openid-client redeems the code and verifies the ID token (with `acr` when given).
 * @throws when a step does not answer as a working login does, or the ID token lacks `acr`.
 */
async function codeFlowLogin(config: oidc.Configuration, issuer: string, sign: (challenge: string) => Promise<unknown>, acr?: string): Promise<void> {
  const redirect = "http://rp.bench/cb";
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
  const done = await browser.request(page.submit, { body: await sign(page.challenge), json: true });
  if (done.status !== 200) throw new Error(`login refused: ${done.status} ${done.body.slice(0, 300)}`);
  const back = await browser.follow((done.json as { redirectTo: string }).redirectTo, redirect);
  if (!back.stoppedAt) throw new Error(`no callback: ${back.last.status} ${back.last.body.slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  if (acr !== undefined && tokens.claims()?.acr !== acr) throw new Error(`ID token without acr ${acr}`);
}

/**
 * `warmup` logins spread over the lanes (every worker compiles its paths), then `measuring()` is
 * called and `count` logins run, each lane one login at a time.
 * @returns the latencies (ms, sorted) and the measured phase's wall seconds.
 */
async function driveLanes<L>(lanes: L[], count: number, warmup: number, once: (lane: L) => Promise<void>, measuring: () => void): Promise<{ lat: number[]; seconds: number }> {
  await Promise.all(lanes.map(async (lane) => {
    for (let i = 0; i < Math.ceil(warmup / lanes.length); i++) await once(lane);
  }));
  measuring();
  const lat: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(lanes.map(async (lane) => {
    while (next < count) {
      next++;
      const a = performance.now();
      await once(lane);
      lat.push(performance.now() - a);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  lat.sort((x, y) => x - y);
  return { lat, seconds };
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
