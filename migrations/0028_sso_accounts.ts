import type { Knex } from "knex";

/**
 * Persons known to the SSO center and their per-service accounts (DESIGN §7). A person is
 * (issuer, subscriber id): the issuing CA's subject DN and the certificate subject's serialNumber,
 * which stays the same when the certificate is renewed. Names, hcRole and organisation are those of
 * the last certificate used. An account link is asked for by the person ('requested') and
 * confirmed by the service ('confirmed'); a service account id belongs to at most one person.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_persons", (t) => {
    t.text("id").primary();
    t.text("issuer").notNullable();
    t.text("subscriber_id").notNullable();
    t.text("name_latin");
    t.text("name_kanji");
    t.text("organization_latin");
    t.text("organization_kanji");
    t.text("hc_role");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("last_login_at", { useTz: true });
    t.unique(["issuer", "subscriber_id"]);
  });
  await db.schema.createTable("sso_account_links", (t) => {
    t.bigIncrements("id").primary();
    t.text("person_id").notNullable().references("id").inTable("sso_persons");
    t.text("client_id").notNullable().references("client_id").inTable("sso_clients");
    t.text("account_id").notNullable();
    t.text("status").notNullable();
    t.timestamp("requested_at", { useTz: true }).notNullable();
    t.timestamp("confirmed_at", { useTz: true });
    t.text("confirmed_by");
    t.unique(["person_id", "client_id"]);
    t.unique(["client_id", "account_id"]);
  });
  await db.raw(`ALTER TABLE sso_account_links ADD CONSTRAINT sso_links_status CHECK (status IN ('requested','confirmed'))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
