import type { Knex } from "knex";

/**
 * Card PINs after handover (issue 13 §2, §8):
 *
 * - card_so_pins: each card's SO PIN, sealed (AES-GCM inside the HSM) under the IA token's card
 *   PIN sealing key, AAD "cards.so_pin:<card id>" (src/ia/card-pins.ts). Never in the clear: the
 *   0600 slip files earlier versions wrote under $HPKI_HOME/mail are sealed into this table and
 *   deleted by the IA at start or by `hpki cards migrate-so-pins` (migrations do not open the HSM).
 * - pin_mailers: PIN mailers (暗証番号通知書) to print and send. An unblock mailer holds its new PIN
 *   sealed (AAD "pin_mailers.pin:<mailer_no>") until it is printed, then the sealed value is
 *   erased; an initial mailer's PIN is in the mailer file the IA holds until printing. Printed and
 *   sent dates are recorded (sent apart from the card, on another day).
 * - pin_unblock_requests: PINロック解除 requests taken at the LRA desk (face to face) or the RA
 *   (by mail), approved by an RA approver who is not the requester, executed at the IA.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("card_so_pins", (t) => {
    t.integer("card_id").primary().references("id").inTable("cards");
    t.binary("so_pin_sealed").notNullable();
    t.text("source").notNullable(); // provisioned | slip-file
    t.timestamp("sealed_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.createTable("pin_mailers", (t) => {
    t.bigIncrements("id").primary();
    t.text("mailer_no").notNullable().unique();
    t.integer("card_id").notNullable().references("id").inTable("cards");
    t.text("kind").notNullable(); // initial | unblock
    t.text("state").notNullable().defaultTo("pending"); // pending | printed | sent
    t.binary("pin_sealed");
    t.text("created_by").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text("printed_by");
    t.timestamp("printed_at", { useTz: true });
    t.text("sent_by");
    t.date("sent_on");
    t.boolean("sent_same_day_as_card");
    t.index(["state"]);
  });
  await db.raw(`ALTER TABLE pin_mailers ADD CONSTRAINT pin_mailers_state CHECK (state IN ('pending', 'printed', 'sent'))`);
  await db.raw(`ALTER TABLE pin_mailers ADD CONSTRAINT pin_mailers_kind CHECK (kind IN ('initial', 'unblock'))`);
  // The PIN is held only until printed.
  await db.raw(`ALTER TABLE pin_mailers ADD CONSTRAINT pin_mailers_erased CHECK (state = 'pending' OR pin_sealed IS NULL)`);
  await db.schema.createTable("pin_unblock_requests", (t) => {
    t.bigIncrements("id").primary();
    t.text("request_no").notNullable().unique();
    t.integer("card_id").notNullable().references("id").inTable("cards");
    t.integer("lra_id").references("id").inTable("lras");
    t.text("channel").notNullable(); // lra_desk | ra_mail
    t.text("state").notNullable(); // requested | approved | rejected | done
    t.integer("version").notNullable().defaultTo(1);
    t.jsonb("identity_check");
    t.text("documents_note");
    t.text("reason");
    t.integer("requested_by").notNullable().references("id").inTable("operators");
    t.integer("approved_by").references("id").inTable("operators");
    t.timestamp("approved_at", { useTz: true });
    t.text("executed_by");
    t.timestamp("executed_at", { useTz: true });
    t.bigInteger("pin_mailer_id").references("id").inTable("pin_mailers");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`ALTER TABLE pin_unblock_requests ADD CONSTRAINT pin_unblock_two_person CHECK (approved_by IS NULL OR approved_by <> requested_by)`);
  await db.raw(`ALTER TABLE pin_unblock_requests ADD CONSTRAINT pin_unblock_channel CHECK (channel IN ('lra_desk', 'ra_mail'))`);
  // One open request per card.
  await db.raw(`CREATE UNIQUE INDEX pin_unblock_requests_open ON pin_unblock_requests (card_id) WHERE state IN ('requested', 'approved')`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
