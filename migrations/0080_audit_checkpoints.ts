import type { Knex } from "knex";

/**
 * Signed checkpoints of the audit log (issue 10 §5, src/audit/checkpoint.ts): the head (seq and
 * hash of the last record) at a moment, signed with the audit key in the HSM as CMS SignedData.
 * Append-only like audit_log (the same refusing trigger function, migrations/0001): a database
 * owner who disables it can delete checkpoints, which is why auditors keep copies (published by
 * the repository role at /audit/checkpoints).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("audit_checkpoints", (t) => {
    t.bigIncrements("id").primary();
    /** seq of the last record covered (0 for an empty log). */
    t.bigInteger("seq").notNullable();
    /** hash of that record (32 zero bytes for an empty log). */
    t.binary("head_hash").notNullable();
    t.timestamp("signed_at", { useTz: true }).notNullable();
    /** CMS SignedData DER (content: the checkpoint JSON; signer certificate included). */
    t.binary("cms").notNullable();
    /** SHA-256 hex of the signer certificate, for listings. */
    t.text("signer_sha256").notNullable();
  });
  await db.raw("CREATE INDEX audit_checkpoints_seq ON audit_checkpoints (seq)");
  await db.raw(`CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
  await db.raw(`CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
