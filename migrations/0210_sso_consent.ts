import type { Knex } from "knex";

/**
 * Issue 14 §7: consent for scopes beyond a client's registered defaults, and JWT access tokens.
 * - sso_clients.default_scopes: scopes granted without asking the person (admin-registered
 *   first-party services); NULL = the SSO center's defaults (openid profile hcrole organization).
 *   Any other scope (subscriber, offline_access) needs the person's consent on the consent page.
 * - sso_clients.access_token_format: "jwt" (RFC 9068, typ at+jwt, audience
 *   access_token_audience) or NULL = opaque.
 * - sso_consents: the scopes a person approved for a client, remembered across logins until the
 *   person's consent is withdrawn or the client's registration is removed.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("sso_clients", (t) => {
    t.jsonb("default_scopes");
    t.text("access_token_format");
    t.text("access_token_audience");
  });
  await db.schema.createTable("sso_consents", (t) => {
    t.text("person_id").notNullable().references("id").inTable("sso_persons");
    t.text("client_id").notNullable().references("client_id").inTable("sso_clients").onDelete("CASCADE");
    t.jsonb("scopes").notNullable();
    t.timestamp("granted_at", { useTz: true }).notNullable();
    t.primary(["person_id", "client_id"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
