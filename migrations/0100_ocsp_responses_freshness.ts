import type { Knex } from "knex";

/**
 * Status never stale (issue 11 §2, §6):
 *   - `invalidated_at`: set by the revocation transaction itself (src/ia/revocation.ts) — a
 *     pre-signed response with it set is never served or exported; the responder signs live until
 *     the pre-signer re-signs the row (which clears it).
 *   - `written_at`: the database clock at the row's last write (signed, re-signed or invalidated):
 *     the watermark of the static export (src/ocsp/export.ts), so a pass reads only what changed.
 *   - `ocsp_export_dirs`: directories `hpki ocsp export --dir` registered, per host, which the
 *     status scheduler of that host keeps current.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("ocsp_responses", (t) => {
    t.timestamp("invalidated_at", { useTz: true });
    t.timestamp("written_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw("CREATE INDEX ocsp_responses_written ON ocsp_responses (written_at)");
  await db.raw("CREATE INDEX ocsp_responses_invalidated ON ocsp_responses (ca_id) WHERE invalidated_at IS NOT NULL");
  await db.schema.createTable("ocsp_export_dirs", (t) => {
    t.text("host").notNullable();
    t.text("dir").notNullable();
    t.timestamp("registered_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(["host", "dir"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
