import type { Knex } from "knex";

/**
 * Operators' TOTP secrets sealed under the operators' HSM sealing key (issue 10 §6,
 * src/operators/operator-secrets.ts): operators.totp_sealed holds the sealed secret (AES-GCM, bound
 * to the row by its AAD); totp_secret becomes nullable and is erased when a console or the CLI next
 * opens the sealing key (migrations do not open the HSM). A row holds exactly one of the two.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("operators", (t) => {
    t.binary("totp_sealed");
  });
  await db.raw("ALTER TABLE operators ALTER COLUMN totp_secret DROP NOT NULL");
  await db.raw("ALTER TABLE operators ADD CONSTRAINT operators_totp_one_form CHECK ((totp_secret IS NULL) <> (totp_sealed IS NULL))");
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
