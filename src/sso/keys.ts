/**
 * Key material of the OpenID provider, kept in the database sealed under the SSO center's HSM
 * sealing key (sealer.ts; format and mechanisms in src/hsm/sealing-key.ts): the RS256 ID-token
 * signing key as a private JWK (RFC 7517), the cookie-signing keys, the pairwise-subject salt and
 * the portal's CSRF key. oidc-provider signs with node KeyObjects, so the opened values live in
 * this process's memory while the role runs; the database alone no longer gives them away.
 *
 * Rows (migrations 0027, 0050):
 *
 *   sso_signing_keys {kid, alg, sealed_jwk, created_at, retired_at}
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

/** Active signing keys, oldest first. */
function activeKeys(db: Knex): Promise<{ kid: string; sealed_jwk: Uint8Array | null }[]> {
  return db("sso_signing_keys").whereNull("retired_at").orderBy("created_at").select("kid", "sealed_jwk");
}

/**
 * Private JWKs of the active signing keys (oldest first), opened in the HSM; creates the first one
 * (RSA-2048, RS256, kid = RFC 7638 thumbprint) when none exists.
 * @throws Error when a row is still in the clear (run sealPlaintextRows first); HsmError when a
 *   sealed value does not open (e.g. "SEAL_OPEN_FAILED": moved to another row or altered).
 */
export async function ensureSigningKeys(db: Knex, sealer: Sealer): Promise<Record<string, unknown>[]> {
  let rows = await activeKeys(db);
  if (rows.length === 0) {
    await withSsoKeyLock(db, async () => {
      if ((await activeKeys(db)).length > 0) return; // another process created it meanwhile
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
      const kid = createHash("sha256").update(JSON.stringify({ e: jwk.e, kty: "RSA", n: jwk.n })).digest("base64url");
      const sealed = await sealer.seal(Buffer.from(JSON.stringify({ ...jwk, kid, alg: "RS256", use: "sig" }), "utf8"), signingKeyAad(kid));
      await db.transaction(async (trx) => {
        await trx("sso_signing_keys").insert({ kid, alg: "RS256", sealed_jwk: sealed });
        await appendAudit(trx, [{ actor: "system", role: "sso", action: "sso.signing-key-created", objectType: "sso-key", objectId: kid, details: { alg: "RS256", sealedWith: sealer.label } }]);
      });
    });
    rows = await activeKeys(db);
  }
  const jwks: Record<string, unknown>[] = [];
  for (const r of rows) {
    if (r.sealed_jwk == null) throw new Error(`SSO signing key ${r.kid} is stored in the clear: it must be sealed first (sealPlaintextRows)`);
    jwks.push(JSON.parse((await sealer.open(toBuffer(r.sealed_jwk), signingKeyAad(r.kid))).toString("utf8")) as Record<string, unknown>);
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
