import type { Knex } from "knex";

/**
 * oidc-provider's storage (its Adapter interface): one row per model instance (Session,
 * AccessToken, AuthorizationCode, RefreshToken, Grant, Interaction, …), keyed by (kind, id), with
 * the lookups the adapter needs (grant id, session uid, user code) and the expiry.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_oidc_payloads", (t) => {
    t.text("kind").notNullable();
    t.text("id").notNullable();
    t.jsonb("payload").notNullable();
    t.text("grant_id");
    t.text("uid");
    t.text("user_code");
    t.timestamp("expires_at", { useTz: true });
    t.timestamp("consumed_at", { useTz: true });
    t.primary(["kind", "id"]);
    t.index(["grant_id"]);
    t.index(["kind", "uid"]);
    t.index(["expires_at"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
