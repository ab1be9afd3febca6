import type { Knex } from "knex";

/**
 * Issue 14 §1, §2, issue 10 §6: SSO sessions bound to the login certificate, stable subjects and
 * token values no longer readable in the database.
 *
 * - sso_login_certificates: each certificate a person logged in with (its DER, the issuing CA's key
 *   identifier and serial for the revocation index, notAfter). oidc-provider's account id becomes
 *   "<person id>/<cert_ref>", so every session, grant and token names the certificate it rests on
 *   and is re-checked against it; `ended_at` is set once the SSO center has ended that
 *   certificate's sessions (revoked, on hold or expired).
 * - sso_oidc_payloads.account_id: the account id of a Session / Grant / token row, so a
 *   certificate's sessions and grants are found without reading every payload.
 * - sso_subjects: the `sub` each client has seen for a person (pairwise per client), so a service
 *   can name a person by the sub it saw (link API) and a sub never changes once seen. Seeded with
 *   the confirmed account ids earlier versions used as sub at 'linked' clients.
 * - sso_clients.backchannel_logout_uri: OIDC Back-Channel Logout 1.0 §2.2 registration.
 *
 * Protocol rows written by earlier versions are deleted: their account ids name no certificate
 * (they could not be re-checked) and their token values were stored in the clear (now only a
 * SHA-256 of each token value is the row key). Everyone logs in again once after the upgrade.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("sso_login_certificates", (t) => {
    t.text("cert_ref").primary();
    t.text("person_id").notNullable().references("id").inTable("sso_persons");
    t.text("issuer_key_id").notNullable();
    t.text("serial_hex").notNullable();
    t.binary("certificate").notNullable();
    t.timestamp("not_after", { useTz: true }).notNullable();
    t.timestamp("first_login_at", { useTz: true }).notNullable();
    t.timestamp("last_login_at", { useTz: true }).notNullable();
    t.timestamp("ended_at", { useTz: true });
    t.text("end_reason");
    t.index(["person_id"]);
  });
  await db.raw("CREATE INDEX sso_login_certificates_live ON sso_login_certificates (last_login_at) WHERE ended_at IS NULL");
  await db("sso_oidc_payloads").delete();
  await db.schema.alterTable("sso_oidc_payloads", (t) => {
    t.text("account_id");
    t.index(["account_id"]);
  });
  await db.schema.createTable("sso_subjects", (t) => {
    t.text("client_id").notNullable();
    t.text("sub").notNullable();
    t.text("person_id").notNullable().references("id").inTable("sso_persons");
    t.timestamp("first_seen_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(["client_id", "sub"]);
    t.unique(["client_id", "person_id"]);
  });
  // Earlier versions made a confirmed account id the sub at 'linked' clients: those clients have
  // seen it, so it stays the person's sub there.
  await db.raw(`INSERT INTO sso_subjects (client_id, sub, person_id, first_seen_at)
    SELECT l.client_id, l.account_id, l.person_id, coalesce(l.confirmed_at, now())
      FROM sso_account_links l JOIN sso_clients c ON c.client_id = l.client_id
     WHERE l.status = 'confirmed' AND c.account_mapping = 'linked'
    ON CONFLICT DO NOTHING`);
  await db.schema.alterTable("sso_clients", (t) => {
    t.text("backchannel_logout_uri");
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
