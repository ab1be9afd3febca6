/**
 * The nearest licence register entries to an application whose register check failed (issue 12
 * §2; 資格確認, HPKI-PROFILE §9.2): shown to the reviewer as hints, never applied by themselves —
 * a person compares them with the licence certificate and corrects the application if the
 * applicant mistyped. Matching is simple enough to explain on the page:
 *
 * - "number": same qualification, registration number one digit off (one digit changed, added,
 *   dropped, or two neighbours swapped);
 * - "kana": same qualification and birth date, the same フリガナ (spaces ignored);
 * - "kanji": same qualification and birth date, the same kanji name once common 異体字 are read
 *   as their usual form (﨑→崎, 髙→高, 邊/邉→辺 …; VARIANTS below).
 *
 * At most NEAREST_LIMIT entries, the number matches first. Each entry says why it was proposed.
 */
import type { Knex } from "knex";
import { canonicalKana, canonicalKanjiName, canonicalRegistrationNumber, type LicenceRecord } from "./licence-check.ts";

/** Most entries proposed. */
export const NEAREST_LIMIT = 5;

/** Why an entry was proposed. */
export type NearestReason = "number" | "kana" | "kanji";

export interface NearestEntry extends LicenceRecord {
  reasons: NearestReason[];
}

/** What of the application the proposals are sought from (canonical forms as stored). */
export interface NearestQuery {
  qualification: string;
  licenceNumber: string;
  nameKanji: string;
  nameKana: string;
  birthDate: string;
}

/**
 * Variant kanji (異体字) frequent in names, to their usual form. Only for proposing entries: the
 * licence check itself keeps them distinct (licence-check.ts), a person decides.
 */
const VARIANTS: Record<string, string> = {
  "﨑": "崎", "嵜": "崎", "髙": "高", "邊": "辺", "邉": "辺", "濵": "浜", "濱": "浜", "齋": "斎", "齊": "斉",
  "嶋": "島", "嶌": "島", "德": "徳", "櫻": "桜", "澤": "沢", "廣": "広", "國": "国", "眞": "真", "龍": "竜",
  "瀨": "瀬", "栁": "柳", "冨": "富", "惠": "恵", "彌": "弥", "曾": "曽", "藪": "薮", "鷗": "鴎",
};

/** A kanji name with its variants folded and spaces removed: the key of the "kanji" match. */
export function foldKanjiName(name: string): string {
  return [...canonicalKanjiName(name).replace(/[\s\u3000]/gu, "")].map((c) => VARIANTS[c] ?? c).join("");
}

/** The registration numbers one digit off `n` (canonical form), without `n` itself. */
export function oneDigitOff(n: string): string[] {
  const out = new Set<string>();
  const digits = "0123456789";
  for (let i = 0; i <= n.length; i++) {
    for (const d of digits) out.add(n.slice(0, i) + d + n.slice(i)); // one added
    if (i < n.length) {
      out.add(n.slice(0, i) + n.slice(i + 1)); // one dropped
      for (const d of digits) out.add(n.slice(0, i) + d + n.slice(i + 1)); // one changed
      if (i + 1 < n.length) out.add(n.slice(0, i) + n[i + 1] + n[i] + n.slice(i + 2)); // neighbours swapped
    }
  }
  out.delete(n);
  return [...out].filter((x) => canonicalRegistrationNumber(x) === x);
}

const SELECT = `qualification, registration_number, registration_date::text AS registration_date,
  name_kanji, name_kana, birth_date::text AS birth_date`;

type RegisterRow = { qualification: string; registration_number: string; registration_date: string; name_kanji: string; name_kana: string; birth_date: string };

/**
 * Register entries near `q` (module comment), excluding the entry with q's own number (that one
 * is already shown field by field by the licence check). Read-only.
 */
export async function nearestRegisterEntries(db: Knex, q: NearestQuery): Promise<NearestEntry[]> {
  const variants = oneDigitOff(q.licenceNumber);
  const byNumber = variants.length
    ? ((await db.raw(`SELECT ${SELECT} FROM licence_register WHERE qualification = ? AND registration_number = ANY(?) ORDER BY registration_number LIMIT ?`,
      [q.qualification, variants, NEAREST_LIMIT])).rows as RegisterRow[])
    : [];
  const sameBirth = (await db.raw(`SELECT ${SELECT} FROM licence_register WHERE qualification = ? AND birth_date = ? AND registration_number <> ? ORDER BY registration_number LIMIT 200`,
    [q.qualification, q.birthDate, q.licenceNumber])).rows as RegisterRow[];
  const kanaKey = (s: string) => canonicalKana(s)?.replace(/\u3000/g, "") ?? s;
  const wantKana = kanaKey(q.nameKana);
  const wantKanji = foldKanjiName(q.nameKanji);
  const found = new Map<string, NearestEntry>();
  const add = (r: RegisterRow, reason: NearestReason) => {
    const e = found.get(r.registration_number) ?? {
      qualification: r.qualification, registrationNumber: r.registration_number, registrationDate: r.registration_date,
      nameKanji: r.name_kanji, nameKana: r.name_kana, birthDate: r.birth_date, reasons: [],
    };
    if (!e.reasons.includes(reason)) e.reasons.push(reason);
    found.set(r.registration_number, e);
  };
  for (const r of byNumber) add(r, "number");
  for (const r of sameBirth) {
    if (kanaKey(r.name_kana) === wantKana) add(r, "kana");
    if (foldKanjiName(r.name_kanji) === wantKanji) add(r, "kanji");
  }
  return [...found.values()].slice(0, NEAREST_LIMIT);
}
