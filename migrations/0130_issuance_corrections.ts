import type { Knex } from "knex";

/**
 * Corrections of a failed issuance request (issue 12 §1): the RA officer who last corrected the
 * application of a failed request (corrected_by, corrected_at). A corrected request goes back for
 * approval, and neither its creator nor its corrector may approve it (two-person rule: the
 * approval attests the data as corrected). The CHECK mirrors issuance_requests_two_person.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("issuance_requests", (t) => {
    t.integer("corrected_by").references("id").inTable("operators");
    t.timestamp("corrected_at", { useTz: true });
  });
  await db.raw(`ALTER TABLE issuance_requests ADD CONSTRAINT issuance_requests_corrector_not_approver
    CHECK (approved_by IS NULL OR corrected_by IS NULL OR approved_by <> corrected_by)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
