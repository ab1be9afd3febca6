/**
 * The one rule set for human text, shared by intake (src/pipeline/errors.ts parseInput, every
 * text field of every form and JSON body) and the certificate lint (lint-name.ts, subject.ts), so
 * nothing passes the desk that the IA refuses (issue 10 §7; HPKI-PROFILE §2: names NFC, no
 * control characters).
 *
 * Refused: NUL; lone UTF-16 surrogates (not encodable as UTF-8, RFC 3629 §3); bidi controls
 * (U+061C, U+200E/F, U+202A–202E, U+2066–2069: they reorder what a reviewer sees, e.g. U+202E
 * in a kanji name); invisible and other format characters (U+00AD, U+200B–200D, U+2060,
 * U+FEFF and every other Unicode Cf); other C0/C1 controls (Cc); line/paragraph separators
 * U+2028/2029. Intake allows TAB, LF and CR (`lineBreaks: true`: multi-line notes; single-line
 * names collapse whitespace before storage); certificate values allow none of them.
 * Text is compared and stored NFC-normalised (normalizeText). Pure: no I/O.
 */

/** Why a text is refused. */
export type TextViolationKind = "nul" | "lone-surrogate" | "bidi" | "invisible" | "control";

/** The first refused character of a text: its kind and code point (a surrogate's own value). */
export interface TextViolation {
  kind: TextViolationKind;
  codePoint: number;
}

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
// \p{Cs} matches an unpaired surrogate under the u flag (a pair is one astral code point).
const ANY_REFUSED = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu;
const LINE_BREAKS = new Set([0x09, 0x0a, 0x0d]);

/**
 * The first refused character of `s`, or undefined when `s` is acceptable. `lineBreaks` (intake
 * of multi-line fields) lets TAB, LF and CR through; certificate values use the default (false).
 */
export function textViolation(s: string, opts: { lineBreaks?: boolean } = {}): TextViolation | undefined {
  for (const m of s.matchAll(ANY_REFUSED)) {
    const c = m[0];
    const cp = c.codePointAt(0)!;
    if (opts.lineBreaks && LINE_BREAKS.has(cp)) continue;
    return { kind: textKind(c, cp), codePoint: cp };
  }
  return undefined;
}

function textKind(c: string, cp: number): TextViolationKind {
  if (cp === 0) return "nul";
  if (cp >= 0xd800 && cp <= 0xdfff) return "lone-surrogate";
  if (BIDI.test(c)) return "bidi";
  if (/\p{Cf}/u.test(c)) return "invisible";
  return "control";
}

/** True when `s` holds a NUL or a lone surrogate: what no database column or UTF-8 encoder takes. */
export function hasUnstorableText(s: string): boolean {
  return s.includes("\u0000") || /\p{Cs}/u.test(s);
}

/** `s` in Unicode Normalization Form C (the stored and compared form). */
export function normalizeText(s: string): string {
  return s.normalize("NFC");
}

/** "U+202E" for 0x202e. */
export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** English and Japanese explanations of a violation (for the field named by the caller). */
export function textViolationMessages(v: TextViolation): { message: string; messageJa: string } {
  const at = codePointLabel(v.codePoint);
  switch (v.kind) {
    case "nul":
      return { message: "contains a NUL character (U+0000)", messageJa: "NUL文字（U+0000）が含まれています。" };
    case "lone-surrogate":
      return { message: `contains an unpaired surrogate (${at}): not valid Unicode text`, messageJa: `不正な文字（対になっていないサロゲート ${at}）が含まれています。` };
    case "bidi":
      return { message: `contains a bidirectional control character (${at}) that changes how the text is displayed`, messageJa: `表示順を変える双方向制御文字（${at}）が含まれています。削除してください。` };
    case "invisible":
      return { message: `contains an invisible format character (${at})`, messageJa: `目に見えない書式文字（${at}）が含まれています。削除してください。` };
    case "control":
      return { message: `contains a control character (${at})`, messageJa: `制御文字（${at}）が含まれています。削除してください。` };
  }
}
