import type { Knex } from "knex";

/**
 * Issuance requests: created by one RA officer for an approved application, approved by a
 * different one (two-person rule, enforced here by a CHECK as well as in the service), then
 * claimed by an IA worker (FOR UPDATE SKIP LOCKED) and personalised onto a card. A failed request
 * keeps its error and can be retried; the card↔applicant binding is card_label.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("issuance_requests", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("application_id").notNullable().unique().references("id").inTable("applications");
    t.text("state").notNullable(); // requested | approved | issuing | issued | failed
    t.integer("version").notNullable().defaultTo(1);
    t.jsonb("profiles").notNullable(); // e.g. ["sign", "auth-person"]
    t.integer("created_by").notNullable().references("id").inTable("operators");
    t.integer("approved_by").references("id").inTable("operators");
    t.timestamp("approved_at", { useTz: true });
    t.text("card_label").unique();
    t.integer("attempts").notNullable().defaultTo(0);
    t.text("last_error");
    t.timestamp("issued_at", { useTz: true });
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["state"]);
  });
  await db.raw(`ALTER TABLE issuance_requests ADD CONSTRAINT issuance_requests_two_person
    CHECK (approved_by IS NULL OR approved_by <> created_by)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
