import type { Knex } from "knex";

/**
 * Issue 15 §1: an application may also ask for an encryption (enc) certificate, issued onto the
 * card beside the signature and authentication certificates. Only beside one of them: the check
 * "request_sign OR request_auth" of 0008 stays.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("applications", (t) => {
    t.boolean("request_enc").notNullable().defaultTo(false);
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
