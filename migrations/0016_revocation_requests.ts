import type { Knex } from "knex";

/**
 * Revocation requests (失効申請; DESIGN §3, HPKI-PROFILE §9.5): the RA-side record of "revoke this
 * certificate / every certificate on this card", its approval by a second officer, and its
 * execution by the IA worker, which writes the `revocations` rows (src/ia/revocation-worker.ts).
 * The state machine is src/pipeline/revocation-request.ts.
 *
 * - target: one certificate (certificate_id, with ca_name + serial_hex as the operator gave them)
 *   or a whole card (card_label: every certificate on it, resolved when the IA executes).
 * - channel: subscriber via the LRA, subscriber via the RA, the RA on its own initiative, or a
 *   phone call (the emergency path for a lost card): phone ⇔ emergency.
 * - two people: approved_by ≠ created_by, and the after-the-fact reviewer of an emergency request
 *   ≠ its creator (CHECKs below, as well as the guards in the machine).
 * - lra_id: the subscriber's regional association (scope of LRA operators); null for RA-desk
 *   subscribers.
 * - one open (requested/approved) non-emergency request per target; an emergency request is never
 *   blocked by a pending ordinary one.
 */
export async function up(db: Knex): Promise<void> {
  await db.raw(`CREATE SEQUENCE revocation_request_no_seq`);
  await db.schema.createTable("revocation_requests", (t) => {
    t.bigIncrements("id").primary();
    t.text("request_no").notNullable().unique()
      .defaultTo(db.raw(`'R' || to_char(now() AT TIME ZONE 'Asia/Tokyo', 'YYYY') || '-' || lpad(nextval('revocation_request_no_seq')::text, 6, '0')`));
    t.text("state").notNullable(); // requested | approved | executed | rejected | failed
    t.integer("version").notNullable().defaultTo(1);
    t.text("target_kind").notNullable(); // certificate | card
    t.bigInteger("certificate_id").references("id").inTable("certificates");
    t.text("ca_name");
    t.text("serial_hex");
    t.text("card_label");
    t.bigInteger("application_id").references("id").inTable("applications");
    t.text("subscriber_id");
    t.integer("lra_id").references("id").inTable("lras");
    t.text("channel").notNullable();
    t.text("reason").notNullable();
    t.timestamp("invalidity_date", { useTz: true });
    t.text("grounds").notNullable();
    t.boolean("emergency").notNullable().defaultTo(false);
    t.text("caller_verification");
    t.text("review_state"); // pending | confirmed | questioned (emergency requests only)
    t.integer("reviewed_by").references("id").inTable("operators");
    t.timestamp("reviewed_at", { useTz: true });
    t.text("review_note");
    t.integer("created_by").notNullable().references("id").inTable("operators");
    t.integer("approved_by").references("id").inTable("operators");
    t.timestamp("approved_at", { useTz: true });
    t.text("decision_reason");
    t.timestamp("executed_at", { useTz: true });
    t.text("executed_by");
    t.jsonb("results");
    t.integer("attempts").notNullable().defaultTo(0);
    t.text("last_error");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["state"]);
    t.index(["card_label"]);
    t.index(["certificate_id"]);
    t.index(["lra_id", "state"]);
  });
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_state
    CHECK (state IN ('requested', 'approved', 'executed', 'rejected', 'failed'))`);
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_target CHECK (
    (target_kind = 'certificate' AND certificate_id IS NOT NULL AND ca_name IS NOT NULL AND serial_hex IS NOT NULL)
    OR (target_kind = 'card' AND card_label IS NOT NULL AND certificate_id IS NULL))`);
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_channel
    CHECK (channel IN ('subscriber_lra', 'subscriber_ra', 'ra_initiative', 'phone'))`);
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_reason CHECK (reason IN
    ('unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'removeFromCRL'))`);
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_emergency CHECK (
    emergency = (channel = 'phone')
    AND (emergency = (review_state IS NOT NULL))
    AND (review_state IS NULL OR review_state IN ('pending', 'confirmed', 'questioned'))
    AND (NOT emergency OR caller_verification IS NOT NULL))`);
  await db.raw(`ALTER TABLE revocation_requests ADD CONSTRAINT revocation_requests_two_person CHECK (
    (approved_by IS NULL OR approved_by <> created_by) AND (reviewed_by IS NULL OR reviewed_by <> created_by))`);
  await db.raw(`CREATE UNIQUE INDEX revocation_requests_one_open_per_target
    ON revocation_requests ((coalesce('certificate:' || certificate_id::text, 'card:' || card_label)))
    WHERE state IN ('requested', 'approved') AND NOT emergency`);
  await db.raw(`CREATE INDEX revocation_requests_review_pending ON revocation_requests (created_at) WHERE review_state = 'pending'`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
