/**
 * Issue 14 §7 over real HTTP with SoftHSM cards and openid-client as the relying party: the
 * consent page for scopes beyond a client's registered defaults (Japanese, English with
 * ui_locales), approval remembered per (person, client, scopes) across logins, a refusal that
 * reaches the relying party as access_denied with its state, the consent form's CSRF check; and
 * JWT access tokens (RFC 9068, typ at+jwt) for a client registered for them, verified with jose
 * against the provider's JWKS.
 */
import * as jose from "jose";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerClient, updateClient } from "../../src/sso/clients.ts";
import type { SsoServer } from "../../src/sso/server.ts";
import { listenSso, type ListeningSso } from "../helpers/sso-listen.ts";
import { waitFor } from "../helpers/wait.ts";
import { TestBrowser } from "../helpers/browser.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { cardLogin, decideConsent, finishLogin, followApproving, rpConfig, startLogin, type ConsentPage, type StartedLogin, type TestRp } from "../helpers/sso-login.ts";

const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };
const EXTRA = "openid hcrole subscriber offline_access";
const API = "https://emr.example.jp/api";

let ia: TestIa;
let sso: SsoServer;
let listening: ListeningSso | undefined;
let doctor: { label: string; pin: string };
let nurse: { label: string; pin: string };
/** The doctor's first login at emr (consent approved): the browser with the session, and the tokens. */
let approvedAt: { s: StartedLogin; refreshToken: string } | undefined;
const rp = (id: string): TestRp => ({ id, secret: "", redirect: `http://rp-${id}.test/cb` });
const emr = rp("emr");
const lab = rp("lab");
const trusted = rp("trusted");
const jwtRp = rp("jwt-rp");

const register = async (c: TestRp, extra: Record<string, unknown> = {}) => {
  c.secret = (await registerClient(ia.ctx.db, { clientId: c.id, name: `${c.id} 電子カルテ`, redirectUris: [c.redirect], allowedHcRoles: [], accountMapping: "pairwise", ...extra }, admin)).secret;
};
const auditCount = async (action: string) => Number((await ia.ctx.db("audit_log").where({ action }).count("* as n"))[0].n);

/** Logs in with `card` after startLogin; returns where the browser was sent next. */
async function login(s: StartedLogin, card: { label: string; pin: string }): Promise<string> {
  const r = await cardLogin(ia.ctx.cards, s, card);
  expect(r.status, r.body).toBe(200);
  return (r.json as { redirectTo: string }).redirectTo;
}

/** Follows `url` and expects the consent page; returns it (JSON) and its URL. */
async function consentPage(browser: TestBrowser, url: string, c: TestRp): Promise<{ page: ConsentPage; url: string }> {
  const { last, stoppedAt } = await browser.follow(url, c.redirect);
  expect(stoppedAt, "a consent page, not straight back to the service").toBeUndefined();
  expect(last.url).toContain(`${sso.issuer}/interaction/`);
  const page = (await browser.request(last.url, { json: true })).json as ConsentPage;
  expect(page.consent).toBeDefined();
  return { page, url: last.url };
}

beforeAll(async () => {
  ia = await openTestIa("sso-consent");
  await runDemoCeremony(ia.ctx, by);
  doctor = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "CNS000001", name: { latin: "Taro Yamada", kanji: "山田　太郎" } }, by);
  nurse = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "CNS000002", name: { latin: "Hanako Sato", kanji: "佐藤　花子" } }, by);
  listening = await listenSso(ia.ctx);
  sso = listening.sso;
  await register(emr);
  await register(lab);
  await register(trusted, { defaultScopes: ["openid", "hcrole", "subscriber", "offline_access"] });
  await register(jwtRp, { accessTokenFormat: "jwt", accessTokenAudience: API, idTokenAlg: "ES256" });
}, 240_000);

afterAll(async () => {
  await listening?.close();
  await ia?.cleanup();
});

describe("consent for scopes beyond a client's defaults", { timeout: 240_000 }, () => {
  it("shows the client and the extra scopes in Japanese; approval grants them and is remembered across logins", async () => {
    const s = await startLogin(sso.issuer, emr, undefined, EXTRA);
    const { page, url } = await consentPage(s.browser, await login(s, doctor), emr);
    // Only what is beyond the defaults (openid, profile, hcrole, organization) is asked.
    expect(page.consent).toMatchObject({ clientId: "emr", clientName: "emr 電子カルテ", ssoOrigin: new URL(sso.issuer).origin, returnsTo: new URL(emr.redirect).origin });
    expect(page.consent.scopes.map((x) => x.scope)).toEqual(["subscriber", "offline_access"]);
    const html = await s.browser.request(url);
    expect(html.body).toContain("emr 電子カルテ");
    expect(html.body).toContain("HPKI証明書の加入者IDと発行元");
    expect(html.body).toContain("許可する");
    expect(html.body).toContain("許可しない");
    // Which SSO center asks, and where the information goes.
    expect(html.body).toContain(`<code>${new URL(sso.issuer).origin}</code>`);
    expect(html.body).toContain(`許可した情報の送り先（サービスのアドレス）</dt><dd><code>${new URL(emr.redirect).origin}</code>`);
    // A decision without the form's CSRF token is refused and changes nothing.
    const forged = await s.browser.request(page.decide, { body: { decision: "approve", csrf: "forged" }, json: true });
    expect(forged.status).toBe(403);
    expect(await auditCount("sso.consent-granted")).toBe(0);

    const { stoppedAt } = await s.browser.follow(await decideConsent(s.browser, page, "approve"), emr.redirect);
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.claims()!.subscriberId).toBe("CNS000001");
    expect(tokens.refresh_token).toBeTruthy();
    approvedAt = { s, refreshToken: tokens.refresh_token! };
    expect(await auditCount("sso.consent-granted")).toBe(1);
    const row = await ia.ctx.db("sso_consents").where({ client_id: "emr" }).first();
    expect(row.scopes).toEqual(["subscriber", "offline_access"]);

    // A new login (another browser, no session) with the same scopes: no question.
    const again = await startLogin(sso.issuer, emr, undefined, EXTRA);
    const back = await again.browser.follow(await login(again, doctor), emr.redirect);
    expect(back.stoppedAt, "remembered consent: straight back").toBeDefined();
    expect((await oidc.authorizationCodeGrant(again.config, new URL(back.stoppedAt!), { pkceCodeVerifier: again.verifier, expectedState: again.state })).claims()!.subscriberId).toBe("CNS000001");
    // Another person is asked for herself.
    const other = await startLogin(sso.issuer, emr, undefined, EXTRA);
    await consentPage(other.browser, await login(other, nurse), emr);
  });

  it("the page follows ui_locales (English) and a refusal reaches the service as access_denied with its state", async () => {
    const s = await startLogin(sso.issuer, lab, undefined, EXTRA);
    // ui_locales on the authorization request (OIDC Core §3.1.2.1).
    const u = new URL(oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: lab.redirect, scope: "openid subscriber", state: s.state, ui_locales: "en-US ja",
      code_challenge: await oidc.calculatePKCECodeChallenge(s.verifier), code_challenge_method: "S256",
    }));
    const b = new TestBrowser();
    const toLogin = await b.follow(u.toString(), `${sso.issuer}/interaction/`);
    const j = (await b.request(toLogin.stoppedAt!, { json: true })).json as { challenge: string; submit: string };
    const redirectTo = await login({ ...s, browser: b, challenge: j.challenge, submit: j.submit }, doctor);
    const { page, url } = await consentPage(b, redirectTo, lab);
    expect(page.consent.scopes.map((x) => x.scope)).toEqual(["subscriber"]);
    const html = await b.request(url);
    expect(html.body).toContain('<html lang="en">');
    expect(html.body).toContain("The subscriber id and issuer of your HPKI certificate");
    expect(html.body).toContain("Do not allow");

    const deniedBefore = await auditCount("sso.consent-denied");
    // The person presses the page's own form button (form post with the page's CSRF token).
    const action = /<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrf" value="([^"]+)">/.exec(html.body)!;
    const pressed = await b.request(action[1], { body: new URLSearchParams({ csrf: action[2], decision: "deny" }) });
    expect(pressed.status).toBe(303);
    const back = await b.follow(new URL(pressed.location!, action[1]).toString(), lab.redirect);
    const cb = new URL(back.stoppedAt!);
    expect(cb.searchParams.get("error")).toBe("access_denied");
    expect(cb.searchParams.get("state")).toBe(s.state);
    expect(cb.searchParams.get("error_description")).toBe("The person did not allow the information or rights the service asked for.");
    await expect(oidc.authorizationCodeGrant(s.config, cb, { pkceCodeVerifier: s.verifier, expectedState: s.state })).rejects.toMatchObject({ error: "access_denied" });
    expect(await auditCount("sso.consent-denied")).toBe(deniedBefore + 1);
    expect(await ia.ctx.db("sso_consents").where({ client_id: "lab" }).first()).toBeUndefined();
  });

  it("a login asking only default scopes is granted with the login: one redirect from the card to the service", async () => {
    // As a service asks (startLogin adds prompt=consent, which always shows the consent step).
    const browser = new TestBrowser();
    const config = await rpConfig(sso.issuer, lab);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: lab.redirect, scope: "openid profile hcrole", state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const { stoppedAt } = await browser.follow(url.toString(), `${sso.issuer}/interaction/`);
    const page = (await browser.request(stoppedAt!, { json: true })).json as { challenge: string; submit: string };
    const s: StartedLogin = { browser, config, verifier, state, interactionUrl: stoppedAt!, challenge: page.challenge, submit: page.submit, tlsLogin: "" };
    const resumed = await s.browser.request(await login(s, nurse));
    expect(resumed.status).toBe(303);
    expect(resumed.location, "no consent interaction in between").toMatch(new RegExp(`^${lab.redirect}\\?`));
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(resumed.location!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.claims()).toMatchObject({ hcRole: "Medical Doctor", name: "Hanako Sato" });
    // Nothing was remembered as approved: the defaults need no approval.
    expect(await ia.ctx.db("sso_consents").where({ client_id: lab.id })).toHaveLength(0);
  });

  it("a client whose registered defaults include subscriber and offline_access is not asked; the defaults can be updated", async () => {
    const s = await startLogin(sso.issuer, trusted, undefined, EXTRA);
    const back = await s.browser.follow(await login(s, nurse), trusted.redirect);
    expect(back.stoppedAt, "granted silently").toBeDefined();
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(back.stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.claims()!.subscriberId).toBe("CNS000002");
    expect(tokens.refresh_token).toBeTruthy();
    // Back to the center's defaults: the next new person is asked.
    const updated = await updateClient(ia.ctx.db, trusted.id, { name: "trusted 電子カルテ", redirectUris: [trusted.redirect], allowedHcRoles: [], accountMapping: "pairwise", defaultScopes: null }, admin);
    expect(updated.defaultScopes).toEqual(["openid", "profile", "hcrole", "organization"]);
    // The SSO process applies the change when its NOTIFY arrives (after the commit).
    await waitFor(async () => !(await sso.clients.get(trusted.id))!.defaultScopes.includes("subscriber"), "the SSO process sees the new defaults");
    const s2 = await startLogin(sso.issuer, trusted, undefined, EXTRA);
    const { page } = await consentPage(s2.browser, await login(s2, doctor), trusted);
    expect(page.consent.scopes.map((x) => x.scope)).toEqual(["subscriber", "offline_access"]);
    const approved = await followApproving(s2.browser, await decideConsent(s2.browser, page, "approve"), trusted.redirect);
    expect(approved.stoppedAt).toBeDefined();
  });
});

describe("claims requested one by one (the claims parameter, OIDC Core §5.5)", { timeout: 240_000 }, () => {
  const claimsRp = rp("claims-rp");
  const wantsSubscriberId = { claims: JSON.stringify({ id_token: { subscriberId: { essential: true } }, userinfo: { subscriberId: null } }) };

  it("a claim of a scope beyond the defaults asks for that scope; refused, nothing is released", async () => {
    await register(claimsRp);
    const s = await startLogin(sso.issuer, claimsRp, undefined, "openid", wantsSubscriberId);
    const { page } = await consentPage(s.browser, await login(s, doctor), claimsRp);
    expect(page.consent.scopes.map((x) => x.scope)).toEqual(["subscriber"]);
    const back = await s.browser.follow(await decideConsent(s.browser, page, "deny"), claimsRp.redirect);
    expect(new URL(back.stoppedAt!).searchParams.get("error")).toBe("access_denied");
    // Logged in now, but prompt=none cannot ask for the claim either: consent_required, no code.
    const silent = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: claimsRp.redirect, scope: "openid", state: "silent", prompt: "none", ...wantsSubscriberId,
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const silentBack = new URL((await s.browser.follow(silent.toString(), claimsRp.redirect)).stoppedAt!);
    expect(silentBack.searchParams.get("error")).toBe("consent_required");
    expect(silentBack.searchParams.get("code")).toBeNull();
  });

  it("a claim of a default scope (hcRole) asks nothing", async () => {
    const s = await startLogin(sso.issuer, claimsRp, undefined, "openid", { claims: JSON.stringify({ id_token: { hcRole: null } }) });
    const back = await s.browser.follow(await login(s, nurse), claimsRp.redirect);
    expect(back.stoppedAt, "no consent page").toBeDefined();
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(back.stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.claims()!.hcRole).toBe("Medical Doctor");
    expect(tokens.claims()!.subscriberId).toBeUndefined();
  });

  it("approved, the claim is in the ID token and userinfo", async () => {
    const s = await startLogin(sso.issuer, claimsRp, undefined, "openid", wantsSubscriberId);
    const { page } = await consentPage(s.browser, await login(s, doctor), claimsRp);
    const back = await s.browser.follow(await decideConsent(s.browser, page, "approve"), claimsRp.redirect);
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(back.stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.claims()!.subscriberId).toBe("CNS000001");
    const info = await oidc.fetchUserInfo(s.config, tokens.access_token, tokens.claims()!.sub);
    expect(info.subscriberId).toBe("CNS000001");
  });
});

describe("withdrawing consent in the portal", { timeout: 240_000 }, () => {
  it("lists the approved scopes; withdrawing ends the service's refresh token and the next request asks again", async () => {
    const { s, refreshToken } = approvedAt!;
    const portalUrl = `${sso.issuer}/portal`;
    const portal = await s.browser.request(portalUrl);
    expect(portal.body).toContain("同意したスコープ");
    expect(portal.body).toContain("<code>subscriber</code>");
    const form = /<form method="post" action="([^"]+\/portal\/consents\/remove)"><input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="clientId" value="emr">/.exec(portal.body);
    expect(form, portal.body).not.toBeNull();
    // Without the CSRF token: refused, nothing withdrawn.
    expect((await s.browser.request(form![1], { body: new URLSearchParams({ clientId: "emr", csrf: "forged" }) })).status).toBe(403);
    const done = await s.browser.request(form![1], { body: new URLSearchParams({ clientId: "emr", csrf: form![2] }) });
    expect(done.status).toBe(303);
    expect(await auditCount("sso.consent-withdrawn")).toBe(1);
    const person = await ia.ctx.db("sso_persons").where({ subscriber_id: "CNS000001" }).first("id");
    expect(await ia.ctx.db("sso_consents").where({ person_id: person.id, client_id: "emr" }).first()).toBeUndefined();
    // The refresh token that offline_access gave is gone (the grant ended).
    await expect(oidc.refreshTokenGrant(s.config, refreshToken)).rejects.toMatchObject({ error: "invalid_grant" });
    // prompt=none cannot ask: consent_required (OIDC Core §3.1.2.6) with the state.
    const silentState = oidc.randomState();
    const silent = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: emr.redirect, scope: "openid subscriber", state: silentState, prompt: "none",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const silentBack = new URL((await s.browser.follow(silent.toString(), emr.redirect)).stoppedAt!);
    expect(silentBack.searchParams.get("error")).toBe("consent_required");
    expect(silentBack.searchParams.get("state")).toBe(silentState);
    // Same session, same scopes: the consent page again.
    const again = oidc.buildAuthorizationUrl(s.config, {
      redirect_uri: emr.redirect, scope: EXTRA, state: oidc.randomState(), prompt: "consent",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256",
    });
    const { page } = await consentPage(s.browser, again.toString(), emr);
    expect(page.consent.scopes.map((x) => x.scope)).toEqual(["subscriber", "offline_access"]);
  });
});

describe("JWT access tokens (RFC 9068)", { timeout: 240_000 }, () => {
  it("a client registered for them gets an at+jwt access token for its audience that its API verifies with the JWKS", async () => {
    const s = await startLogin(sso.issuer, jwtRp, undefined, "openid hcrole offline_access");
    s.config = await oidc.discovery(new URL(sso.issuer), jwtRp.id, { client_secret: jwtRp.secret, id_token_signed_response_alg: "ES256" }, undefined, { execute: [oidc.allowInsecureRequests] });
    const tokens = await finishLogin(s, jwtRp, await login(s, doctor));
    const jwks = jose.createRemoteJWKSet(new URL(`${sso.issuer}/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, { issuer: sso.issuer, audience: API, typ: "at+jwt" });
    expect(protectedHeader.alg).toBe("ES256");
    // RFC 9068 §2.2: iss, exp, aud, sub (the same pairwise sub as the ID token), client_id, iat, jti.
    expect(payload).toMatchObject({ sub: tokens.claims()!.sub, client_id: "jwt-rp" });
    expect(payload.jti).toBeTruthy();
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(String(payload.scope).split(" ")).toContain("hcrole");
    // Introspection (RFC 7662) answers unsupported_token_type (RFC 7009 §2.2.1 code) for a JWT: the API verifies it itself.
    await expect(oidc.tokenIntrospection(s.config, tokens.access_token)).rejects.toMatchObject({ error: "unsupported_token_type" });
    // Meant for the service's API, not for userinfo (the claims are in the ID token).
    await expect(oidc.fetchUserInfo(s.config, tokens.access_token, tokens.claims()!.sub)).rejects.toThrow();
    // A refresh gives a new JWT for the same audience.
    const refreshed = await oidc.refreshTokenGrant(s.config, tokens.refresh_token!);
    expect((await jose.jwtVerify(refreshed.access_token, jwks, { issuer: sso.issuer, audience: API, typ: "at+jwt" })).payload.sub).toBe(payload.sub);
    // Another audience is refused (RFC 8707 §2: invalid_target).
    await expect(oidc.refreshTokenGrant(s.config, refreshed.refresh_token!, { resource: "https://other.example.jp/api" })).rejects.toMatchObject({ error: "invalid_target" });
  });

  it("an opaque client's access token stays opaque and works at userinfo", async () => {
    const s = await startLogin(sso.issuer, trusted, undefined, "openid hcrole");
    const back = await followApproving(s.browser, await login(s, nurse), trusted.redirect);
    const tokens = await oidc.authorizationCodeGrant(s.config, new URL(back.stoppedAt!), { pkceCodeVerifier: s.verifier, expectedState: s.state });
    expect(tokens.access_token.split(".")).toHaveLength(1);
    expect((await oidc.fetchUserInfo(s.config, tokens.access_token, tokens.claims()!.sub)).hcRole).toBe("Medical Doctor");
  });

  it("registration refuses JWT access tokens without an audience", async () => {
    await expect(register(rp("no-aud"), { accessTokenFormat: "jwt" })).rejects.toThrow(/audience/);
  });
});
