/**
 * The SSO center's key material sealed under its HSM sealing key, with the real SSO role, a real
 * SoftHSM2 token and card, and a real relying party: nothing in the clear after start, an upgraded
 * database sealed on start (audited once) with the same kid and salt, a value moved between rows
 * refused, the role on its own opening only its token (`hpki serve --role sso`), a real HSM without
 * the token refused in both languages, and (Postgres) two processes starting at once.
 * a fresh PostgreSQL database.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type JsonWebKey } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import express from "express";
import type { Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, SOFTHSM2_MODULE } from "../../src/config.ts";
import { ensureSsoToken } from "../../src/hsm/softhsm.ts";
import { parseSealed } from "../../src/hsm/sealing-key.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { ensureSecret, ensureSigningKeys } from "../../src/sso/keys.ts";
import { openSsoSealer, SSO_SEALING_KEY_LABEL } from "../../src/sso/sealer.ts";
import { createSsoServer, type SsoServer } from "../../src/sso/server.ts";
import { openDatabase } from "../../src/store/db.ts";
import { toBuffer } from "../../src/store/rows.ts";
import { freshDatabaseUrl, openTestDatabase } from "../helpers/db.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { tempDir } from "../helpers/openssl.ts";
import { cardLogin, finishLogin, startLogin } from "../helpers/sso-login.ts";
import { childEnv, serveSso } from "../helpers/sso-serve.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const by = { actor: "test", role: "ia" };
const SECRETS = ["cookie-key-1", "pairwise-salt", "portal-csrf-key"];

let ia: TestIa;
let card: { label: string; pin: string };
let rp: { id: string; secret: string; redirect: string };
let httpServer: http.Server;
let base: string;
let sso: SsoServer | undefined;
/** What the "earlier version" stored in the clear. */
const old = {
  jwk: {} as Record<string, string>,
  kid: "",
  secrets: Object.fromEntries(SECRETS.map((n) => [n, randomBytes(32)])) as Record<string, Buffer>,
  idToken: "",
};

/** The router of the current SSO role, mounted once on a listener whose URL is known before start. */
let current: express.Router | undefined;
async function startSso(): Promise<SsoServer> {
  sso = await createSsoServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, publicUrl: base }, { verifier: { refreshIntervalMs: 0 } });
  current = sso.router;
  return sso;
}
async function stopSso(): Promise<void> {
  await sso?.close();
  sso = undefined;
  current = undefined;
}

/** Every row of both tables as Postgres renders it (bytea as \x-hex), one string: what a dump shows. */
async function dump(db: Knex): Promise<string> {
  const rows = await db.raw("SELECT row_to_json(k)::text AS j FROM sso_signing_keys k UNION ALL SELECT row_to_json(s)::text FROM sso_secrets s");
  return (rows.rows as { j: string }[]).map((r) => r.j).join("\n");
}

/** The forms a value could take in a dump: as text, and its bytes as hex, base64 and base64url. */
function forms(v: string | Buffer): string[] {
  const b = typeof v === "string" ? Buffer.from(v) : v;
  return [...(typeof v === "string" ? [v] : []), b.toString("hex"), b.toString("base64"), b.toString("base64url")];
}

function expectNotIn(text: string, values: (string | Buffer)[]): void {
  for (const v of values) for (const f of forms(v)) expect(text.includes(f), `a plaintext value (${f.slice(0, 12)}…) is in the dump`).toBe(false);
}

/** An RS256 JWS over `payload`, as the earlier version's provider would have signed it with its key. */
function signJwt(jwk: Record<string, string>, kid: string, payload: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc({ alg: "RS256", kid, typ: "JWT" })}.${enc(payload)}`;
  return `${input}.${sign("sha256", Buffer.from(input), createPrivateKey({ key: jwk as JsonWebKey, format: "jwk" })).toString("base64url")}`;
}

/** Verifies an RS256 JWS against the served JWKS: returns its header and payload. */
async function verifyWithJwks(jwt: string): Promise<{ header: { kid: string }; payload: Record<string, unknown> }> {
  const [h, p, s] = jwt.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { kid: string; alg: string };
  const jwks = (await (await fetch(`${base}/sso/jwks`)).json()) as { keys: (JsonWebKey & { kid: string })[] };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  expect(jwk, `kid ${header.kid} is served`).toBeDefined();
  expect(header.alg).toBe("RS256");
  expect(verify("sha256", Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk!, format: "jwk" }), Buffer.from(s, "base64url"))).toBe(true);
  return { header, payload: JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown> };
}

async function auditDetails(db: Knex, action: string): Promise<Record<string, unknown>[]> {
  const rows = await db("audit_log").where({ action }).orderBy("seq").select("details");
  return rows.map((r) => (typeof r.details === "string" ? JSON.parse(r.details) : r.details) as Record<string, unknown>);
}

beforeAll(async () => {
  ia = await openTestIa("sso-sealed");
  await runDemoCeremony(ia.ctx, by);
  card = await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "SEAL00001", name: { latin: "Taro Yamada", kanji: "山田　太郎" } }, by);
  const redirect = "http://rp-sealed.test/cb";
  const { secret } = await registerClient(ia.ctx.db, { clientId: "emr-sealed", name: "sealed", redirectUris: [redirect], allowedHcRoles: [], accountMapping: "pairwise" }, { actor: "test-admin", role: "admin" });
  rp = { id: "emr-sealed", secret, redirect };

  const app = express();
  app.use("/sso", (req, res, next) => (current ? current(req, res, next) : res.status(503).end()));
  httpServer = http.createServer(app);
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(httpServer.address() as { port: number }).port}`;

  // The earlier version's installation: an RS256 key and the secrets in the clear, as it wrote them.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  old.jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  old.kid = createHash("sha256").update(JSON.stringify({ e: old.jwk.e, kty: "RSA", n: old.jwk.n })).digest("base64url");
  await ia.ctx.db("sso_signing_keys").insert({ kid: old.kid, alg: "RS256", private_jwk: JSON.stringify({ ...old.jwk, kid: old.kid, alg: "RS256", use: "sig" }) });
  for (const [name, value] of Object.entries(old.secrets)) await ia.ctx.db("sso_secrets").insert({ name, value });
  const now = Math.floor(Date.now() / 1000);
  old.idToken = signJwt(old.jwk, old.kid, { iss: `${base}/sso`, sub: "issued-before-the-upgrade", aud: rp.id, iat: now, exp: now + 3600 });
});

afterAll(async () => {
  await stopSso();
  httpServer?.closeAllConnections();
  await new Promise((r) => httpServer?.close(r));
  await ia?.cleanup();
});

describe("SSO key material sealed in the database", () => {
  it("an upgraded database with keys in the clear is sealed on start, in one audited step", async () => {
    expect(await dump(ia.ctx.db)).toContain(old.jwk.d);
    await startSso();
    // The old RS256 key is kept; PS256 and ES256 keys are made (sealed) beside it (issue 14 §5).
    const keys = await ia.ctx.db("sso_signing_keys").where({ alg: "RS256" }).select("kid", "private_jwk", "sealed_jwk");
    expect(keys.map((k) => k.kid)).toEqual([old.kid]);
    expect(keys[0].private_jwk).toBeNull();
    const sealed = parseSealed(toBuffer(keys[0].sealed_jwk));
    expect(sealed.keyLabel).toBe(SSO_SEALING_KEY_LABEL);
    const secrets = await ia.ctx.db("sso_secrets").orderBy("name").select("name", "value", "sealed_value");
    expect(secrets.map((s) => s.name)).toEqual(SECRETS);
    expect(secrets.every((s) => s.value === null && s.sealed_value !== null)).toBe(true);
    expectNotIn(await dump(ia.ctx.db), [old.jwk.d, old.jwk.p, old.jwk.q, ...Object.values(old.secrets)]);
    const audit = await auditDetails(ia.ctx.db, "sso.keys-sealed");
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ signingKeys: [old.kid], secrets: SECRETS, token: "hpki-sso", sealingKey: SSO_SEALING_KEY_LABEL, sealingKeyId: sealed.keyId.toString("hex") });
    expect(await auditDetails(ia.ctx.db, "sso.sealing-key-created")).toHaveLength(1);
  });

  it("tokens issued before still verify, new ones carry the same kid, and the pairwise salt is the old one", async () => {
    const before = await verifyWithJwks(old.idToken);
    expect(before.header.kid).toBe(old.kid);
    const s = await startLogin(`${base}/sso`, rp, undefined, "openid");
    const r = await cardLogin(ia.ctx.cards, s, card);
    expect(r.status, r.body).toBe(200);
    const tokens = await finishLogin(s, rp, (r.json as { redirectTo: string }).redirectTo);
    const after = await verifyWithJwks(tokens.id_token!);
    expect(after.header.kid).toBe(old.kid);
    const person = await ia.ctx.db("sso_persons").where({ subscriber_id: "SEAL00001" }).first("id");
    expect(after.payload.sub).toBe(createHmac("sha256", old.secrets["pairwise-salt"]).update(`${rp.id}\u0000${person.id}`).digest("base64url"));
  });

  it("a restart opens the sealed rows again and seals nothing more", async () => {
    const rowsBefore = await dump(ia.ctx.db);
    await stopSso();
    await startSso();
    expect(await dump(ia.ctx.db)).toBe(rowsBefore);
    expect(await auditDetails(ia.ctx.db, "sso.keys-sealed")).toHaveLength(1);
    expect(await auditDetails(ia.ctx.db, "sso.sealing-key-created")).toHaveLength(1);
    expect((await verifyWithJwks(old.idToken)).header.kid).toBe(old.kid);
  });

  it("a sealed value moved to another row does not open: the role refuses to start", async () => {
    await stopSso();
    const db = ia.ctx.db;
    const salt = await db("sso_secrets").where({ name: "pairwise-salt" }).first("sealed_value");
    const cookie = await db("sso_secrets").where({ name: "cookie-key-1" }).first("sealed_value");
    await db("sso_secrets").where({ name: "pairwise-salt" }).update({ sealed_value: toBuffer(cookie.sealed_value) });
    try {
      await expect(startSso()).rejects.toMatchObject({ code: "SEAL_OPEN_FAILED" });
    } finally {
      await db("sso_secrets").where({ name: "pairwise-salt" }).update({ sealed_value: toBuffer(salt.sealed_value) });
    }
    // So is a signing key whose sealed JWK was altered.
    const key = await db("sso_signing_keys").where({ kid: old.kid }).first("sealed_jwk");
    const altered = toBuffer(key.sealed_jwk);
    altered[altered.length - 20] ^= 1;
    await db("sso_signing_keys").where({ kid: old.kid }).update({ sealed_jwk: altered });
    try {
      await expect(startSso()).rejects.toMatchObject({ code: "SEAL_OPEN_FAILED" });
    } finally {
      altered[altered.length - 20] ^= 1;
      await db("sso_signing_keys").where({ kid: old.kid }).update({ sealed_jwk: altered });
    }
    await startSso();
    expect((await verifyWithJwks(old.idToken)).header.kid).toBe(old.kid);
  });

  it("a fresh database: the generated key and secrets are never in the clear", async () => {
    const fresh = await openTestDatabase();
    let other: SsoServer | undefined;
    try {
      other = await createSsoServer({ cfg: ia.ctx.cfg, db: fresh.db, publicUrl: "http://127.0.0.1:1" }, { verifier: { refreshIntervalMs: 0 } });
      await other.close();
      other = undefined;
      // Open what the role stored, with the same sealing key, to know what must not be in the dump.
      const sealer = await openSsoSealer(ia.ctx.cfg, fresh.db);
      try {
        const jwks = await ensureSigningKeys(fresh.db, sealer.key);
        expect(jwks.map((k) => k.alg).sort()).toEqual(["ES256", "PS256", "RS256"]);
        expect(jwks.every((k) => typeof k.d === "string")).toBe(true);
        const values = await Promise.all(SECRETS.map((n) => ensureSecret(fresh.db, sealer.key, n)));
        expect(values.every((v) => v.length === 32)).toBe(true);
        const text = await dump(fresh.db);
        for (const k of jwks) expect(text).toContain(String(k.kid));
        expectNotIn(text, [...jwks.flatMap((k) => [k.d, k.p, k.q].filter((v) => v !== undefined).map(String)), ...values]);
        expect(Number((await fresh.db("sso_signing_keys").whereNotNull("private_jwk").count({ n: "*" }).first())!.n)).toBe(0);
        expect(Number((await fresh.db("sso_secrets").whereNotNull("value").count({ n: "*" }).first())!.n)).toBe(0);
        expect(await auditDetails(fresh.db, "sso.keys-sealed")).toHaveLength(0);
      } finally {
        await sealer.close();
      }
    } finally {
      await other?.close();
      await fresh.cleanup();
    }
  });

  it("the SSO token must not be the CA or OCSP token (both languages)", () => {
    const cfg = loadConfig({ HPKI_HOME: ia.home, HPKI_SSO_TOKEN: "hpki-ca" });
    expect(() => ensureSsoToken(ia.ctx.module, cfg)).toThrow(expect.objectContaining({ code: "TOKEN_CONFLICT", messageJa: expect.stringContaining("CA トークンと同じ") }));
    const ocsp = loadConfig({ HPKI_HOME: ia.home, HPKI_SSO_TOKEN: "hpki-ocsp" });
    expect(() => ensureSsoToken(ia.ctx.module, ocsp)).toThrow(expect.objectContaining({ code: "TOKEN_CONFLICT", message: expect.stringContaining("OCSP token's") }));
  });
});

/** Token labels of the embedded SoftHSM under `home` (softhsm2-util in its own process). */
function tokenLabels(home: string): string[] {
  const r = spawnSync("softhsm2-util", ["--show-slots"], { env: { ...process.env, SOFTHSM2_CONF: path.join(home, "hsm", "softhsm2.conf") }, encoding: "utf8" });
  return [...r.stdout.matchAll(/^\s*Label:\s*(.*?)\s*$/gm)].map((m) => m[1]).filter(Boolean);
}

describe("hpki serve --role sso", () => {
  it("on a fresh $HPKI_HOME creates and opens only its own tokens (SSO, and the operators' token of its console), and stores nothing in the clear", async () => {
    const home = tempDir("sso-only-");
    const fresh = await freshDatabaseUrl();
    try {
      const server = await serveSso(childEnv(home, fresh.url));
      const jwks = (await (await fetch(`${server.url}/sso/jwks`)).json()) as { keys: { kid: string; alg: string; d?: string }[] };
      expect(jwks.keys).toHaveLength(3);
      expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
      expect(await server.stop()).toBe(0);
      // Its own token, and the operators' token its administration console seals TOTP secrets under:
      // never the CA or OCSP token, and one of each however many processes started at once.
      expect(tokenLabels(home).sort()).toEqual(["hpki-ops", "hpki-sso"]);
      expect(fs.statSync(path.join(home, "hsm", "sso-token.pin")).mode & 0o777).toBe(0o600);
      expect(fs.existsSync(path.join(home, "hsm", "ca-token.pin"))).toBe(false);
      expect(fs.existsSync(path.join(home, "hsm", "ocsp-token.pin"))).toBe(false);
      const db = await openDatabase(loadConfig({ HPKI_HOME: home, DATABASE_URL: fresh.url }));
      try {
        // One key per algorithm, however many processes started at once.
        const all = await db("sso_signing_keys").select("alg");
        expect(all.map((k) => k.alg).sort()).toEqual(["ES256", "PS256", "RS256"]);
        const keys = await db("sso_signing_keys").where({ alg: "RS256" }).select("kid", "private_jwk", "sealed_jwk");
        expect(keys.map((k) => k.kid)).toEqual([jwks.keys.find((k) => k.alg === "RS256")!.kid]);
        expect(keys[0].private_jwk).toBeNull();
        expect(parseSealed(toBuffer(keys[0].sealed_jwk)).keyLabel).toBe(SSO_SEALING_KEY_LABEL);
        expect(Number((await db("sso_secrets").whereNotNull("value").count({ n: "*" }).first())!.n)).toBe(0);
        expect(Number((await db("sso_secrets").whereNotNull("sealed_value").count({ n: "*" }).first())!.n)).toBe(SECRETS.length);
      } finally {
        await db.destroy();
      }
    } finally {
      await fresh.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("with a real HSM (PKCS11_MODULE) that lacks the SSO token, refuses to start in English and Japanese", async () => {
    const home = tempDir("sso-ext-");
    const tokens = path.join(home, "ext-tokens");
    fs.mkdirSync(tokens);
    fs.writeFileSync(path.join(home, "ext.conf"), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const fresh = await freshDatabaseUrl();
    try {
      const env = { ...childEnv(home, fresh.url), PKCS11_MODULE: SOFTHSM2_MODULE, SOFTHSM2_CONF: path.join(home, "ext.conf") };
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "sso", "--port", "0"], { cwd: repo, env });
        let err = "";
        p.stderr.on("data", (d) => (err += d));
        p.on("close", (code) => resolve({ code, err }));
      });
      expect(r.code).toBe(1);
      expect(r.err).toContain(`SSO token "hpki-sso" not found in ${SOFTHSM2_MODULE}`);
      expect(r.err).toContain("HPKI_SSO_TOKEN");
      expect(r.err).toContain("SSO トークン「hpki-sso」が");
      expect(fs.readdirSync(tokens)).toEqual([]);
    } finally {
      await fresh.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it("two processes starting at once on a fresh $HPKI_HOME (Postgres) converge on one token, sealing key and signing key", { timeout: 180_000 }, async () => {
    const home = tempDir("sso-twice-");
    const fresh = await freshDatabaseUrl();
    try {
      const servers = await Promise.all([serveSso(childEnv(home, fresh.url)), serveSso(childEnv(home, fresh.url))]);
      const kids = await Promise.all(servers.map(async (s) => ((await (await fetch(`${s.url}/sso/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid)));
      expect(kids[0]).toHaveLength(3); // RS256, PS256, ES256
      expect(kids[1]).toEqual(kids[0]);
      expect(await Promise.all(servers.map((s) => s.stop()))).toEqual([0, 0]);
      // Its own token, and the operators' token its administration console seals TOTP secrets under:
      // never the CA or OCSP token, and one of each however many processes started at once.
      expect(tokenLabels(home).sort()).toEqual(["hpki-ops", "hpki-sso"]);
      const db = await openDatabase(loadConfig({ HPKI_HOME: home, DATABASE_URL: fresh.url }));
      try {
        expect(await auditDetails(db, "sso.sealing-key-created")).toHaveLength(1);
        expect(await auditDetails(db, "sso.signing-key-created")).toHaveLength(3); // one per algorithm
        expect((await db("sso_secrets").select("name")).map((r) => r.name).sort()).toEqual(SECRETS);
      } finally {
        await db.destroy();
      }
    } finally {
      await fresh.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
