/**
 * Postcode-to-address fill for the intake form (issue 12 §4) from Japan Post's KEN_ALL.CSV
 * (郵便番号データ, the 読み仮名データの促音・拗音を小書きで表記しないもの file, Shift_JIS, no header,
 * 15 columns: 全国地方公共団体コード, 旧郵便番号, 郵便番号, 都道府県名カナ, 市区町村名カナ, 町域名カナ,
 * 都道府県名, 市区町村名, 町域名, then six flags). No npm dataset package fitted (see README):
 * the desk imports the file it downloads from Japan Post, monthly, with
 * `hpki postcodes import KEN_ALL.CSV`; the whole table is replaced in one transaction (audited).
 *
 * Town names as Japan Post writes them are made into what a form wants:
 * - 「以下に掲載がない場合」, 「〇〇の次に番地がくる場合」, 「〇〇一円」 → "" (the city is the address);
 * - a parenthesised part 「（次のビルを除く）」, 「（１～１９丁目）」 is dropped;
 * - a town name too long for one row continues on the next rows with the same code (an opening
 *   「（」 without its 「）」): the rows are joined first.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { parseCsv } from "../pipeline/csv-rfc4180.ts";
import { ValidationError } from "../pipeline/errors.ts";
import { canonicalPostalCode } from "../pipeline/jp-input.ts";

export interface PostcodeRow {
  postalCode: string;
  prefecture: string;
  city: string;
  town: string;
  jisCode: string;
}

/** The town of a KEN_ALL row as an address part (see the module comment). */
export function kenAllTown(raw: string, city: string): string {
  const t = raw.normalize("NFC").trim();
  if (t === "以下に掲載がない場合" || /の次に番地がくる場合$/u.test(t) || (t.endsWith("一円") && t !== "一円" && city.length > 0)) return "";
  return t.replace(/（.*$/u, "").trim();
}

/**
 * KEN_ALL.CSV bytes (Shift_JIS) → rows, with continued town names joined and towns cleaned.
 * @throws ValidationError naming the line of a row that is not a KEN_ALL row.
 */
export function parseKenAll(bytes: Uint8Array): PostcodeRow[] {
  const text = new TextDecoder("shift_jis", { fatal: true }).decode(bytes);
  const records = parseCsv(text).map((r) => r.fields).filter((f) => f.length > 1);
  const out: PostcodeRow[] = [];
  for (let i = 0; i < records.length; i++) {
    const f = records[i];
    if (f.length < 9 || !/^\d{7}$/.test(f[2]) || !/^\d{5}$/.test(f[0])) {
      throw new ValidationError([{ field: `line ${i + 1}`, message: "not a KEN_ALL row (15 columns, 7-digit postal code in column 3)", messageJa: "KEN_ALL の形式ではありません（15列、3列目が7桁の郵便番号）。" }]);
    }
    let town = f[8];
    // A town continued on the following rows of the same code: join until the bracket closes.
    while (town.includes("（") && !town.includes("）") && i + 1 < records.length && records[i + 1][2] === f[2]) town += records[++i][8];
    out.push({ postalCode: f[2], prefecture: f[6].normalize("NFC"), city: f[7].normalize("NFC"), town: kenAllTown(town, f[7]), jisCode: f[0] });
  }
  // One entry per (code, town) once the brackets are gone.
  const seen = new Set<string>();
  return out.filter((r) => {
    const k = `${r.postalCode}|${r.city}|${r.town}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Replaces the postcodes table with the rows of a KEN_ALL.CSV file, in one transaction, audited
 * (postcodes.imported with the row count and the file's SHA-256).
 */
export async function importPostcodes(db: Knex, bytes: Uint8Array, actor: { actor: string; role: string }): Promise<{ rows: number; codes: number; fileSha256: string }> {
  const rows = parseKenAll(bytes);
  const fileSha256 = createHash("sha256").update(bytes).digest("hex");
  await db.transaction(async (trx) => {
    await trx("postcodes").del();
    for (let i = 0; i < rows.length; i += 2000) {
      await trx("postcodes").insert(rows.slice(i, i + 2000).map((r) => ({ postal_code: r.postalCode, prefecture: r.prefecture, city: r.city, town: r.town, jis_code: r.jisCode })));
    }
    await appendAudit(trx, [{ ...actor, action: "postcodes.imported", objectType: "postcodes", objectId: "KEN_ALL", details: { rows: rows.length, fileSha256 } }]);
  });
  return { rows: rows.length, codes: new Set(rows.map((r) => r.postalCode)).size, fileSha256 };
}

/** The addresses of a postal code as typed (full-width, any hyphen); [] when unknown or malformed. */
export async function lookupPostcode(db: Knex, typed: string): Promise<{ postalCode: string; prefecture: string; city: string; town: string; address: string }[]> {
  const code = canonicalPostalCode(typed);
  if (!code) return [];
  const rows = (await db("postcodes").where({ postal_code: code.replace("-", "") }).orderBy("id").limit(50).select("prefecture", "city", "town")) as { prefecture: string; city: string; town: string }[];
  return rows.map((r) => ({ postalCode: code, ...r, address: `${r.prefecture}${r.city}${r.town}` }));
}
