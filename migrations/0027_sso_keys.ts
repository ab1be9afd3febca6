import type { Knex } from "knex";

/**
 * Key material of the OpenID provider: the ID-token / JWT signing keys (private JWKs; an
 * HSM-held signing key is a later step) and named secrets (cookie signing keys, pairwise salt).
 * Keys are generated on first start and never updated; a retired key keeps verifying until removed.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_signing_keys", (t) => {
    t.text("kid").primary();
    t.text("alg").notNullable();
    t.jsonb("private_jwk").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("retired_at", { useTz: true });
  });
  await db.schema.createTable("sso_secrets", (t) => {
    t.text("name").primary();
    t.binary("value").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
