import type { Knex } from "knex";

/**
 * LRA batches (受付バッチ): the applications a regional association approved, signed off by its
 * LRA manager and forwarded to the RA together. An application joins the association's open
 * batch when the LRA approves it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("lra_batches", (t) => {
    t.bigIncrements("id").primary();
    t.text("batch_no").notNullable().unique();
    t.integer("lra_id").notNullable().references("id").inTable("lras");
    t.text("state").notNullable(); // open | forwarded | received
    t.integer("version").notNullable().defaultTo(1);
    t.integer("created_by").notNullable().references("id").inTable("operators");
    t.integer("signed_off_by").references("id").inTable("operators");
    t.timestamp("forwarded_at", { useTz: true });
    t.integer("received_by").references("id").inTable("operators");
    t.timestamp("received_at", { useTz: true });
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  // At most one open batch per association: approvals all land in it.
  await db.raw(`CREATE UNIQUE INDEX lra_batches_one_open ON lra_batches (lra_id) WHERE state = 'open'`);
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_lra_batch FOREIGN KEY (lra_batch_id) REFERENCES lra_batches (id)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
