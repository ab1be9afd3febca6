/**
 * Licence check (資格確認, HPKI-PROFILE §9.2): an application's licence data against the row of the
 * national licence register (免許 register, `hpki licenses import`) field by field, for the LRA
 * reviewer and the RA officer to see. Pure: no I/O; the register row is looked up by the caller
 * (lookupLicence in licence-register.ts).
 *
 * Normalisation rules — the same functions canonicalise the register on import, so a register row
 * and an application are compared in one form:
 * - All text: Unicode NFC, surrounding whitespace (including U+3000) trimmed, runs collapsed.
 *   NFC keeps variant kanji that have their own code point (髙 U+9AD9, 﨑 U+FA11): they are
 *   different characters from 高/崎 on the register, so 髙橋 ≠ 高橋 is shown as a mismatch for a
 *   person to judge, never folded away.
 * - Registration number: NFKC (full-width digits → ASCII), whitespace removed, the 「第…号」
 *   wording of licence certificates dropped, leading zeros dropped. Register numbers
 *   (医籍登録番号, 薬剤師名簿登録番号, …) are integers assigned in order; zero padding comes from
 *   fixed-width form boxes or spreadsheets, so "012345" and "12345" are the same licence, and two
 *   different licences never differ only in leading zeros.
 * - Dates: YYYY-MM-DD, also YYYY/M/D (what a Japanese-locale spreadsheet writes), full-width
 *   digits and dash look-alikes accepted (jp-input.ts); Japanese era dates (和暦: 令和7年4月1日,
 *   R7.4.1) are converted with the era boundaries of wareki.ts (issue 12 §4); must be a real
 *   calendar date of its era.
 * - Kanji name: NFC; spaces (ASCII or U+3000) between family and given name are ignored in the
 *   comparison (stored as one U+3000).
 * - Kana name: NFKC (half-width ｶﾅ → full-width, voiced marks composed), hiragana → katakana;
 *   spaces ignored in the comparison (stored as one U+3000).
 * - Width folding (NFKC) is applied to numbers and kana only: on kanji it would also rewrite
 *   compatibility ideographs, changing a name.
 */
import { parseJapaneseDate } from "./wareki.ts";

/** The six licence fields, as on a licence certificate (免許証) and in the register. */
export interface LicenceFields {
  /** hcRole code of the national qualification, e.g. "Medical Doctor". */
  qualification: string;
  registrationNumber: string;
  registrationDate: string;
  nameKanji: string;
  nameKana: string;
  birthDate: string;
}

/** The licence data an applicant gives (application form, 利用申込書), as typed. */
export type LicenceApplication = LicenceFields;

/** One licence register row in canonical form (dates YYYY-MM-DD, number without leading zeros). */
export type LicenceRecord = LicenceFields;

export type LicenceField = keyof LicenceApplication;

/** One compared field: the applied value as given, the registered value (null when not found). */
export interface LicenceFieldCheck {
  field: LicenceField;
  applied: string;
  registered: string | null;
  match: boolean;
}

export interface LicenceCheck {
  result: "match" | "mismatch" | "not_found";
  fields: LicenceFieldCheck[];
}

const LICENCE_FIELDS: readonly LicenceField[] = ["qualification", "registrationNumber", "registrationDate", "nameKanji", "nameKana", "birthDate"];

/**
 * Compares `application` with `registered` (undefined when the register has no row for the
 * qualification and registration number). Every field is listed; `match` is computed on the
 * canonical forms (module comment), a field the applicant wrote in an unreadable form (e.g. a
 * date that is no date) never matches. result: "not_found" without a row, "match" when every
 * field matches, else "mismatch".
 */
export function compareLicence(application: LicenceApplication, registered: LicenceRecord | undefined): LicenceCheck {
  const fields = LICENCE_FIELDS.map((field): LicenceFieldCheck => {
    const applied = application[field];
    if (!registered) return { field, applied, registered: null, match: false };
    const a = comparisonKey(field, applied);
    return { field, applied, registered: registered[field], match: a !== undefined && a === comparisonKey(field, registered[field]) };
  });
  if (!registered) return { result: "not_found", fields };
  return { result: fields.every((f) => f.match) ? "match" : "mismatch", fields };
}

function comparisonKey(field: LicenceField, v: string): string | undefined {
  switch (field) {
    case "qualification":
      return normaliseText(v);
    case "registrationNumber":
      return canonicalRegistrationNumber(v);
    case "registrationDate":
    case "birthDate":
      return canonicalDate(v);
    case "nameKanji":
      return canonicalKanjiName(v).replace(/\u3000/g, "") || undefined;
    case "nameKana":
      return canonicalKana(v)?.replace(/\u3000/g, "") || undefined;
  }
}

/** NFC, whitespace (ASCII, U+3000, …) trimmed and each inner run collapsed to one ASCII space. */
export function normaliseText(s: string): string {
  return s.normalize("NFC").replace(/\s+/gu, " ").trim();
}

/**
 * A registration number in canonical form: digits only, no leading zeros ("第０１２３４５号" →
 * "12345"). Returns undefined when what remains is not a positive integer of at most 10 digits.
 */
export function canonicalRegistrationNumber(s: string): string | undefined {
  const digits = s.normalize("NFKC").replace(/\s+/gu, "").replace(/^第/u, "").replace(/号$/u, "");
  if (!/^\d{1,10}$/.test(digits)) return undefined;
  const n = digits.replace(/^0+/, "");
  return n === "" ? undefined : n;
}

/**
 * A date as YYYY-MM-DD from what a desk types: Western (2025-04-01, 2025/4/1, 2025年4月1日) or
 * 和暦 (令和7年4月1日, R7.4.1, 昭和55年1月2日), full-width digits and dash look-alikes too
 * (src/pipeline/wareki.ts); undefined if not a real date.
 */
export function canonicalDate(s: string): string | undefined {
  return parseJapaneseDate(s);
}

/** A kanji name: NFC, trimmed, the family/given separator (any whitespace run) as one U+3000. */
export function canonicalKanjiName(s: string): string {
  return normaliseText(s).replace(/ /g, "\u3000");
}

/**
 * A kana name in full-width katakana: NFKC, hiragana → katakana, separator as one U+3000.
 * Returns undefined when anything but katakana (with ー ・ ヽ ヾ) and the separator remains.
 */
export function canonicalKana(s: string): string | undefined {
  const k = normaliseText(s.normalize("NFKC"))
    .replace(/[\u3041-\u3096\u309d\u309e]/gu, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60))
    .replace(/ /g, "\u3000");
  return /^[\u30a1-\u30fe]+(\u3000[\u30a1-\u30fe]+)*$/u.test(k) ? k : undefined;
}
