/**
 * A relying party's side of the SSO center in tests: a real openid-client configuration, the
 * browser following the authorization request to the login interaction, the card signing the
 * challenge (SoftHSM, key never leaves the card), and the code redeemed with PKCE.
 */
import * as oidc from "openid-client";
import { expect } from "vitest";
import type { CardStation } from "../../src/hsm/cards.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { TestBrowser, type Hop } from "./browser.ts";

/** A registered client as the test knows it. */
export interface TestRp {
  id: string;
  secret: string;
  redirect: string;
}

/** A login in progress: the browser is at the interaction, with its challenge. */
export interface StartedLogin {
  browser: TestBrowser;
  config: oidc.Configuration;
  verifier: string;
  state: string;
  interactionUrl: string;
  challenge: string;
  submit: string;
  tlsLogin: string;
}

/** Discovery of `issuer` as client `rp` (plain HTTP allowed: tests). */
export function rpConfig(issuer: string, rp: TestRp): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), rp.id, rp.secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** The RP builds the authorization URL (code + PKCE); the browser follows it to the login interaction. */
export async function startLogin(issuer: string, rp: TestRp, browser = new TestBrowser(), scope = "openid profile hcrole subscriber organization offline_access", extra: Record<string, string> = {}): Promise<StartedLogin> {
  const config = await rpConfig(issuer, rp);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: rp.redirect, scope, state, prompt: "consent",
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", ...extra,
  });
  const { last, stoppedAt } = await browser.follow(url.toString(), `${issuer}/interaction/`);
  expect(last.status, last.body.slice(0, 2000)).toBe(303);
  const interactionUrl = stoppedAt!;
  const page = await browser.request(interactionUrl, { json: true });
  const j = page.json as { challenge: string; submit: string; tlsLogin: string };
  return { browser, config, verifier, state, interactionUrl, challenge: j.challenge, submit: j.submit, tlsLogin: j.tlsLogin };
}

/** The card signs the interaction's challenge; the signed JSON is posted. */
export async function cardLogin(cards: CardStation, s: StartedLogin, card: { label: string; pin: string }): Promise<Hop> {
  const signed = await signLoginChallenge(cards, card.label, card.pin, s.challenge);
  return s.browser.request(s.submit, { body: signed, json: true });
}

/** The consent page as JSON (GET /interaction/:uid with Accept: application/json at a consent prompt). */
export interface ConsentPage {
  consent: { clientId: string; clientName: string; scopes: { scope: string; text: string }[]; ssoOrigin: string; returnsTo: string };
  decide: string;
  csrf: string;
}

/** The person's decision on a consent page; returns where the browser goes next. */
export async function decideConsent(browser: TestBrowser, page: ConsentPage, decision: "approve" | "deny"): Promise<string> {
  const r = await browser.request(page.decide, { body: { decision, csrf: page.csrf }, json: true });
  expect(r.status, r.body).toBe(200);
  return (r.json as { redirectTo: string }).redirectTo;
}

/**
 * Follows redirects from `url` to `stopAt` like TestBrowser.follow; a consent page on the way
 * (scopes beyond the client's defaults) is approved, like a person who clicks "allow".
 */
export async function followApproving(browser: TestBrowser, url: string, stopAt: string): Promise<{ last: Hop; stoppedAt?: string; consented?: ConsentPage }> {
  const first = await browser.follow(url, stopAt);
  if (first.stoppedAt || first.last.status !== 200 || !first.last.url.includes("/interaction/")) return first;
  const page = (await browser.request(first.last.url, { json: true })).json as ConsentPage | undefined;
  if (!page?.consent) return first;
  return { ...(await browser.follow(await decideConsent(browser, page, "approve"), stopAt)), consented: page };
}

/** After a successful login step, follows consent (approved) to the RP callback and redeems the code. */
export async function finishLogin(s: StartedLogin, rp: TestRp, redirectTo: string) {
  const { stoppedAt, last } = await followApproving(s.browser, redirectTo, rp.redirect);
  expect(stoppedAt, `${last.status} ${last.url} ${last.body.slice(0, 1500)}`).toBeDefined();
  return oidc.authorizationCodeGrant(s.config, new URL(stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
}

/**
 * An authorization in a browser that already holds a provider session (no card needed): follows
 * the request to the RP callback and redeems the code; returns the tokens.
 */
export async function authorizeWithSession(issuer: string, rp: TestRp, browser: TestBrowser, scope = "openid hcrole") {
  const config = await rpConfig(issuer, rp);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: rp.redirect, scope, state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256" });
  const { stoppedAt } = await browser.follow(url.toString(), rp.redirect);
  expect(stoppedAt, "redirected back to the RP without a login").toBeDefined();
  return oidc.authorizationCodeGrant(config, new URL(stoppedAt!), { pkceCodeVerifier: verifier, expectedState: state });
}
