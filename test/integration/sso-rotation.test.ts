/**
 * Rotation without cutting relying parties off (issue 14 §8), against the SSO center over real
 * HTTP with SoftHSM cards and the sealed keys: a rotated-in signing key is in the JWKS before it
 * signs; once it signs, the old key stays in the JWKS (ID tokens it signed still verify) until its
 * tokens expired; a rotated client secret keeps the previous one valid for the overlap only.
 */
import * as jose from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENTS_NOTIFY_CHANNEL, DEFAULT_SECRET_OVERLAP_S, registerClient, rotateClientSecret } from "../../src/sso/clients.ts";
import { rotateSigningKey } from "../../src/sso/key-rotation.ts";
import { openSsoSealer, type SsoSealer } from "../../src/sso/sealer.ts";
import type { SsoServer } from "../../src/sso/server.ts";
import { listenSso, type ListeningSso } from "../helpers/sso-listen.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { cardLogin, finishLogin, startLogin, type TestRp } from "../helpers/sso-login.ts";
import { waitFor } from "../helpers/wait.ts";

const by = { actor: "test", role: "ia" };
const admin = { actor: "test-admin", role: "admin" };

let ia: TestIa;
let sso: SsoServer;
let sealer: SsoSealer;
let listening: ListeningSso | undefined;
let card: { label: string; pin: string };
let rp: TestRp;

beforeAll(async () => {
  ia = await openTestIa("sso-rotation");
  await runDemoCeremony(ia.ctx, by);
  card = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "ROT000001", name: { latin: "Taro Yamada", kanji: "山田　太郎" } }, by);
  listening = await listenSso(ia.ctx);
  sso = listening.sso;
  sealer = await openSsoSealer(ia.ctx.cfg, ia.ctx.db);
  const redirect = "http://rp-emr.test/cb";
  const { secret } = await registerClient(ia.ctx.db, { clientId: "emr", name: "EMR", redirectUris: [redirect], postLogoutRedirectUris: [], allowedHcRoles: [], accountMapping: "pairwise" }, admin);
  rp = { id: "emr", secret, redirect };
}, 240_000);

afterAll(async () => {
  await sealer?.close();
  await listening?.close();
  await ia?.cleanup();
});

/** A full login: the RP (openid-client) verifies the ID token against the published JWKS. */
async function login(client: TestRp = rp): Promise<{ idToken: string; kid: string }> {
  const s = await startLogin(sso.issuer, client, undefined, "openid");
  const r = await cardLogin(ia.ctx.cards, s, card);
  expect(r.status, r.body).toBe(200);
  const tokens = await finishLogin(s, client, (r.json as { redirectTo: string }).redirectTo);
  return { idToken: tokens.id_token!, kid: jose.decodeProtectedHeader(tokens.id_token!).kid! };
}

type Jwk = { kid: string; alg: string; key_ops?: string[] };
const allJwks = async () => ((await (await fetch(`${sso.issuer}/jwks`)).json()) as { keys: Jwk[] }).keys;
/** The RS256 keys of the JWKS (the ones rotated here; PS256 and ES256 keys sit beside them). */
const jwks = async () => (await allJwks()).filter((k) => k.alg === "RS256");

describe("rotation (hpki sso keys rotate, client secret overlap)", { timeout: 240_000 }, () => {
  it("publishes the new signing key before it signs, and keeps the old one until its tokens expired", async () => {
    const before = await login();
    const old = before.kid;
    expect((await jwks()).map((k) => k.kid)).toEqual([old]);

    // The lead must cover every SSO process's reload (60 s); started 57 s "ago", the key signs in ~3 s.
    await expect(rotateSigningKey(ia.ctx.db, sealer.key, { leadS: 30 }, admin)).rejects.toThrow(/at least 60/);
    const rotation = await rotateSigningKey(ia.ctx.db, sealer.key, { leadS: 60, now: new Date(Date.now() - 57_000) }, admin);
    expect(rotation.retired).toEqual([expect.objectContaining({ kid: old })]);
    await sso.keys.refresh();
    // Published, not yet signing: key_ops ["verify"] (RFC 7517 §4.3); logins are still signed by the old key.
    const published = await jwks();
    expect(published.map((k) => k.kid).sort()).toEqual([old, rotation.kid].sort());
    expect(published.find((k) => k.kid === rotation.kid)!.key_ops).toEqual(["verify"]);
    expect((await login()).kid).toBe(old);

    // The refresh timer reloads at the scheduled change: the new key signs; the old one is still published.
    await waitFor(async () => (await jwks()).find((k) => k.kid === rotation.kid)!.key_ops === undefined, "the new key signs");
    const after = await login();
    expect(after.kid).toBe(rotation.kid);
    const set = jose.createLocalJWKSet({ keys: await allJwks() } as jose.JSONWebKeySet);
    // An ID token the old key signed before the rotation still verifies against the JWKS.
    await expect(jose.jwtVerify(before.idToken, set, { issuer: sso.issuer, audience: "emr", currentDate: new Date(Date.now()) })).resolves.toBeDefined();
    await expect(jose.jwtVerify(after.idToken, set, { issuer: sso.issuer, audience: "emr" })).resolves.toBeDefined();

    // The old key leaves the JWKS at published_until = retirement + ID-token lifetime + skew.
    const row = await ia.ctx.db("sso_signing_keys").where({ kid: old }).first();
    expect(new Date(row.published_until).getTime() - new Date(row.retired_at).getTime()).toBe((3600 + 300) * 1000);
    await ia.ctx.db("sso_signing_keys").where({ kid: old }).update({ published_until: new Date(Date.now() - 1000) });
    await sso.keys.refresh();
    expect((await jwks()).map((k) => k.kid)).toEqual([rotation.kid]);
    const audit = await ia.ctx.db("audit_log").where({ action: "sso.signing-key-rotated" }).select("object_id");
    expect(audit.map((a) => a.object_id)).toEqual([rotation.kid]);
  });

  it("a rotated client secret keeps the previous one valid for the overlap, then only the new one works", async () => {
    const introspect = (secret: string) => fetch(`${sso.issuer}/token/introspection`, {
      method: "POST", body: new URLSearchParams({ token: "nothing" }),
      headers: { Authorization: `Basic ${Buffer.from(`emr:${secret}`).toString("base64")}`, "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(DEFAULT_SECRET_OVERLAP_S).toBe(86_400);
    const first = rp.secret;
    const { secret: second, client } = await rotateClientSecret(ia.ctx.db, "emr", admin, 3600);
    expect(client.previousSecret!.until.getTime()).toBeGreaterThan(Date.now() + 3500_000);
    // Both secrets work during the overlap: a whole login with the old one, introspection with both.
    expect((await login({ ...rp, secret: first })).kid).toBeDefined();
    expect((await login({ ...rp, secret: second })).kid).toBeDefined();
    expect((await introspect(first)).status).toBe(200);
    expect((await introspect(second)).status).toBe(200);
    expect((await introspect("wrong")).status).toBe(401);
    // The overlap ends (moved into the past, with the notice every change of a client raises, so
    // the SSO process forgets its copy): the old secret is refused, the new one works.
    await ia.ctx.db.transaction(async (trx) => {
      await trx("sso_clients").where({ client_id: "emr" }).update({ previous_secret_until: new Date(Date.now() - 1000) });
      await trx.raw("SELECT pg_notify(?, ?)", [CLIENTS_NOTIFY_CHANNEL, "emr"]);
    });
    await waitFor(async () => (await introspect(first)).status === 401, "the old secret refused after the overlap");
    expect((await introspect(second)).status).toBe(200);
    // Overlap 0: the previous secret stops as soon as the SSO process hears of the change (its
    // NOTIFY arrives after the commit, so the refusal is waited for, not assumed at the next request).
    const { secret: third } = await rotateClientSecret(ia.ctx.db, "emr", admin, 0);
    await waitFor(async () => (await introspect(second)).status === 401, "the previous secret refused with overlap 0");
    expect((await introspect(third)).status).toBe(200);
    rp.secret = third;
  });
});
