/**
 * The identity check (本人確認) as data, with the rule that a 個人番号 (Individual Number, 12
 * digits) is never recorded (issue 12 §6). 番号法 (行政手続における特定の個人を識別するための番号の
 * 利用等に関する法律) §20 forbids collecting or keeping another person's 個人番号 outside the uses
 * of §19; issuing an HPKI certificate is not one of them. For a マイナンバーカード the check
 * records the document type, its expiry and at most the last 4 digits of a number (what the
 * printed receipt asks for); an entry with more than 4 digits is refused with the reason and
 * stored nowhere. A note (any document type), or the number of another document other than a
 * driving licence (whose numbers are 12 digits too), holding 12 digits with a valid 個人番号 check
 * digit (番号法施行令 §8) is refused too. The identity check at handover (delivery.ts) follows the
 * same rule. Pure: no I/O.
 */
import { z } from "zod";
import { asciiNumericText, digitsOnly } from "./jp-input.ts";
import { dateField } from "./application-input.ts";

export const IDENTITY_DOCUMENT_TYPES = ["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"] as const;

/** Most digits of a マイナンバーカード number the check may keep. */
export const MY_NUMBER_KEPT_DIGITS = 4;

/**
 * True when `digits` (12 ASCII digits) has the check digit of a 個人番号 (番号法施行令 §8:
 * Σ Pn×Qn over the 11 digits from the right, Qn = n+1 for n ≤ 6 else n−5; check digit 0 when the
 * remainder mod 11 is ≤ 1, else 11 − remainder).
 */
export function hasMyNumberCheckDigit(digits: string): boolean {
  if (!/^\d{12}$/.test(digits)) return false;
  let sum = 0;
  for (let n = 1; n <= 11; n++) sum += Number(digits[11 - n]) * (n <= 6 ? n + 1 : n - 5);
  const r = sum % 11;
  return Number(digits[11]) === (r <= 1 ? 0 : 11 - r);
}

/** True when `text` holds a run of 12 digits (width, hyphens and spaces ignored) with a 個人番号 check digit. */
export function containsMyNumber(text: string): boolean {
  const runs = asciiNumericText(text).replace(/-/g, "").match(/\d{12,}/g) ?? [];
  return runs.some((r) => [...Array(r.length - 11).keys()].some((i) => hasMyNumberCheckDigit(r.slice(i, i + 12))));
}

const BANGOHO = {
  message: "A 個人番号 (Individual Number) may not be recorded (Act on the Use of Numbers, §20). For a My Number card enter at most the last 4 digits, or leave it empty.",
  messageJa: "個人番号（マイナンバー）は記録できません（番号法第20条により、法律で認められた場合を除き個人番号の収集・保管は禁止されています）。マイナンバーカードは番号の下4桁まで、または空欄にしてください。",
};

/** The refusal (番号法) of a number entered for `documentType`, or undefined when it may be kept. */
export function documentNumberRefusal(documentType: string, documentNumber: string | undefined): typeof BANGOHO | undefined {
  if (documentNumber === undefined) return undefined;
  if (documentType === "my_number_card") return digitsOnly(documentNumber).replace(/\D/g, "").length > MY_NUMBER_KEPT_DIGITS ? BANGOHO : undefined;
  return containsMyNumber(documentNumber) && documentType !== "driver_licence" ? BANGOHO : undefined;
}

/**
 * What is stored of a document number: for a マイナンバーカード `{documentNumberLast4}` (the
 * entry, at most 4 digits, checked by documentNumberRefusal), else `{documentNumber}`.
 */
export function keptDocumentNumber(documentType: string, documentNumber: string | undefined): { documentNumber?: string; documentNumberLast4?: string } {
  if (documentNumber === undefined) return {};
  return documentType === "my_number_card" ? { documentNumberLast4: asciiNumericText(documentNumber) } : { documentNumber };
}

/** zod: the 番号法 refusal of `documentNumber` as an issue on that field (for superRefine). */
export function refuseMyNumber(c: { documentType: string; documentNumber?: string }, ctx: z.RefinementCtx): void {
  const r = documentNumberRefusal(c.documentType, c.documentNumber);
  if (r) ctx.addIssue({ code: "custom", path: ["documentNumber"], message: r.message, params: { messageJa: r.messageJa } });
}

const optionalText = (max: number) => z.string().max(max).optional().transform((s) => s?.normalize("NFC").trim() || undefined);

/** The identity check form: zod schema with Japanese messages; the output is what is stored. */
export const identityCheckSchema = z
  .object({
    documentType: z.enum(IDENTITY_DOCUMENT_TYPES),
    documentNumber: optionalText(40),
    expiryDate: dateField("有効期限"),
    method: z.enum(["face_to_face", "mail_copies"]),
    photoMatches: z.union([z.boolean(), z.literal("on")]).optional().transform((v) => v === true || v === "on"),
    note: optionalText(500),
  })
  .superRefine((c, ctx) => {
    refuseMyNumber(c, ctx);
    if (c.documentType !== "my_number_card" && !c.documentNumber) {
      ctx.addIssue({ code: "custom", path: ["documentNumber"], message: "is required", params: { messageJa: "必須項目です。" } });
    }
    if (c.note && containsMyNumber(c.note)) ctx.addIssue({ code: "custom", path: ["note"], message: BANGOHO.message, params: { messageJa: BANGOHO.messageJa } });
  })
  .transform(({ documentNumber, ...c }) => ({ ...c, ...keptDocumentNumber(c.documentType, documentNumber) }));

export type IdentityCheckInput = z.output<typeof identityCheckSchema>;
