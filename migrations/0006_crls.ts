import type { Knex } from "knex";

/**
 * Every CRL and ARL issued, kept (never deleted) so archived status can be shown later. The
 * crlNumber (RFC 5280 §5.2.3) is allocated as max + 1 while the issuing CA's row is locked, in the
 * same transaction that inserts this row; UNIQUE(ca_id, crl_number) is the last guard against a
 * second writer.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("crls", (t) => {
    t.bigIncrements("id").primary();
    t.integer("ca_id").notNullable().references("id").inTable("certificate_authorities");
    t.bigInteger("crl_number").notNullable();
    t.timestamp("this_update", { useTz: true }).notNullable();
    t.timestamp("next_update", { useTz: true }).notNullable();
    t.binary("der").notNullable();
    t.integer("entries").notNullable();
    t.binary("sha256").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(["ca_id", "crl_number"]);
  });
  await db.raw(`ALTER TABLE crls ADD CONSTRAINT crls_number_positive CHECK (crl_number > 0)`);
  // Stored out of line without compression: random serials barely compress, and pglz over a
  // 50 MB CRL would cost more than the CRL's own encoding.
  await db.raw(`ALTER TABLE crls ALTER COLUMN der SET STORAGE EXTERNAL`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
