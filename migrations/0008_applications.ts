import type { Knex } from "knex";

/**
 * Applications (利用申込書) for HPKI certificates: the applicant as entered by the LRA or the RA,
 * the reviews recorded on it, and its state in the registration pipeline (src/pipeline/application.ts).
 *
 * One open application per licence: a partial unique index over (qualification,
 * licence_number) for every state that is not terminal makes a duplicate application fail in
 * the database, whichever process tries. `idempotency_key` (a token issued with the intake form)
 * makes a double-submitted form create nothing twice.
 */
export async function up(db: Knex): Promise<void> {
  await db.raw(`CREATE SEQUENCE application_no_seq`);
  await db.schema.createTable("applications", (t) => {
    t.bigIncrements("id").primary();
    t.text("application_no").notNullable().unique()
      .defaultTo(db.raw(`'A' || to_char(now() AT TIME ZONE 'Asia/Tokyo', 'YYYY') || '-' || lpad(nextval('application_no_seq')::text, 6, '0')`));
    t.text("channel").notNullable(); // lra | ra_desk | ra_mail
    t.integer("lra_id").references("id").inTable("lras");
    t.text("state").notNullable();
    t.integer("version").notNullable().defaultTo(1);
    t.text("idempotency_key").unique();
    // Applicant (NFC-normalised by the service before insert).
    t.text("name_kanji").notNullable();
    t.text("name_kana").notNullable();
    t.text("name_latin").notNullable();
    t.date("birth_date").notNullable();
    t.text("postal_code").notNullable();
    t.text("address").notNullable();
    t.text("phone").notNullable();
    t.text("email").notNullable();
    // Qualification: the hcRole code (policies/hcrole-codes.yaml) and the national licence.
    t.text("qualification").notNullable();
    t.text("licence_number").notNullable();
    t.date("licence_date").notNullable();
    t.text("organization_kanji");
    t.text("organization_latin");
    // Manager hcRole (e.g. "Director of Hospital"): the certificate then carries it and OU=Director.
    t.text("manager_role");
    t.boolean("request_sign").notNullable();
    t.boolean("request_auth").notNullable();
    // Reviews: face-to-face identity check and the licence-register comparison, as recorded.
    t.jsonb("identity_check");
    t.jsonb("licence_check");
    t.text("decision_reason");
    // CA-assigned subscriber identifier (subject serialNumber), set at RA approval.
    t.text("subscriber_id"); // kept by renewals (renewal_of), so not unique
    t.index(["subscriber_id"]);
    t.bigInteger("lra_batch_id");
    t.bigInteger("delivery_batch_id");
    t.bigInteger("renewal_of").references("id").inTable("applications");
    t.integer("created_by").notNullable().references("id").inTable("operators");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["lra_id", "state"]);
    t.index(["state"]);
    t.index(["name_kana"]);
  });
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_channel CHECK (channel IN ('lra', 'ra_desk', 'ra_mail'))`);
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_lra_channel CHECK ((channel = 'lra') = (lra_id IS NOT NULL))`);
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_requests_something CHECK (request_sign OR request_auth)`);
  await db.raw(`CREATE UNIQUE INDEX applications_one_open_per_licence ON applications (qualification, licence_number)
    WHERE state NOT IN ('lra_rejected', 'ra_rejected', 'withdrawn', 'completed')`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
