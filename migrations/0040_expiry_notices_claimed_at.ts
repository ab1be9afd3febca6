import type { Knex } from "knex";

/**
 * Expiry notices left in "sending" by a run that stopped (src/notices/expiry.ts): claimed_at is
 * when the row was last claimed, from the database clock — the start of the claiming run's lease.
 * A row still "sending" once its lease (NOTICE_LEASE_MS, 10 min) has run out is taken again by the
 * next run. message_id is now chosen when the notice is first claimed (a stable Message-ID, the
 * same for every attempt), no longer only known once sent. Existing rows: claimed_at = created_at.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("expiry_notices", (t) => {
    t.timestamp("claimed_at", { useTz: true });
  });
  await db("expiry_notices").update({ claimed_at: db.ref("created_at") });
  await db.raw(`ALTER TABLE expiry_notices ALTER COLUMN claimed_at SET NOT NULL, ALTER COLUMN claimed_at SET DEFAULT now()`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
