import type { Knex } from "knex";

/**
 * Receipts (受領書): one per handed-over card. The receipt number is random (it is printed as a
 * QR code on the form); the LRA records the handover with the identity check made at the desk
 * and the scanned signed form; the RA reviews it, which completes the application.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("receipts", (t) => {
    t.bigIncrements("id").primary();
    t.text("receipt_no").notNullable().unique();
    t.bigInteger("application_id").notNullable().unique().references("id").inTable("applications");
    t.bigInteger("delivery_batch_id").notNullable().references("id").inTable("delivery_batches");
    t.text("state").notNullable(); // issued | recorded | accepted | returned
    t.integer("version").notNullable().defaultTo(1);
    t.jsonb("handover_check");
    t.bigInteger("signed_document_id").references("id").inTable("application_documents");
    t.integer("recorded_by").references("id").inTable("operators");
    t.timestamp("recorded_at", { useTz: true });
    t.integer("reviewed_by").references("id").inTable("operators");
    t.timestamp("reviewed_at", { useTz: true });
    t.text("review_note");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
