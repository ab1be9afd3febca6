import type { Knex } from "knex";

/**
 * Card replacement after handover (issue 13 §3–§5; DESIGN §3): a reissue after loss or theft, a
 * renewal and a change of the registered particulars are each a pipeline record in `applications`
 * that replaces a card, so they reuse the whole IA → delivery → handover path.
 *
 * - kind: new | renewal | reissue (loss/theft: no new application form, the verified data reused)
 *   | change (記載事項変更: name change, manager role gained or lost).
 * - replaces_application_id / replaces_card_label: the subscriber's previous record and the card
 *   the new one replaces (set for renewal, reissue and change; the reverse link is a query).
 * - change_reason: loss | theft (reissue), name_change | role_gained | role_lost (change), renewal.
 * - old_card_revocation_request_id: the revocation request of the replaced card — filed when a
 *   loss reissue starts (keyCompromise), or at the new card's handover (superseded /
 *   affiliationChanged).
 * Holds its own constants (never imports live lists from src).
 */
const KINDS = ["new", "renewal", "reissue", "change"];
const REASONS = ["loss", "theft", "name_change", "role_gained", "role_lost", "renewal"];

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("applications", (t) => {
    t.text("kind").notNullable().defaultTo("new");
    t.bigInteger("replaces_application_id").references("id").inTable("applications");
    t.text("replaces_card_label");
    t.text("change_reason");
    t.bigInteger("old_card_revocation_request_id").references("id").inTable("revocation_requests");
    t.index(["replaces_card_label"]);
    t.index(["replaces_application_id"]);
  });
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_kind CHECK (kind IN (${KINDS.map((k) => `'${k}'`).join(", ")}))`);
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_change_reason CHECK (change_reason IS NULL OR change_reason IN (${REASONS.map((k) => `'${k}'`).join(", ")}))`);
  await db.raw(`ALTER TABLE applications ADD CONSTRAINT applications_replacement_links CHECK (
    (kind = 'new') = (replaces_card_label IS NULL) AND (kind IN ('new', 'renewal') OR (replaces_application_id IS NOT NULL AND change_reason IS NOT NULL)))`);
  // Renewals taken before this migration: the card they replace is their previous application's.
  await db.raw(`UPDATE applications a SET kind = 'renewal', change_reason = 'renewal', replaces_application_id = a.renewal_of,
    replaces_card_label = (SELECT ir.card_label FROM issuance_requests ir WHERE ir.application_id = a.renewal_of)
    WHERE a.renewal_of IS NOT NULL AND EXISTS (SELECT 1 FROM issuance_requests ir WHERE ir.application_id = a.renewal_of AND ir.card_label IS NOT NULL)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
