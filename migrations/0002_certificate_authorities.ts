import type { Knex } from "knex";

/** CA hierarchy created by the key ceremony: the root and its issuing CAs, one row each. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("certificate_authorities", (t) => {
    t.increments("id").primary();
    t.text("name").notNullable().unique();
    t.text("kind").notNullable(); // root | issuing
    t.text("purpose").notNullable(); // root | sign | auth-person | auth-org
    t.integer("parent_id").references("id").inTable("certificate_authorities");
    t.text("key_label").notNullable().unique();
    t.binary("key_id").notNullable();
    t.text("key_algorithm").notNullable();
    t.text("serial_hex").notNullable();
    t.binary("subject_der").notNullable();
    t.binary("ski").notNullable();
    t.binary("certificate").notNullable();
    t.timestamp("not_before", { useTz: true }).notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.text("crl_url");
    t.jsonb("ceremony").notNullable(); // the reviewed ceremony entry this CA was made from
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`ALTER TABLE certificate_authorities ADD CONSTRAINT ca_kind CHECK (kind IN ('root','issuing'))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
