/**
 * Honest discovery (issue 14 §5) against the SSO center over real HTTP with a SoftHSM card:
 * private_key_jwt client authentication (RFC 7523 §2.2) with a registered JWK Set or a jwks_uri,
 * driven by openid-client with real client assertions; ES256 and PS256 ID tokens besides RS256;
 * client_secret_jwt is not advertised (only a hash of each secret is kept).
 */
import * as jose from "jose";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerClient } from "../../src/sso/clients.ts";
import type { SsoServer } from "../../src/sso/server.ts";
import { listenSso, type ListeningSso } from "../helpers/sso-listen.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { cardLogin, finishLogin, startLogin } from "../helpers/sso-login.ts";

const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };

let ia: TestIa;
let sso: SsoServer;
let listening: ListeningSso | undefined;
let base: string;
let card: { label: string; pin: string };
// The relying party's own key set, served at its jwks_uri.
let rpJwks: jose.JSONWebKeySet = { keys: [] };

beforeAll(async () => {
  ia = await openTestIa("sso-client-keys");
  await runDemoCeremony(ia.ctx, by);
  card = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "PKJ000001", name: { latin: "Taro Yamada", kanji: "山田　太郎" } }, by);
  listening = await listenSso(ia.ctx, (app) => void app.get("/rp/jwks.json", (_req, res) => void res.json(rpJwks)));
  ({ sso, base } = listening);
}, 240_000);

afterAll(async () => {
  await listening?.close();
  await ia?.cleanup();
});

/** A full card login of client `id` authenticating with `auth`; returns the ID token's header and the tokens. */
async function login(id: string, auth: oidc.ClientAuth, idTokenAlg: string) {
  const redirect = `http://rp-${id}.test/cb`;
  const s = await startLogin(sso.issuer, { id, secret: "unused", redirect }, undefined, "openid");
  s.config = await oidc.discovery(new URL(sso.issuer), id, { id_token_signed_response_alg: idTokenAlg }, auth, { execute: [oidc.allowInsecureRequests] });
  const r = await cardLogin(ia.ctx.cards, s, card);
  expect(r.status, r.body).toBe(200);
  const tokens = await finishLogin(s, { id, secret: "unused", redirect }, (r.json as { redirectTo: string }).redirectTo);
  return { header: jose.decodeProtectedHeader(tokens.id_token!), tokens };
}

const register = (clientId: string, extra: Record<string, unknown>) =>
  registerClient(ia.ctx.db, { clientId, name: clientId, redirectUris: [`http://rp-${clientId}.test/cb`], postLogoutRedirectUris: [], allowedHcRoles: [], accountMapping: "pairwise", ...extra }, admin);

describe("client keys: private_key_jwt, ES256 and PS256", { timeout: 240_000 }, () => {
  it("discovery advertises private_key_jwt and RS256/PS256/ES256, never client_secret_jwt", async () => {
    const meta = (await (await fetch(`${sso.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string[]>;
    expect(meta.token_endpoint_auth_methods_supported.sort()).toEqual(["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]);
    expect(meta.token_endpoint_auth_methods_supported).not.toContain("client_secret_jwt");
    expect(meta.id_token_signing_alg_values_supported.sort()).toEqual(["ES256", "PS256", "RS256"]);
  });

  it("a client with a registered JWK Set logs in with a signed assertion and gets ES256 ID tokens", async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair("ES256");
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: "emr-es-1", alg: "ES256", use: "sig" };
    const { secret } = await register("emr-es", { jwks: { keys: [jwk] }, idTokenAlg: "ES256" });
    const { header, tokens } = await login("emr-es", oidc.PrivateKeyJwt({ key: privateKey, kid: "emr-es-1" }), "ES256");
    expect(header.alg).toBe("ES256");
    expect(tokens.claims()!.acr).toBe("urn:hpki-ca:acr:card-pin");
    // The secret printed at registration does not authenticate at the token endpoints: only the key does.
    const introspect = (headers: Record<string, string>, body: Record<string, string>) =>
      fetch(`${sso.issuer}/token/introspection`, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams({ token: tokens.access_token, ...body }) });
    expect((await introspect({ Authorization: `Basic ${Buffer.from(`emr-es:${secret}`).toString("base64")}` }, {})).status).toBe(401);
    // An assertion signed by another key is refused.
    const { privateKey: other } = await jose.generateKeyPair("ES256");
    const forged = await new jose.SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "emr-es-1" }).setIssuer("emr-es").setSubject("emr-es")
      .setAudience(sso.issuer).setIssuedAt().setExpirationTime("1m").setJti(crypto.randomUUID()).sign(other);
    const assertion = { client_id: "emr-es", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" };
    const refused = await introspect({}, { ...assertion, client_assertion: forged });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe("invalid_client");
    const good = await new jose.SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "emr-es-1" }).setIssuer("emr-es").setSubject("emr-es")
      .setAudience(sso.issuer).setIssuedAt().setExpirationTime("1m").setJti(crypto.randomUUID()).sign(privateKey);
    const accepted = await introspect({}, { ...assertion, client_assertion: good });
    expect(accepted.status).toBe(200);
    expect(((await accepted.json()) as { active: boolean }).active).toBe(true);
  });

  it("a client with a jwks_uri authenticates with its RSA key and gets PS256 ID tokens", async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair("PS256");
    rpJwks = { keys: [{ ...(await jose.exportJWK(publicKey)), kid: "emr-ps-1", alg: "PS256", use: "sig" }] };
    await register("emr-ps", { jwksUri: `${base}/rp/jwks.json`, idTokenAlg: "PS256" });
    const { header } = await login("emr-ps", oidc.PrivateKeyJwt({ key: privateKey, kid: "emr-ps-1" }), "PS256");
    expect(header.alg).toBe("PS256");
    const jwks = (await (await fetch(`${sso.issuer}/jwks`)).json()) as { keys: { kid: string; alg: string }[] };
    expect(jwks.keys.find((k) => k.kid === header.kid)!.alg).toBe("PS256");
  });

  it("registration refuses private keys and both jwks and jwks_uri", async () => {
    const { privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
    await expect(register("bad-1", { jwks: { keys: [await jose.exportJWK(privateKey)] } })).rejects.toThrow(/public JWKs only/);
    await expect(register("bad-2", { jwks: rpJwks, jwksUri: `${base}/rp/jwks.json` })).rejects.toThrow(/not both/);
  });
});
