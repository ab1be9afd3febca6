import type { Knex } from "knex";

/**
 * Card-login challenges and the login history. A challenge is a fresh random nonce bound to one
 * oidc-provider interaction; it is consumed (used_at set) by the first login attempt that presents
 * it, so a replay finds it used. Every login, successful or refused, leaves a row for the portal's
 * "recent logins" (the audit log holds the same event). The index on revocations.revoked_at serves
 * the SSO revocation index's incremental read (re-revoked rows, src/status/certificate-verifier.ts).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_challenges", (t) => {
    t.text("nonce").primary();
    t.text("interaction_uid").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable();
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.timestamp("used_at", { useTz: true });
    t.index(["interaction_uid"]);
  });
  await db.schema.createTable("sso_logins", (t) => {
    t.bigIncrements("id").primary();
    t.text("person_id").references("id").inTable("sso_persons");
    t.text("client_id");
    t.text("method").notNullable();
    t.text("outcome").notNullable();
    t.text("certificate_serial");
    t.text("issuer");
    t.timestamp("at", { useTz: true }).notNullable();
    t.index(["person_id", "at"]);
  });
  await db.raw("CREATE INDEX revocations_revoked_at ON revocations (revoked_at) WHERE released_at IS NULL");
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
