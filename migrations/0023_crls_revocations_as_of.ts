import type { Knex } from "knex";

/**
 * The database clock when a CRL's generator held the CA row lock: every revocation change with
 * an earlier revocations.updated_at is in that CRL (src/ia/crl-generation.ts). Null for CRLs
 * generated before this column existed (the scheduler then compares with this_update).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("crls", (t) => {
    t.timestamp("revocations_as_of", { useTz: true });
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
