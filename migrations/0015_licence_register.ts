import type { Knex } from "knex";

/**
 * The national licence register (免許 register) the LRA and RA check applications against
 * (HPKI-PROFILE §9.2, 資格確認), loaded with `hpki licenses import`. One row per licence:
 * qualification (hcRole code) + registration number (医籍登録番号 etc., canonical: digits without
 * leading zeros) is the key. Each import is one licence_imports row naming the file by SHA-256;
 * a register row points at the import that last wrote it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("licence_imports", (t) => {
    t.bigIncrements("id").primary();
    t.text("file_sha256").notNullable();
    t.integer("rows").notNullable();
    t.integer("inserted").notNullable();
    t.integer("updated").notNullable();
    t.integer("unchanged").notNullable();
    t.text("actor").notNullable();
    t.timestamp("at", { useTz: true }).notNullable();
  });
  await db.schema.createTable("licence_register", (t) => {
    t.bigIncrements("id").primary();
    t.text("qualification").notNullable();
    t.text("registration_number").notNullable();
    t.date("registration_date").notNullable();
    t.text("name_kanji").notNullable();
    t.text("name_kana").notNullable();
    t.date("birth_date").notNullable();
    t.timestamp("imported_at", { useTz: true }).notNullable();
    t.bigInteger("import_id").notNullable().references("id").inTable("licence_imports");
    t.unique(["qualification", "registration_number"]);
  });
  // The importer writes canonical numbers; the database refuses any other form.
  await db.raw(`ALTER TABLE licence_register ADD CONSTRAINT licence_register_number CHECK (registration_number ~ '^[1-9][0-9]{0,9}$')`);
  // RA search by name (issue 3: search by name, licence number).
  await db.raw(`CREATE INDEX licence_register_name_kana ON licence_register (name_kana)`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
