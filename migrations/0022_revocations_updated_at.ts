import type { Knex } from "knex";

/**
 * When a revocations row last changed (revoked, held, hold made permanent, released), from the
 * database clock after the CA row lock (src/ia/revocation.ts). The CRL scheduler asks "any change
 * newer than the last CRL?" and the OCSP pre-signer "which statuses changed lately?" through it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("revocations", (t) => {
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`CREATE INDEX revocations_updated ON revocations (ca_id, updated_at)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
