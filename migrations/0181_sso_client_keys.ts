import type { Knex } from "knex";

/**
 * Issue 14 §5: per-client ID-token signing algorithm (RS256, PS256 or ES256; NULL = RS256) and the
 * client's own public keys for private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core
 * §9): a jwks_uri or a registered JWK Set; with either, the client authenticates with a signed
 * assertion instead of its secret.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("sso_clients", (t) => {
    t.text("id_token_alg");
    t.text("jwks_uri");
    t.jsonb("jwks");
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
