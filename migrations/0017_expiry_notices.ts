import type { Knex } from "knex";

/**
 * Expiry notices (有効期限のお知らせ) sent 90, 30 and 7 days before a certificate's notAfter
 * (src/notices/expiry.ts). One row per (subject, threshold): the unique key makes a notice
 * idempotent however often or from however many processes the daily run is started. `subject_key`
 * is "card:<label>" for the certificates on one card (one mail for the card) or
 * "certificate:<ca>:<serial>" for a certificate not on a card.
 *
 * state: sending (claimed, the mail is being handed to the transport) → sent | failed (retried
 * by the next run). No secrets: only the address, the certificates concerned and the transport's
 * message id are kept.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("expiry_notices", (t) => {
    t.bigIncrements("id").primary();
    t.text("subject_key").notNullable();
    t.integer("threshold_days").notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.bigInteger("application_id").references("id").inTable("applications");
    t.text("email").notNullable();
    t.jsonb("certificates").notNullable();
    t.text("state").notNullable();
    t.text("message_id");
    t.text("last_error");
    t.integer("attempts").notNullable().defaultTo(0);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("sent_at", { useTz: true });
    t.unique(["subject_key", "threshold_days"]);
    t.index(["state"]);
  });
  await db.raw(`ALTER TABLE expiry_notices ADD CONSTRAINT expiry_notices_state CHECK (state IN ('sending', 'sent', 'failed'))`);
  await db.raw(`ALTER TABLE expiry_notices ADD CONSTRAINT expiry_notices_threshold CHECK (threshold_days > 0)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
