import type { Knex } from "knex";

/**
 * OpenID Connect relying parties of the SSO center (DESIGN §7), registered by an administrator.
 * The client secret is 256 random bits shown once; only its SHA-256 is kept (a fast hash is
 * enough for a uniformly random 256-bit secret: there is nothing to guess). `allowed_hc_roles`
 * lists the hcRole strings (NFC, exact match) that may log in; empty = any role.
 * `account_mapping`: 'linked' (sub = the account id the service confirmed, pairwise until then) or
 * 'pairwise' (always a pairwise pseudonym).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_clients", (t) => {
    t.text("client_id").primary();
    t.text("name").notNullable();
    t.binary("secret_sha256").notNullable();
    t.jsonb("redirect_uris").notNullable();
    t.jsonb("post_logout_redirect_uris").notNullable();
    t.jsonb("allowed_hc_roles").notNullable();
    t.text("account_mapping").notNullable();
    t.text("created_by").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("disabled_at", { useTz: true });
  });
  await db.raw(`ALTER TABLE sso_clients ADD CONSTRAINT sso_clients_mapping CHECK (account_mapping IN ('linked','pairwise'))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
