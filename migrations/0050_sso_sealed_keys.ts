import type { Knex } from "knex";

/**
 * The SSO center's key material sealed under its HSM sealing key (src/hsm/sealing-key.ts,
 * src/sso/keys.ts): sso_signing_keys.sealed_jwk and sso_secrets.sealed_value hold the sealed
 * private JWK / secret; the plaintext columns become nullable and are erased when the SSO role
 * next starts (it needs the HSM, which migrations do not open). A row holds exactly one of the two.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("sso_signing_keys", (t) => {
    t.binary("sealed_jwk");
  });
  await db.raw("ALTER TABLE sso_signing_keys ALTER COLUMN private_jwk DROP NOT NULL");
  await db.raw("ALTER TABLE sso_signing_keys ADD CONSTRAINT sso_signing_keys_one_form CHECK ((private_jwk IS NULL) <> (sealed_jwk IS NULL))");
  await db.schema.alterTable("sso_secrets", (t) => {
    t.binary("sealed_value");
  });
  await db.raw("ALTER TABLE sso_secrets ALTER COLUMN value DROP NOT NULL");
  await db.raw("ALTER TABLE sso_secrets ADD CONSTRAINT sso_secrets_one_form CHECK ((value IS NULL) <> (sealed_value IS NULL))");
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
