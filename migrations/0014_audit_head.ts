import type { Knex } from "knex";

/**
 * The audit chain's head (hash of the last record) in a one-row table. Appending locks this row
 * (SELECT … FOR UPDATE), which both serialises appenders and returns the latest committed head
 * in one round trip — an advisory lock followed by a read of audit_log took two — and the new
 * records plus the new head go in one statement, so the lock is held one round trip less.
 * Every state change appends audit records, so this is on every transaction's commit path.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("audit_head", (t) => {
    t.integer("id").primary();
    t.binary("hash").notNullable();
  });
  await db.raw(`ALTER TABLE audit_head ADD CONSTRAINT audit_head_single_row CHECK (id = 1)`);
  await db.raw(`INSERT INTO audit_head (id, hash)
    SELECT 1, COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), decode(repeat('00', 32), 'hex'))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
