import type { Knex } from "knex";

/**
 * Operator card sign-in (issue 5 §5).
 *
 * - operator_certificates: the authentication-certificate identity an administrator bound to a
 *   console operator — issuer DN and subject serialNumber (subscriber id), the person key that
 *   stays the same across card renewal. One identity belongs to at most one operator.
 * - operator_login_challenges: the signed-challenge nonces of the consoles' card sign-in, bound
 *   to the console and the (anonymous) session that asked for them; used_at is set by the first
 *   attempt that presents the nonce, so a replay finds it used. Expired rows are deleted when new
 *   challenges are issued (a replay after expiry is refused as an unknown challenge).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("operator_certificates", (t) => {
    t.increments("id").primary();
    t.integer("operator_id").notNullable().references("id").inTable("operators");
    t.text("issuer").notNullable();
    t.text("subscriber_id").notNullable();
    t.text("bound_by").notNullable();
    t.timestamp("at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(["issuer", "subscriber_id"]);
    t.index(["operator_id"]);
  });
  await db.schema.createTable("operator_login_challenges", (t) => {
    t.text("nonce").primary();
    t.text("console").notNullable();
    t.text("session_id").notNullable();
    t.text("text").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable();
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.timestamp("used_at", { useTz: true });
    t.index(["expires_at"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
