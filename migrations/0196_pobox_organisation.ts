import type { Knex } from "knex";

/**
 * Organisational encryption (組織暗号, issue 15 §7) at the PO box: proxy re-encryption (Umbral).
 *
 * - pobox_facilities: a facility's published organisation encryption key (Umbral public key,
 *   compressed SEC1) and the verifying key of its key holder (signs the kfrags).
 * - pobox_facility_members: who administers a facility ('admin') and who may be designated ('staff').
 * - pobox_pre_keys: a person's Umbral public key, and their secret key as an envelope to their
 *   card's encryption certificate (opaque to the box; opened only on the card).
 * - pobox_designations: per facility and document class, one designated person and the kfrag
 *   (re-encryption key) the box holds; revoking erases the kfrag (NULL) and records who and when.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("pobox_facilities", (t) => {
    t.bigInteger("account_id").primary().references("id").inTable("pobox_accounts");
    t.binary("pre_public_key").notNullable();
    t.binary("verifying_key").notNullable();
    t.timestamp("published_at", { useTz: true }).notNullable();
  });
  await db.schema.createTable("pobox_facility_members", (t) => {
    t.bigInteger("facility_id").notNullable().references("id").inTable("pobox_accounts");
    t.bigInteger("account_id").notNullable().references("id").inTable("pobox_accounts");
    t.text("role").notNullable();
    t.primary(["facility_id", "account_id"]);
  });
  await db.raw(`ALTER TABLE pobox_facility_members ADD CONSTRAINT pobox_members_role CHECK (role IN ('admin','staff'))`);
  await db.schema.createTable("pobox_pre_keys", (t) => {
    t.bigInteger("account_id").primary().references("id").inTable("pobox_accounts");
    t.binary("public_key").notNullable();
    t.binary("wrapped_secret").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable();
  });
  await db.schema.createTable("pobox_designations", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("facility_id").notNullable().references("id").inTable("pobox_accounts");
    t.text("document_class").notNullable();
    t.bigInteger("account_id").notNullable().references("id").inTable("pobox_accounts");
    t.binary("receiving_public_key").notNullable();
    t.binary("kfrag");
    t.text("created_by").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable();
    t.timestamp("revoked_at", { useTz: true });
    t.text("revoked_by");
  });
  await db.raw(`ALTER TABLE pobox_designations ADD CONSTRAINT pobox_designations_revoked CHECK ((revoked_at IS NULL) = (kfrag IS NOT NULL))`);
  await db.raw(`CREATE UNIQUE INDEX pobox_designations_active ON pobox_designations (facility_id, document_class, account_id) WHERE revoked_at IS NULL`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
