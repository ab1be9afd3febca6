/**
 * Key material of the OpenID provider, kept in the database sealed under the SSO center's HSM
 * sealing key (sealer.ts; format and mechanisms in src/hsm/sealing-key.ts): the RS256 ID-token
 * signing key as a private JWK (RFC 7517), the cookie-signing keys, the pairwise-subject salt and
 * the portal's CSRF key. oidc-provider signs with node KeyObjects, so the opened values live in
 * this process's memory while the role runs; the database alone no longer gives them away.
 *
 * Rows (migrations 0027, 0050, 0180):
 *
 *   sso_signing_keys {kid, alg, sealed_jwk, created_at, signs_from, retired_at, published_until}
 *     a key is published (JWKS) from its creation until published_until (a key retired before 0180,
 *     without published_until, is no longer published); it signs from signs_from (default
 *     created_at) until retired_at (key-rotation.ts; issue 14 §8)
 *     sealed_jwk = seal(UTF-8 JSON of the private JWK {kty, n, e, d, p, q, dp, dq, qi, kid, alg, use},
 *                       aad "sso_signing_keys:<kid>")
 *   sso_secrets {name, sealed_value, created_at}
 *     sealed_value = seal(the secret's random bytes, aad "sso_secrets:<name>")
 *
 * The plaintext columns of earlier versions (private_jwk, value) are NULL once
 * {@link sealPlaintextRows} has run; a row holds exactly one form (CHECK constraint). Reading a row
 * that is still in the clear is refused rather than served.
 *
 * Creation runs in a transaction with its audit record. Concurrent first starts converge on one
 * signing key (created under the SSO key lock, store/advisory-lock.ts) and one value per secret
 * (insert … on conflict do nothing, then read back).
 */
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { SealingKey } from "../hsm/sealing-key.ts";
import { advisoryLock } from "../store/advisory-lock.ts";
import { toBuffer } from "../store/rows.ts";

/** What keys.ts needs of the sealing key. */
export type Sealer = Pick<SealingKey, "seal" | "open" | "label" | "id" | "tokenLabel">;

/** AAD binding a sealed private JWK to its row. */
export const signingKeyAad = (kid: string): string => `sso_signing_keys:${kid}`;
/** AAD binding a sealed secret to its row. */
export const secretAad = (name: string): string => `sso_secrets:${name}`;

/**
 * Serialises the SSO center's "find, else create" steps that nothing else makes unique: the token
 * and sealing key in the HSM (sealer.ts) and the first signing key. Never nest it.
 */
export const withSsoKeyLock = advisoryLock(0x4850_5353); // "HPSS"

/**
 * Seals every signing key and secret still stored in the clear and erases the plaintext, in one
 * transaction with one audit record (action "sso.keys-sealed", details: the kids and secret names,
 * the token and sealing key). Rows are locked (FOR UPDATE), so two processes starting together seal
 * each row once. Then, best effort, VACUUM FULL rewrites both tables so the erased values' old row
 * versions leave the table files (WAL segments and earlier backups still hold them).
 * @returns the kids and secret names sealed now (empty when nothing was in the clear).
 */
export async function sealPlaintextRows(db: Knex, sealer: Sealer): Promise<{ signingKeys: string[]; secrets: string[] }> {
  const done = await db.transaction(async (trx) => {
    const keys = await trx("sso_signing_keys").whereNotNull("private_jwk").orderBy("kid").forUpdate().select("kid", "private_jwk");
    const secrets = await trx("sso_secrets").whereNotNull("value").orderBy("name").forUpdate().select("name", "value");
    if (keys.length === 0 && secrets.length === 0) return { signingKeys: [], secrets: [] };
    for (const k of keys) {
      const json = typeof k.private_jwk === "string" ? k.private_jwk : JSON.stringify(k.private_jwk);
      const sealed = await sealer.seal(Buffer.from(json, "utf8"), signingKeyAad(k.kid));
      await trx("sso_signing_keys").where({ kid: k.kid }).update({ sealed_jwk: sealed, private_jwk: null });
    }
    for (const s of secrets) {
      const sealed = await sealer.seal(toBuffer(s.value), secretAad(s.name));
      await trx("sso_secrets").where({ name: s.name }).update({ sealed_value: sealed, value: null });
    }
    const result = { signingKeys: keys.map((k) => String(k.kid)), secrets: secrets.map((s) => String(s.name)) };
    await appendAudit(trx, [{
      actor: "system", role: "sso", action: "sso.keys-sealed", objectType: "sso-keys", objectId: `${sealer.tokenLabel}/${sealer.label}`,
      details: { ...result, token: sealer.tokenLabel, sealingKey: sealer.label, sealingKeyId: sealer.id.toString("hex") },
    }]);
    return result;
  });
  if (done.signingKeys.length + done.secrets.length > 0) {
    await db.raw("VACUUM FULL sso_signing_keys, sso_secrets").catch(() => undefined);
  }
  return done;
}

/** Lifetime of ID tokens, seconds: a retired key stays published this long (plus CLOCK_SKEW_S) after its last signature. */
export const ID_TOKEN_TTL_S = 3600;
/** Clock skew allowed for relying parties, seconds. */
export const CLOCK_SKEW_S = 300;

interface KeyRow {
  kid: string;
  alg: string;
  sealed_jwk: Uint8Array | null;
  created_at: Date;
  signs_from: Date | null;
  retired_at: Date | null;
  published_until: Date | null;
}

/** Keys never retired (the ones that sign now or will), oldest first. */
function activeKeys(db: Knex): Promise<KeyRow[]> {
  return db("sso_signing_keys").whereNull("retired_at").orderBy("created_at").select("*");
}

/** Keys in the JWKS at `now`: not retired, or retired but published until after `now`. */
function publishedKeys(db: Knex, now: Date): Promise<KeyRow[]> {
  return db("sso_signing_keys").where((q) => q.whereNull("retired_at").orWhere("published_until", ">", now)).orderBy("created_at", "desc").select("*");
}

/** Whether key row `r` signs at `now` (published, started, not retired). */
const signsAt = (r: KeyRow, now: Date): boolean =>
  new Date(r.signs_from ?? r.created_at).getTime() <= now.getTime() && (r.retired_at == null || new Date(r.retired_at).getTime() > now.getTime());

/**
 * The next instant after `now` at which the published or signing keys change (a key starts
 * signing, stops, or leaves the JWKS), or undefined.
 */
export async function nextKeyChange(db: Knex, now: Date = new Date()): Promise<Date | undefined> {
  const rows = await db("sso_signing_keys").select("signs_from", "retired_at", "published_until");
  const t = rows.flatMap((r) => [r.signs_from, r.retired_at, r.published_until]).filter((d): d is Date => d != null)
    .map((d) => new Date(d).getTime()).filter((ms) => ms > now.getTime());
  return t.length ? new Date(Math.min(...t)) : undefined;
}

/** A new private JWK for `alg` (RS256/PS256: RSA-2048; ES256: P-256) with kid = RFC 7638 thumbprint. */
export function generateSigningJwk(alg: SigningAlg): Record<string, string> {
  const { privateKey } = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  const members = jwk.kty === "EC" ? { crv: jwk.crv, kty: "EC", x: jwk.x, y: jwk.y } : { e: jwk.e, kty: "RSA", n: jwk.n };
  const kid = createHash("sha256").update(JSON.stringify(members)).digest("base64url");
  return { ...jwk, kid, alg, use: "sig" };
}

/** ID-token signing algorithms the SSO center can hold keys for. */
export const SIGNING_ALGS = ["RS256", "PS256", "ES256"] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** Seals and stores `jwk` (inside `trx`) with its audit record; `signsFrom` null = now (this process's clock, as the readers use). */
export async function storeSigningKey(trx: Knex.Transaction, sealer: Sealer, jwk: Record<string, string>, signsFrom: Date | null, action: string, details: Record<string, unknown> = {}): Promise<void> {
  const sealed = await sealer.seal(Buffer.from(JSON.stringify(jwk), "utf8"), signingKeyAad(jwk.kid));
  await trx("sso_signing_keys").insert({ kid: jwk.kid, alg: jwk.alg, sealed_jwk: sealed, signs_from: signsFrom ?? new Date() });
  await appendAudit(trx, [{ actor: "system", role: "sso", action, objectType: "sso-key", objectId: jwk.kid, details: { alg: jwk.alg, sealedWith: sealer.label, signsFrom: signsFrom?.toISOString(), ...details } }]);
}

/**
 * Private JWKs of the published signing keys at `now`, opened in the HSM: first the keys that sign
 * now (newest first), then those only published — a rotated-in key before it signs, a retired key
 * until its tokens expired — marked key_ops ["verify"] so oidc-provider never signs with them
 * (RFC 7517 §4.3). Creates the first key (one per algorithm in `algs`: RSA-2048 for RS256 and
 * PS256, P-256 for ES256) when none is active.
 * @throws Error when a row is still in the clear (run sealPlaintextRows first); HsmError when a
 *   sealed value does not open (e.g. "SEAL_OPEN_FAILED": moved to another row or altered).
 */
export async function ensureSigningKeys(db: Knex, sealer: Sealer, at?: Date, algs: readonly SigningAlg[] = ["RS256"]): Promise<Record<string, unknown>[]> {
  const missing = async () => {
    const have = new Set((await activeKeys(db)).map((r) => r.alg));
    return algs.filter((a) => !have.has(a));
  };
  if ((await missing()).length > 0) {
    await withSsoKeyLock(db, async () => {
      const todo = await missing(); // another process may have created them meanwhile
      if (todo.length === 0) return;
      await db.transaction(async (trx) => {
        for (const alg of todo) await storeSigningKey(trx, sealer, generateSigningJwk(alg), null, "sso.signing-key-created");
      });
    });
  }
  const now = at ?? new Date(); // after a creation above, so a key made now signs now
  const rows = await publishedKeys(db, now);
  const signing = rows.filter((r) => signsAt(r, now));
  const jwks: Record<string, unknown>[] = [];
  for (const r of [...signing, ...rows.filter((x) => !signing.includes(x))]) {
    if (r.sealed_jwk == null) throw new Error(`SSO signing key ${r.kid} is stored in the clear: it must be sealed first (sealPlaintextRows)`);
    const jwk = JSON.parse((await sealer.open(toBuffer(r.sealed_jwk), signingKeyAad(r.kid))).toString("utf8")) as Record<string, unknown>;
    jwks.push(signing.includes(r) ? jwk : { ...jwk, key_ops: ["verify"] });
  }
  return jwks;
}

/**
 * The named random secret (`bytes` long), opened in the HSM; created and sealed on first use with
 * an audit record. @throws as ensureSigningKeys.
 */
export async function ensureSecret(db: Knex, sealer: Sealer, name: string, bytes = 32): Promise<Buffer> {
  if (!(await db("sso_secrets").where({ name }).first("name"))) {
    const sealed = await sealer.seal(randomBytes(bytes), secretAad(name));
    await db.transaction(async (trx) => {
      const inserted = await trx("sso_secrets").insert({ name, sealed_value: sealed }).onConflict("name").ignore().returning("name");
      if (inserted.length) await appendAudit(trx, [{ actor: "system", role: "sso", action: "sso.secret-created", objectType: "sso-secret", objectId: name, details: { sealedWith: sealer.label } }]);
    });
  }
  const row = await db("sso_secrets").where({ name }).first("sealed_value");
  if (row.sealed_value == null) throw new Error(`SSO secret "${name}" is stored in the clear: it must be sealed first (sealPlaintextRows)`);
  return sealer.open(toBuffer(row.sealed_value), secretAad(name));
}
