/**
 * Japanese input as e-government forms take it (issue 12 §4): the one place where full-width
 * digits, the hyphen look-alikes and full-width spaces typed into numeric fields (postal code,
 * phone number, licence number, dates) are made into their ASCII form before validation. Used
 * by the zod schemas of src/pipeline/application-input.ts and by canonicalDate. Pure: no I/O.
 *
 * Width: Unicode NFKC (UAX #15) maps full-width ASCII (U+FF01–FF5E) to ASCII and the ideographic
 * space U+3000 to U+0020. Hyphens: the characters JIS X 0208 input methods produce where a
 * hyphen is meant (JIS X 0208 1-1-30 ‐ U+2010, 1-1-29 ― U+2015, 1-1-61 − U+2212 and its
 * Windows mapping U+FF0D －, the long sound mark ー U+30FC and its half-width form ｰ U+FF70,
 * the figure/en/em dashes U+2012–2014, ‑ U+2011, ⁃ U+2043, ﹣ U+FE63, ˗ U+02D7, ─ U+2500) count as
 * "-" in numeric fields only: in a kana name ー is a letter and is left alone.
 */

/** Every character taken as a hyphen in a numeric field (see the module comment). */
export const HYPHEN_LOOKALIKES = "\u002d\u02d7\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2500\u2501\u30fc\ufe58\ufe63\uff0d\uff70";
const HYPHENS = new RegExp(`[${HYPHEN_LOOKALIKES.replace(/-/g, "\\-")}]`, "gu");

/**
 * A numeric field as typed → ASCII digits and "-": NFKC (full-width digits and letters to ASCII),
 * every hyphen look-alike to "-", all whitespace (incl. U+3000) removed.
 * "１２３－４５６７" → "123-4567"; "０３ー１２３４ー５６７８" → "03-1234-5678".
 */
export function asciiNumericText(s: string): string {
  return s.normalize("NFKC").replace(HYPHENS, "-").replace(/\s+/gu, "");
}

/** A postal code (郵便番号) as "NNN-NNNN" from "〒１２３－４５６７", "1234567"…; undefined when not 7 digits. */
export function canonicalPostalCode(s: string): string | undefined {
  const m = /^(?:〒)?(\d{3})-?(\d{4})$/u.exec(asciiNumericText(s));
  return m ? `${m[1]}-${m[2]}` : undefined;
}

/**
 * A telephone number with ASCII digits and hyphens as typed ("０３（１２３４）５６７８" →
 * "03(1234)5678"); undefined when it holds anything but digits, "-", "+", "(", ")" or has fewer
 * than 6 or more than 20 characters.
 */
export function canonicalPhone(s: string): string | undefined {
  const t = asciiNumericText(s);
  return /^[0-9+()-]{6,20}$/.test(t) && /\d/.test(t) ? t : undefined;
}

/** A run of digits only (hyphens and spaces dropped), e.g. a document number as read off a card. */
export function digitsOnly(s: string): string {
  return asciiNumericText(s).replace(/-/g, "");
}
