import type { Knex } from "knex";

/**
 * Delegated OCSP responder certificates (RFC 6960 §4.2.2.2), one current per issuing CA, kept
 * after renewal. The key lives on the OCSP token under `key_label`; `key_hash` is the SHA-1 of the
 * responder's subjectPublicKey, the ResponderID byKey of every response it signs.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("ocsp_responders", (t) => {
    t.increments("id").primary();
    t.integer("ca_id").notNullable().references("id").inTable("certificate_authorities");
    t.text("key_label").notNullable().unique();
    t.binary("key_id").notNullable();
    t.text("key_algorithm").notNullable();
    t.binary("spki").notNullable();
    t.binary("key_hash").notNullable();
    t.text("serial_hex").notNullable();
    t.binary("certificate").notNullable();
    t.timestamp("not_before", { useTz: true }).notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(["ca_id", "serial_hex"]);
    t.index(["ca_id", "not_after"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
