import type { Knex } from "knex";

/**
 * Issue 14 §7: the scopes each relying party may ask for. NULL = every scope the SSO center offers
 * (as before); a list restricts it (always with openid), so a service that needs no subscriber id
 * cannot ask for one and correlate persons across services.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("sso_clients", (t) => {
    t.jsonb("allowed_scopes");
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
