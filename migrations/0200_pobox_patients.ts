import { randomBytes } from "node:crypto";
import type { Knex } from "knex";

/**
 * Patients at the PO box (issue 15 §8): registration with the authentication certificate of the
 * My Number card (JPKI 利用者証明用電子証明書). Nothing here holds the 個人番号, a name or the JPKI
 * certificate itself.
 *
 * - pobox_pseudonym_keys: the HMAC key (32 random octets, made here once) from which a patient's
 *   pseudonym is derived over the JPKI certificate's issuer and serial number (src/pki/jpki.ts).
 * - pobox_patient_identities: one row per JPKI certificate a patient proved: its pseudonym (the
 *   keyed hash), the patient account, when the certificate expires. A renewed certificate is
 *   linked to the same account while the patient is signed in with the old one.
 * - pobox_patient_keys: the patient's encryption key: a self-signed certificate of the P-256 key
 *   their client generated (keyAgreement), its SPKI SHA-256, when registered.
 * - pobox_patient_challenges: the box's one-time challenges (SHA-256 of the value only), 5 minutes.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("pobox_pseudonym_keys", (t) => {
    t.integer("id").primary();
    t.binary("key").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db("pobox_pseudonym_keys").insert({ id: 1, key: randomBytes(32) });
  await db.schema.createTable("pobox_patient_identities", (t) => {
    t.text("pseudonym").primary();
    t.bigInteger("account_id").notNullable().references("id").inTable("pobox_accounts");
    t.text("jpki_issuer").notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.timestamp("registered_at", { useTz: true }).notNullable();
    t.index(["account_id"]);
  });
  await db.schema.createTable("pobox_patient_keys", (t) => {
    t.bigInteger("account_id").primary().references("id").inTable("pobox_accounts");
    t.binary("certificate").notNullable();
    t.binary("spki_sha256").notNullable();
    t.timestamp("registered_at", { useTz: true }).notNullable();
  });
  await db.schema.createTable("pobox_patient_challenges", (t) => {
    t.text("id").primary();
    t.binary("challenge_sha256").notNullable();
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.timestamp("used_at", { useTz: true });
    t.index(["expires_at"]);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
