import type { Knex } from "knex";

/**
 * Issued certificates and their issuance intents (DESIGN §4). A row is written with status
 * 'intent' and the exact tbsCertificate before the HSM signs; signing then fills `der`. A crash in
 * between is healed by re-signing the stored tbsCertificate, so there is never a signed certificate
 * without a row, nor two certificates for one request.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("certificates", (t) => {
    t.bigIncrements("id").primary();
    t.integer("ca_id").notNullable().references("id").inTable("certificate_authorities");
    t.text("serial_hex").notNullable();
    t.text("profile").notNullable();
    t.text("status").notNullable(); // intent | issued
    t.text("request_key").unique(); // idempotency key of the issuance request
    t.binary("tbs").notNullable();
    t.binary("tbs_sha256").notNullable();
    t.binary("der");
    t.text("subscriber_id");
    t.text("hc_role");
    t.jsonb("subject").notNullable();
    t.text("card_label");
    t.binary("card_key_id");
    t.timestamp("not_before", { useTz: true }).notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("issued_at", { useTz: true });
    t.unique(["ca_id", "serial_hex"]); // RFC 5280 §4.1.2.2: unique per issuer
    t.index(["subscriber_id"]);
  });
  await db.raw(`ALTER TABLE certificates ADD CONSTRAINT certificates_status
    CHECK ((status = 'intent' AND der IS NULL) OR (status = 'issued' AND der IS NOT NULL))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
