import type { Knex } from "knex";

/**
 * Operator confirmations of hcRole table entries (issue 13 §9; HPKI-PROFILE §6.4): in production
 * an hcRole string not confirmed from real certificates is issued only after an operator has
 * compared the entry with the CP's code table and recorded it here, naming the CP version
 * (`hpki hcrole confirm <code> --cp-version X`, audited). One row per code; a later confirmation
 * (another CP version) replaces it, the audit log keeps every one.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("hcrole_confirmations", (t) => {
    t.text("code").primary();
    t.text("ja").notNullable();
    t.text("cp_version").notNullable();
    t.text("confirmed_by").notNullable();
    t.text("note");
    t.timestamp("confirmed_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
