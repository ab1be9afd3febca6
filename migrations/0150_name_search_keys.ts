import type { Knex } from "knex";

/**
 * Name search that finds 異体字 and ignores width and spaces (issue 12 §4), as stored, indexed
 * search keys:
 *
 * - hpki_search_fold(text): NFKC (full-width ASCII → ASCII, half-width kana → full-width,
 *   U+3000 → space), whitespace removed, lower case, hiragana → katakana, and the variant kanji of
 *   policies/name-variants.yaml folded to their standard form (山﨑 → 山崎, 髙橋 → 高橋). The
 *   variant table is frozen here (migrations hold their own constants);
 *   test/integration/name-search.test.ts fails when the policy file and this copy differ.
 * - applications.search_key: a stored generated column, fold(name_kanji) || '|' ||
 *   fold(name_kana), filled for every existing row by the ALTER (a table rewrite) and kept up to
 *   date by PostgreSQL on every insert and correction, whoever writes the row.
 * - a pg_trgm GIN index on it, so "contains" searches (LIKE '%…%') stay indexed. pg_trgm is a
 *   trusted extension (PostgreSQL 13+): the database owner may create it.
 */
const VARIANTS = "\u{fa11}\u{5d5c}\u{7895}\u{9ad9}\u{9f4b}\u{9f4a}\u{658e}\u{908a}\u{9089}\u{6ff5}\u{6ff1}\u{6fa4}\u{6afb}\u{5ee3}\u{570b}\u{771e}\u{5be6}\u{5fb7}\u{69c7}\u{51a8}\u{85cf}\u{60e0}\u{69ae}\u{5d8b}\u{5d8c}\u{5cef}\u{66fe}\u{9ed1}\u{fa10}\u{20bb7}\u{9f8d}\u{7028}\u{975c}\u{4f86}\u{79ae}\u{58fd}";
const STANDARDS = "\u{5d0e}\u{5d0e}\u{5d0e}\u{9ad8}\u{6589}\u{6589}\u{6589}\u{8fba}\u{8fba}\u{6d5c}\u{6d5c}\u{6ca2}\u{685c}\u{5e83}\u{56fd}\u{771f}\u{5b9f}\u{5fb3}\u{69d9}\u{5bcc}\u{8535}\u{6075}\u{6804}\u{5cf6}\u{5cf6}\u{5cf0}\u{66fd}\u{9ed2}\u{585a}\u{5409}\u{7adc}\u{702c}\u{9759}\u{6765}\u{793c}\u{5bff}";
const HIRAGANA = Array.from({ length: 0x3096 - 0x3041 + 1 }, (_, i) => String.fromCodePoint(0x3041 + i)).join("");
const KATAKANA = Array.from({ length: 0x3096 - 0x3041 + 1 }, (_, i) => String.fromCodePoint(0x30a1 + i)).join("");

/** A SQL string literal of `s` (kanji and kana only: no quote can occur, checked). */
function literal(s: string): string {
  if (/['\\]/.test(s)) throw new Error("0150: unexpected quote in a constant");
  return `'${s}'`;
}

export async function up(db: Knex): Promise<void> {
  if ([...VARIANTS].length !== [...STANDARDS].length) throw new Error("0150: variant table out of step");
  await db.raw("CREATE EXTENSION IF NOT EXISTS pg_trgm");
  await db.raw(`CREATE FUNCTION hpki_search_fold(s text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN translate(translate(lower(regexp_replace(normalize(s, NFKC), '[[:space:]]+', '', 'g')),
      ${literal(HIRAGANA)}, ${literal(KATAKANA)}), ${literal(VARIANTS)}, ${literal(STANDARDS)})`);
  await db.raw(`ALTER TABLE applications ADD COLUMN search_key text
    GENERATED ALWAYS AS (hpki_search_fold(name_kanji) || '|' || hpki_search_fold(name_kana)) STORED`);
  await db.raw("CREATE INDEX applications_search_key_trgm ON applications USING gin (search_key gin_trgm_ops)");
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
