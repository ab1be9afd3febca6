import type { Knex } from "knex";

/**
 * Scanned documents of an application (application form, identity document, licence copy, …).
 * The media type is the one sniffed from the bytes, never the browser's claim; the SHA-256 is
 * kept so a document can be shown to be the one reviewed. UNIQUE(application_id, sha256): the
 * same file uploaded twice is stored once.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("application_documents", (t) => {
    t.bigIncrements("id").primary();
    t.bigInteger("application_id").notNullable().references("id").inTable("applications");
    t.text("kind").notNullable();
    t.text("filename").notNullable();
    t.text("media_type").notNullable();
    t.integer("size_bytes").notNullable();
    t.binary("sha256").notNullable();
    t.binary("content").notNullable();
    t.integer("uploaded_by").notNullable().references("id").inTable("operators");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(["application_id", "sha256"]);
  });
  await db.raw(`ALTER TABLE application_documents ADD CONSTRAINT application_documents_media_type
    CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png'))`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
