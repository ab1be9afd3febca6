import type { Knex } from "knex";

/**
 * Append-only, hash-chained audit log (DESIGN §8). Each row's hash covers the previous row's hash,
 * so an edit or deletion behind the application's back breaks the chain; the database itself
 * refuses UPDATE, DELETE and TRUNCATE through triggers.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("audit_log", (t) => {
    t.bigIncrements("seq").primary();
    t.timestamp("at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text("actor").notNullable();
    t.text("role").notNullable();
    t.text("action").notNullable();
    t.text("object_type").notNullable();
    t.text("object_id").notNullable();
    t.jsonb("details").notNullable().defaultTo("{}");
    t.binary("prev_hash").notNullable();
    t.binary("hash").notNullable().unique();
  });
  // One statement per call: PGlite, like the extended query protocol, takes no multi-statement text.
  await db.raw(`CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`);
  await db.raw(`CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
  await db.raw(`CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
