import type { Knex } from "knex";

/**
 * The medical PO box (医療用私書箱, issue 15 §5–§6). The box keeps envelopes — CMS
 * AuthEnvelopedData, opaque DER it cannot open — and the minimum metadata: who sent, to whom, size,
 * times, state. Never a plaintext, never a private key.
 *
 * - pobox_accounts: a person by the subscriber id of their certificates (stable across renewals,
 *   unique at our CA), with the issuer, hcRole and organisation of their last sign-in through the
 *   SSO center; a facility (kind 'facility', organisation encryption); a patient (kind 'patient',
 *   issue 15 §8). A recipient's account exists from the first envelope addressed to them.
 * - pobox_messages: one envelope per row. A forward is a new row whose `parent_id` names the
 *   message forwarded (the chain) and whose encrypted content is byte-identical (`content_sha256`).
 *   `envelope` is set to NULL when the retention period ends (`erased_at`).
 * - pobox_deliveries: one per recipient: delivered → read (receipts), with the times.
 * - pobox_api_tokens: bearer tokens of the CLI after a card sign-in through the SSO center (the
 *   SHA-256 of the token only).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("pobox_accounts", (t) => {
    t.bigIncrements("id").primary();
    t.text("kind").notNullable();
    t.text("subscriber_id").notNullable();
    t.text("issuer");
    t.text("display_name");
    t.text("hc_role");
    t.text("organization");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("last_login_at", { useTz: true });
    t.unique(["kind", "subscriber_id"]);
  });
  await db.raw(`ALTER TABLE pobox_accounts ADD CONSTRAINT pobox_accounts_kind CHECK (kind IN ('person','facility','patient'))`);
  await db.schema.createTable("pobox_messages", (t) => {
    t.text("id").primary();
    t.bigInteger("sender_id").notNullable().references("id").inTable("pobox_accounts");
    t.text("document_class").notNullable();
    t.bigInteger("size").notNullable();
    t.binary("content_sha256").notNullable();
    t.binary("envelope");
    t.boolean("forward_allowed").notNullable();
    t.text("parent_id").references("id").inTable("pobox_messages");
    t.text("root_id").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable();
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.timestamp("erased_at", { useTz: true });
    t.index(["root_id"]);
    t.index(["expires_at"]);
  });
  await db.raw(`ALTER TABLE pobox_messages ADD CONSTRAINT pobox_messages_erased CHECK ((erased_at IS NULL) = (envelope IS NOT NULL))`);
  await db.schema.createTable("pobox_deliveries", (t) => {
    t.text("message_id").notNullable().references("id").inTable("pobox_messages");
    t.bigInteger("recipient_id").notNullable().references("id").inTable("pobox_accounts");
    t.text("state").notNullable();
    t.timestamp("delivered_at", { useTz: true }).notNullable();
    t.timestamp("read_at", { useTz: true });
    t.primary(["message_id", "recipient_id"]);
    t.index(["recipient_id", "state"]);
  });
  await db.raw(`ALTER TABLE pobox_deliveries ADD CONSTRAINT pobox_deliveries_state CHECK ((state = 'delivered' AND read_at IS NULL) OR (state = 'read' AND read_at IS NOT NULL))`);
  await db.schema.createTable("pobox_api_tokens", (t) => {
    t.binary("token_sha256").primary();
    t.bigInteger("account_id").notNullable().references("id").inTable("pobox_accounts");
    t.timestamp("created_at", { useTz: true }).notNullable();
    t.timestamp("expires_at", { useTz: true }).notNullable();
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
