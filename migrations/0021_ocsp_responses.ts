import type { Knex } from "knex";

/**
 * Pre-signed OCSP responses (DESIGN §5): one row per issued certificate, holding the complete
 * OCSPResponse DER for a SHA-1 and for a SHA-256 CertID (a response must name the CertID as
 * asked). `status_changed_at` moves only when status, revocationTime or revocationReason change,
 * so responders can drop cached copies of exactly those; a refresh for freshness alone leaves it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("ocsp_responses", (t) => {
    t.integer("ca_id").notNullable().references("id").inTable("certificate_authorities");
    t.text("serial_hex").notNullable();
    t.integer("responder_id").notNullable().references("id").inTable("ocsp_responders");
    t.text("status").notNullable();
    t.timestamp("revocation_time", { useTz: true });
    t.text("revocation_reason");
    t.timestamp("this_update", { useTz: true }).notNullable();
    t.timestamp("next_update", { useTz: true }).notNullable();
    t.binary("der_sha1").notNullable();
    t.binary("der_sha256").notNullable();
    t.timestamp("status_changed_at", { useTz: true }).notNullable();
    t.primary(["ca_id", "serial_hex"]);
    t.index(["next_update"]);
    t.index(["status_changed_at"]);
  });
  await db.raw(`ALTER TABLE ocsp_responses ADD CONSTRAINT ocsp_responses_status CHECK
    ((status = 'good' AND revocation_time IS NULL) OR (status = 'revoked' AND revocation_time IS NOT NULL))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
