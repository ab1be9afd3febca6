/**
 * The application form (利用申込書) as data: field-by-field validation with Japanese messages
 * (zod) and the canonical form stored in `applications`. Text is NFC-normalised before it is
 * compared or stored (names keep their kanji and kana as written; kana is stored as katakana).
 */
import { z } from "zod";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { canonicalDate, canonicalKana, canonicalKanjiName, canonicalRegistrationNumber, normaliseText } from "./licence-check.ts";

const required = (max: number) => z.string().transform(normaliseText).pipe(z.string().min(1).max(max));
const optionalText = (max: number) =>
  z.string().optional().transform((s) => (s === undefined ? undefined : normaliseText(s) || undefined)).pipe(z.string().max(max).optional());

const date = (fieldJa: string) =>
  z.string().transform((s, ctx) => {
    const d = canonicalDate(s);
    if (!d) {
      ctx.addIssue({ code: "custom", message: "expected a date YYYY-MM-DD", params: { messageJa: `${fieldJa}は YYYY-MM-DD の形式で入力してください。` } });
      return z.NEVER;
    }
    return d;
  });

/** A pattern check with its Japanese message (zod's own regex issue has no per-check Japanese text). */
const pattern = (re: RegExp, message: string, messageJa: string) => z.string().refine((s) => re.test(s), { message, params: { messageJa } });
const emailFormat = z.email();

const checkbox = z.union([z.boolean(), z.literal("on"), z.literal("true"), z.literal("1"), z.literal(""), z.undefined()]).transform((v) => v === true || v === "on" || v === "true" || v === "1");

/**
 * Builds the schema for the form, given the hcRole code table (qualification must be a national
 * qualification; the manager role, when given, a manager code such as "Director of Hospital").
 */
export function applicationInputSchema(hcRoles: ReadonlyMap<string, HcRoleCode>) {
  const ofKind = (kind: HcRoleCode["kind"]) => [...hcRoles.values()].filter((c) => c.kind === kind).map((c) => c.code);
  const qualifications = ofKind("national-qualification");
  const managerRoles = ofKind("manager");
  return z
    .object({
      nameKanji: required(60).transform(canonicalKanjiName),
      nameKana: required(60).transform((s, ctx) => {
        const k = canonicalKana(s);
        if (!k) {
          ctx.addIssue({ code: "custom", message: "kana only (hiragana or katakana)", params: { messageJa: "フリガナはカタカナ（またはひらがな）で入力してください。" } });
          return z.NEVER;
        }
        return k;
      }),
      // Latin name as in the certificate subject CN ("Taro Yamada"): printable ASCII letters only.
      nameLatin: required(64).pipe(
        pattern(/^[A-Za-z][A-Za-z .'-]*$/, "Latin letters only", "ローマ字（半角英字）で入力してください。"),
      ),
      birthDate: date("生年月日"),
      postalCode: required(8).pipe(pattern(/^\d{3}-?\d{4}$/, "postal code like 100-0001", "郵便番号は 100-0001 の形式で入力してください。")),
      address: required(200),
      phone: required(20).pipe(pattern(/^[0-9+() -]{6,20}$/, "phone number digits", "電話番号は数字とハイフンで入力してください。")),
      email: required(254).refine((s) => emailFormat.safeParse(s).success, { message: "invalid e-mail address", params: { messageJa: "メールアドレスの形式が正しくありません。" } }),
      qualification: z.enum(qualifications as [string, ...string[]]),
      licenceNumber: z.string().transform((s, ctx) => {
        const n = canonicalRegistrationNumber(s);
        if (!n) {
          ctx.addIssue({ code: "custom", message: "registration number: digits", params: { messageJa: "登録番号は数字で入力してください。" } });
          return z.NEVER;
        }
        return n;
      }),
      licenceDate: date("登録年月日"),
      organizationKanji: optionalText(100),
      organizationLatin: optionalText(64).pipe(
        pattern(/^[ -~]*$/, "ASCII only", "施設名（英字）は半角英数字で入力してください。").optional(),
      ),
      managerRole: z.preprocess((v) => (v === "" ? undefined : v), z.enum(managerRoles as [string, ...string[]]).optional()),
      requestSign: checkbox,
      requestAuth: checkbox,
      /** Issue 15 §1: the encryption certificate, only beside a signature or authentication one. */
      requestEnc: checkbox.optional(),
    })
    .superRefine((a, ctx) => {
      if (!a.requestSign && !a.requestAuth) {
        ctx.addIssue({ code: "custom", path: ["requestSign"], message: "request at least one certificate", params: { messageJa: "署名用・認証用のいずれかを選択してください。" } });
      }
      if (a.managerRole && !(a.organizationKanji && a.organizationLatin)) {
        ctx.addIssue({ code: "custom", path: ["organizationLatin"], message: "a manager role needs the facility name in kanji and Latin letters", params: { messageJa: "管理者の申込には施設名（漢字・英字）が必要です。" } });
      }
      if (a.licenceDate < a.birthDate) {
        ctx.addIssue({ code: "custom", path: ["licenceDate"], message: "registration date before the birth date", params: { messageJa: "登録年月日が生年月日より前になっています。" } });
      }
    });
}

export type ApplicationInput = z.output<ReturnType<typeof applicationInputSchema>>;

/** The `applications` columns of a validated form. */
export function applicationColumns(a: ApplicationInput): Record<string, unknown> {
  return {
    name_kanji: a.nameKanji, name_kana: a.nameKana, name_latin: a.nameLatin, birth_date: a.birthDate,
    postal_code: a.postalCode, address: a.address, phone: a.phone, email: a.email,
    qualification: a.qualification, licence_number: a.licenceNumber, licence_date: a.licenceDate,
    organization_kanji: a.organizationKanji ?? null, organization_latin: a.organizationLatin ?? null,
    manager_role: a.managerRole ?? null, request_sign: a.requestSign, request_auth: a.requestAuth,
    request_enc: a.requestEnc ?? false,
  };
}
