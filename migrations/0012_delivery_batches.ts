import type { Knex } from "knex";

/**
 * Delivery batches (配送バッチ): personalised cards the IA ships to one regional association
 * (or, for applications taken by the RA directly, to the RA's desk: lra_id NULL), with a packing
 * list and one receipt form (受領書) per card.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("delivery_batches", (t) => {
    t.bigIncrements("id").primary();
    t.text("batch_no").notNullable().unique();
    t.integer("lra_id").references("id").inTable("lras");
    t.text("state").notNullable(); // prepared | shipped | received
    t.integer("version").notNullable().defaultTo(1);
    t.integer("created_by").notNullable().references("id").inTable("operators");
    t.timestamp("shipped_at", { useTz: true });
    t.integer("received_by").references("id").inTable("operators");
    t.timestamp("received_at", { useTz: true });
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_delivery_batch FOREIGN KEY (delivery_batch_id) REFERENCES delivery_batches (id)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
