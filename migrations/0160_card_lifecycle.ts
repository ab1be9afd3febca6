import type { Knex } from "knex";

/**
 * Card and certificate lifecycles (issue 13 §1; src/pipeline/card-lifecycle.ts,
 * certificate-lifecycle.ts). Constants are frozen here: this migration never reads lists from src.
 *
 * cards:
 *   - status values mapped onto the lifecycle: personalized → personalised; inspect (unknown
 *     state after a failed personalisation) → spoiled; void (released clean by a withdrawn
 *     request) → blank; active whose application has not been completed (receipt not yet accepted
 *     by the RA) → handed_over. blank, shipped, active stay. Any other value → spoiled.
 *     A CHECK constraint then holds the column to the lifecycle's states.
 *   - version, updated_at (lifecycle engine); replaces_card_id / replaced_by_card_id (a
 *     replacement card after loss or renewal, linked both ways).
 *   - card_events: the history shown on the card page; one "migrated" row per existing card.
 * certificates:
 *   - lifecycle_state (issued | on_hold | revoked | expired | superseded), mapped from the
 *     revocations table (an active certificateHold → on_hold, superseded → superseded, any other
 *     active revocation → revoked) and from notAfter (passed → expired); intents get 'issued'.
 *   - certificate_events, with one "migrated" row per certificate not in 'issued'.
 */
const CARD_STATES = ["blank", "personalised", "shipped", "handed_over", "active", "pin_locked", "suspended", "revoked", "returned", "destroyed", "spoiled"];
const CERTIFICATE_STATES = ["issued", "on_hold", "revoked", "expired", "superseded"];

/** A SQL list of the constant identifiers above (DDL takes no bind parameters). */
function sqlList(values: string[]): string {
  if (!values.every((v) => /^[a-z_]+$/.test(v))) throw new Error("state names are lower-case identifiers");
  return values.map((v) => `'${v}'`).join(", ");
}

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("cards", (t) => {
    t.integer("version").notNullable().defaultTo(1);
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.integer("replaces_card_id").references("id").inTable("cards");
    t.integer("replaced_by_card_id").references("id").inTable("cards");
  });
  const before = await db("cards").select("id", "status");
  await db("cards").where({ status: "personalized" }).update({ status: "personalised" });
  await db("cards").where({ status: "inspect" }).update({ status: "spoiled" });
  await db("cards").where({ status: "void" }).update({ status: "blank" });
  await db.raw(`UPDATE cards c SET status = 'handed_over' WHERE c.status = 'active' AND EXISTS (
      SELECT 1 FROM issuance_requests ir JOIN applications a ON a.id = ir.application_id
       WHERE ir.card_label = c.label AND a.state <> 'completed')`);
  await db("cards").whereNotIn("status", CARD_STATES).update({ status: "spoiled" });
  await db.raw(`ALTER TABLE cards ADD CONSTRAINT cards_status CHECK (status IN (${sqlList(CARD_STATES)}))`);

  await db.schema.createTable("card_events", (t) => {
    t.bigIncrements("id").primary();
    t.integer("card_id").notNullable().references("id").inTable("cards");
    t.text("transition").notNullable();
    t.text("from_state");
    t.text("to_state").notNullable();
    t.text("event").notNullable();
    t.text("actor").notNullable();
    t.text("role").notNullable();
    t.jsonb("details").notNullable().defaultTo("{}");
    t.timestamp("at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["card_id", "at"]);
  });
  const priorStatus = new Map(before.map((r) => [Number(r.id), String(r.status)]));
  const now = await db("cards").select("id", "status", "created_at");
  if (now.length) {
    await db("card_events").insert(now.map((r) => ({
      card_id: r.id, transition: "migrated", from_state: null, to_state: r.status, event: "card.migrated",
      actor: "system:migration", role: "system", details: JSON.stringify({ previousStatus: priorStatus.get(Number(r.id)) ?? null }),
    })));
  }

  await db.schema.alterTable("certificates", (t) => {
    t.text("lifecycle_state").notNullable().defaultTo("issued");
  });
  await db.raw(`UPDATE certificates c SET lifecycle_state = CASE
      WHEN r.reason = 'certificateHold' THEN 'on_hold'
      WHEN r.reason = 'superseded' THEN 'superseded'
      ELSE 'revoked' END
    FROM revocations r WHERE r.certificate_id = c.id AND r.released_at IS NULL`);
  await db.raw(`UPDATE certificates SET lifecycle_state = 'expired' WHERE lifecycle_state IN ('issued', 'on_hold') AND status = 'issued' AND not_after < now()`);
  await db.raw(`ALTER TABLE certificates ADD CONSTRAINT certificates_lifecycle_state CHECK (lifecycle_state IN (${sqlList(CERTIFICATE_STATES)}))`);
  await db.schema.createTable("certificate_events", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("certificate_id").notNullable().references("id").inTable("certificates");
    t.text("transition").notNullable();
    t.text("from_state");
    t.text("to_state").notNullable();
    t.text("event").notNullable();
    t.text("actor").notNullable();
    t.text("role").notNullable();
    t.jsonb("details").notNullable().defaultTo("{}");
    t.timestamp("at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["certificate_id", "at"]);
  });
  await db.raw(`INSERT INTO certificate_events (certificate_id, transition, from_state, to_state, event, actor, role)
    SELECT id, 'migrated', NULL, lifecycle_state, 'certificate.migrated', 'system:migration', 'system' FROM certificates
     WHERE lifecycle_state <> 'issued'`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
