import type { Knex } from "knex";

/** IC cards (PKCS#11 tokens). PINs are never stored: they leave once, in the PIN mailer. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("cards", (t) => {
    t.increments("id").primary();
    t.text("label").notNullable().unique();
    t.text("card_serial").notNullable().unique();
    t.text("status").notNullable().defaultTo("blank"); // blank | personalized
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("personalized_at", { useTz: true });
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
