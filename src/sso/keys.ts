/**
 * Key material of the OpenID provider, generated on first start and kept in the database
 * (sso_signing_keys, sso_secrets): the RS256 ID-token signing key as a private JWK (RFC 7517) —
 * holding it in the HSM instead is a later step — the cookie-signing keys and the pairwise salt.
 * Creation runs in a transaction with its audit record; concurrent first starts converge on one
 * key (insert … on conflict do nothing, then read back).
 */
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { toBuffer } from "../store/rows.ts";

/** Private JWKs of the active signing keys (oldest first), creating the first one when none exists. */
export async function ensureSigningKeys(db: Knex): Promise<Record<string, unknown>[]> {
  let rows = await db("sso_signing_keys").whereNull("retired_at").orderBy("created_at");
  if (rows.length === 0) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
    // RFC 7638 thumbprint of the public part as kid.
    const kid = createHash("sha256").update(JSON.stringify({ e: jwk.e, kty: "RSA", n: jwk.n })).digest("base64url");
    await db.transaction(async (trx) => {
      const inserted = await trx("sso_signing_keys").insert({ kid, alg: "RS256", private_jwk: JSON.stringify({ ...jwk, kid, alg: "RS256", use: "sig" }) }).onConflict("kid").ignore().returning("kid");
      if (inserted.length) await appendAudit(trx, [{ actor: "system", role: "sso", action: "sso.signing-key-created", objectType: "sso-key", objectId: kid, details: { alg: "RS256" } }]);
    });
    rows = await db("sso_signing_keys").whereNull("retired_at").orderBy("created_at");
  }
  return rows.map((r) => (typeof r.private_jwk === "string" ? JSON.parse(r.private_jwk) : r.private_jwk));
}

/** The named random secret (`bytes` long), created on first use with an audit record. */
export async function ensureSecret(db: Knex, name: string, bytes = 32): Promise<Buffer> {
  const found = await db("sso_secrets").where({ name }).first("value");
  if (found) return toBuffer(found.value);
  await db.transaction(async (trx) => {
    const inserted = await trx("sso_secrets").insert({ name, value: randomBytes(bytes) }).onConflict("name").ignore().returning("name");
    if (inserted.length) await appendAudit(trx, [{ actor: "system", role: "sso", action: "sso.secret-created", objectType: "sso-secret", objectId: name }]);
  });
  return toBuffer((await db("sso_secrets").where({ name }).first("value")).value);
}
