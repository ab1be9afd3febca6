/**
 * Name search by the stored search key (issue 12 §4): applications.search_key is
 * hpki_search_fold(name_kanji) || '|' || hpki_search_fold(name_kana), a generated column of
 * migration 0150 with a pg_trgm index. The fold (NFKC, spaces removed, lower case, hiragana →
 * katakana, the 異体字 of policies/name-variants.yaml → standard forms) runs in PostgreSQL for
 * both the stored key and the searched text, so the two can never disagree.
 */
import type { Knex } from "knex";

/** `s` escaped for a LIKE pattern (backslash is the escape character). */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Adds `OR <column> LIKE '%' || hpki_search_fold(text) || '%'` to `w` (nothing for text that
 * folds to nothing). `column` is a search_key column, e.g. "search_key" or "a.search_key".
 * The text is NFKC-folded before escaping, so a full-width ％ or ＿ is matched literally.
 */
export function nameMatches(w: Knex.QueryBuilder, column: string, text: string): void {
  const t = text.normalize("NFKC").replace(/\s+/gu, "");
  if (!t) return;
  w.orWhereRaw(`?? like '%' || hpki_search_fold(?) || '%'`, [column, likeEscape(t)]);
}
