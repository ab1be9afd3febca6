import type { Knex } from "knex";

/**
 * Japan Post's postal code list (KEN_ALL.CSV, 郵便番号データ: 読み仮名データの促音・拗音を小書きで
 * 表記しないもの), loaded by `hpki postcodes import KEN_ALL.CSV` (src/registration/postcodes.ts)
 * for the intake form's address fill (issue 12 §4). One row per (code, town); a code may have
 * several towns. Replaced as a whole by each import.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("postcodes", (t) => {
    t.bigIncrements("id").primary();
    t.text("postal_code").notNullable(); // 7 ASCII digits
    t.text("prefecture").notNullable();
    t.text("city").notNullable();
    t.text("town").notNullable(); // "" where Japan Post writes 以下に掲載がない場合 etc.
    t.text("jis_code").notNullable();
    t.index(["postal_code"]);
  });
  await db.raw(`ALTER TABLE postcodes ADD CONSTRAINT postcodes_code CHECK (postal_code ~ '^[0-9]{7}$')`);
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
