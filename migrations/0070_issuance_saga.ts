import type { Knex } from "knex";

/**
 * Issuance that survives crashes (issue 10 §1, §2, §8):
 *
 * - issuance_requests gets a lease: lease_token (fencing token, from issuance_lease_token_seq, new
 *   at every claim), lease_holder (host:pid, for people) and lease_expires_at (database clock). A
 *   worker writes only while its token is the row's and its lease is live; another worker takes an
 *   "issuing" request only once its lease has expired. card_generation counts the cards a request
 *   was bound to (a card found in an unknown state is put aside and the request gets a new one).
 *   Rows left "issuing" by an older version have no lease: they count as expired.
 * - issuance_card_keys records each step of personalising one profile onto a card before the next
 *   one is taken: planned (CKA_ID chosen), made (public key recorded), signed (certificate),
 *   written (on the card), removed (key pair deleted after a refusal), abandoned (card put aside).
 * - certificates.request_fingerprint: SHA-256 of what was asked under a request key (profile,
 *   issuing CA, subject, public key), so a replayed key with other input is refused.
 * - cards.status gains "inspect" (unknown state: a person must look before any reuse) and "void"
 *   (released clean by a withdrawn request); the column is free text, nothing to alter there.
 */
export async function up(db: Knex): Promise<void> {
  await db.raw("CREATE SEQUENCE IF NOT EXISTS issuance_lease_token_seq");
  await db.schema.alterTable("issuance_requests", (t) => {
    t.bigInteger("lease_token");
    t.text("lease_holder");
    t.timestamp("lease_expires_at", { useTz: true });
    t.integer("card_generation").notNullable().defaultTo(0);
  });
  await db.schema.createTable("issuance_card_keys", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("request_id").notNullable().references("id").inTable("issuance_requests");
    t.text("profile").notNullable();
    t.text("card_label").notNullable();
    t.text("key_label").notNullable();
    t.binary("key_id").notNullable(); // CKA_ID, chosen and recorded before the key pair is made
    t.binary("spki"); // SubjectPublicKeyInfo DER read back from the card once made
    t.bigInteger("certificate_id").references("id").inTable("certificates");
    t.text("step").notNullable(); // planned | made | signed | written | removed | abandoned
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["card_label"]);
  });
  // One live personalisation per request, profile and card.
  await db.raw(`CREATE UNIQUE INDEX issuance_card_keys_live ON issuance_card_keys (request_id, profile, card_label)
    WHERE step NOT IN ('removed', 'abandoned')`);
  await db.schema.alterTable("certificates", (t) => {
    t.binary("request_fingerprint");
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
