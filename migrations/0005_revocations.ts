import type { Knex } from "knex";

/**
 * Revocations (DESIGN §5, RFC 5280 §5.3): one row per revoked certificate, in its own table so a
 * CRL is one indexed scan. `serial` is the INTEGER magnitude without leading zeros; CRL entries are
 * sorted numerically by (octet_length(serial), serial), the index below. An end-entity revocation
 * points at `certificates`; a revoked issuing-CA certificate (for the root's ARL) points at
 * `certificate_authorities` instead, because CA certificates live there. A certificateHold released
 * by removeFromCRL keeps its row with `released_at` set and leaves the next CRL.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("revocations", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("certificate_id").unique().references("id").inTable("certificates");
    t.integer("subject_ca_id").unique().references("id").inTable("certificate_authorities");
    t.integer("ca_id").notNullable().references("id").inTable("certificate_authorities");
    t.text("serial_hex").notNullable();
    t.binary("serial").notNullable();
    t.text("reason").notNullable();
    t.timestamp("revoked_at", { useTz: true }).notNullable();
    t.timestamp("invalidity_date", { useTz: true });
    t.text("actor").notNullable();
    // The certificate's notAfter, copied so the CRL can drop expired entries without a join.
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.timestamp("released_at", { useTz: true });
    t.unique(["ca_id", "serial_hex"]);
  });
  await db.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_subject CHECK (num_nonnulls(certificate_id, subject_ca_id) = 1)`);
  await db.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_reason CHECK (reason IN
    ('unspecified','keyCompromise','cACompromise','affiliationChanged','superseded','cessationOfOperation','certificateHold','privilegeWithdrawn','aACompromise'))`);
  await db.raw(`ALTER TABLE revocations ADD CONSTRAINT revocations_release CHECK (released_at IS NULL OR reason = 'certificateHold')`);
  // CRL order, covering every column the CRL reads, so generation is an index-only scan.
  await db.raw(`CREATE INDEX revocations_crl_order ON revocations (ca_id, octet_length(serial), serial)
    INCLUDE (revoked_at, reason, invalidity_date, released_at, not_after)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
