/**
 * The licence register file (免許 register, `hpki licenses import FILE.csv`): CSV text → validated
 * rows in canonical form, or every problem found with its line. Pure; the import itself is
 * licence-register.ts.
 *
 * File format: UTF-8 (with or without BOM), RFC 4180 CSV (csv-rfc4180.ts), a header line naming
 * the six columns (any order, no others):
 *
 *   qualification,registration_number,registration_date,name_kanji,name_kana,birth_date
 *   Medical Doctor,123456,2008-04-21,山田　太郎,ヤマダ　タロウ,1982-05-14
 *
 * - qualification: the hcRole code of a national qualification (policies/hcrole-codes.yaml, e.g.
 *   "Medical Doctor") or its Japanese name (医師); stored as the code. Manager roles (Director of
 *   Hospital, …) are not licences and are refused.
 * - registration_number: 医籍登録番号 / 薬剤師名簿登録番号 / …; digits (full-width accepted), leading
 *   zeros and 「第…号」 dropped.
 * - registration_date, birth_date: YYYY-MM-DD (or YYYY/M/D); 和暦 is refused.
 * - name_kanji, name_kana: family and given name separated by a space; kana in hiragana or
 *   katakana, half- or full-width, stored as full-width katakana.
 * Normalisation rules: licence-check.ts. One qualification + registration number per file.
 */
import { z } from "zod";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { CsvSyntaxError, parseCsv } from "./csv-rfc4180.ts";
import { canonicalDate, canonicalKana, canonicalKanjiName, canonicalRegistrationNumber, normaliseText, type LicenceRecord } from "./licence-check.ts";

/** The header of a licence register file (column order in the file may differ). */
export const LICENCE_CSV_COLUMNS = ["qualification", "registration_number", "registration_date", "name_kanji", "name_kana", "birth_date"] as const;
type Column = (typeof LICENCE_CSV_COLUMNS)[number];

/** One problem: 1-based line in the file, the column (or "(header)", "(row)", "(file)"), English and Japanese. */
export interface LicenceImportIssue {
  line: number;
  field: string;
  message: string;
  messageJa: string;
}

/** A validated row and the line it came from. */
export interface LicenceCsvRow extends LicenceRecord {
  line: number;
}

export type LicenceCsvResult = { ok: true; rows: LicenceCsvRow[] } | { ok: false; issues: LicenceImportIssue[] };

/** X.520 ub-name: the kanji name ends up in a certificate's subjectAltName. */
const MAX_NAME = 64;
/** 平成12年4月1日, H12.4.1, R1/5/1, 昭和55年…: told apart from other bad dates for a useful message. */
const JAPANESE_ERA_DATE = /^(?:明治|大正|昭和|平成|令和|[MTSHR])\s*(?:\d|元)|\d\s*年/iu;
/** No national qualification is granted before 18; a younger age means swapped or mistyped dates. */
const MIN_AGE_AT_REGISTRATION = 18;

/**
 * Parses and validates a licence register file (format in the module comment) against the hcRole
 * table. `today` (YYYY-MM-DD, Japan time by default) bounds the dates. Never throws for bad input:
 * returns every issue of every row (the age-at-registration check, which needs both dates, runs
 * once a row's fields are valid), or the rows in canonical form when there is none.
 */
export function parseLicenceCsv(text: string, hcRoles: ReadonlyMap<string, HcRoleCode>, today: string = japanToday()): LicenceCsvResult {
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (!(e instanceof CsvSyntaxError)) throw e;
    return { ok: false, issues: [{ line: e.line, field: "(file)", message: e.message.replace(/^line \d+: /, ""), messageJa: e.messageJa }] };
  }
  const [header, ...data] = records;
  if (!header) return { ok: false, issues: [issue(1, "(file)", "the file is empty", "ファイルが空です")] };
  const headerIssues = checkHeader(header.fields, header.line);
  if (headerIssues.length) return { ok: false, issues: headerIssues };
  if (data.length === 0) return { ok: false, issues: [issue(header.line, "(file)", "the file has a header but no rows", "見出し行のみでデータ行がありません")] };

  const columns = header.fields.map((f) => f.trim()) as Column[];
  const schema = rowSchema(hcRoles, today);
  const issues: LicenceImportIssue[] = [];
  const rows: LicenceCsvRow[] = [];
  const firstLineOfKey = new Map<string, number>();
  for (const rec of data) {
    if (rec.fields.length !== columns.length) {
      issues.push(issue(rec.line, "(row)", `has ${rec.fields.length} fields, the header has ${columns.length}`, `項目数が ${rec.fields.length} です（見出しは ${columns.length} 項目）`));
      continue;
    }
    const parsed = schema.safeParse(Object.fromEntries(columns.map((c, i) => [c, rec.fields[i]])));
    if (!parsed.success) {
      for (const i of parsed.error.issues) {
        const messageJa = (i as { params?: { messageJa?: string } }).params?.messageJa ?? "形式が正しくありません";
        issues.push(issue(rec.line, String(i.path[0] ?? "(row)"), i.message, messageJa));
      }
      continue;
    }
    const row = parsed.data;
    const key = `${row.qualification}\u0000${row.registrationNumber}`;
    const first = firstLineOfKey.get(key);
    if (first !== undefined) {
      issues.push(issue(rec.line, "registration_number", `the same qualification and registration number as line ${first}`, `${first} 行目と資格・登録番号が重複しています`));
      continue;
    }
    firstLineOfKey.set(key, rec.line);
    rows.push({ line: rec.line, ...row });
  }
  return issues.length ? { ok: false, issues } : { ok: true, rows };
}

function checkHeader(fields: string[], line: number): LicenceImportIssue[] {
  const names = fields.map((f) => f.trim());
  const issues: LicenceImportIssue[] = [];
  const seen = new Set<string>();
  for (const n of names) {
    if (!(LICENCE_CSV_COLUMNS as readonly string[]).includes(n)) {
      issues.push(issue(line, "(header)", `unknown column "${n}" (expected ${LICENCE_CSV_COLUMNS.join(",")})`, `不明な列「${n}」があります（列は ${LICENCE_CSV_COLUMNS.join(",")}）`));
    } else if (seen.has(n)) {
      issues.push(issue(line, "(header)", `column "${n}" appears twice`, `列「${n}」が重複しています`));
    }
    seen.add(n);
  }
  for (const c of LICENCE_CSV_COLUMNS) {
    if (!names.includes(c)) issues.push(issue(line, "(header)", `missing column "${c}"`, `列「${c}」がありません`));
  }
  return issues;
}

type Ctx = z.RefinementCtx;
const fail = (ctx: Ctx, message: string, messageJa: string) => {
  ctx.addIssue({ code: "custom", message, params: { messageJa } });
  return z.NEVER;
};

function rowSchema(hcRoles: ReadonlyMap<string, HcRoleCode>, today: string) {
  const byJapaneseName = new Map([...hcRoles.values()].map((r) => [r.ja, r]));
  const date = (earliest: string) =>
    z.string().transform((v, ctx) => {
      // The register stays in one unambiguous form: 和暦 is refused here although the desk's
      // forms take it (canonicalDate reads it there, issue 12 §4).
      if (JAPANESE_ERA_DATE.test(v.normalize("NFKC").trim())) return fail(ctx, `"${v}" is a Japanese era date; write it as YYYY-MM-DD`, `「${v}」は和暦です。西暦 YYYY-MM-DD で記入してください`);
      const d = /^\d{4}[-/]\d{1,2}[-/]\d{1,2}$/.test(v.normalize("NFKC").trim()) ? canonicalDate(v) : undefined;
      if (!d) return fail(ctx, `"${v}" is not a date YYYY-MM-DD`, `「${v}」は日付（YYYY-MM-DD）ではありません`);
      if (d < earliest || d > today) return fail(ctx, `${d} is outside ${earliest} … ${today}`, `${d} は ${earliest} から ${today} の範囲外です`);
      return d;
    });
  const name = z.string().transform((v, ctx) => {
    const n = canonicalKanjiName(v);
    if (!n) return fail(ctx, "is required", "必須項目です");
    if (/\p{Cc}/u.test(n)) return fail(ctx, "contains control characters", "制御文字が含まれています");
    if ([...n].length > MAX_NAME) return fail(ctx, `is longer than ${MAX_NAME} characters`, `${MAX_NAME}文字を超えています`);
    return n;
  });

  return z
    .object({
      qualification: z.string().transform((v, ctx) => {
        const t = normaliseText(v);
        const entry = hcRoles.get(t) ?? byJapaneseName.get(t);
        if (!entry) return fail(ctx, `"${t}" is not a qualification in the hcRole table`, `「${t}」は資格コード表にありません`);
        if (entry.kind !== "national-qualification") {
          return fail(ctx, `"${entry.code}" is a manager role, not a national licence`, `「${entry.ja}」は管理者資格であり、国家資格の免許ではありません`);
        }
        return entry.code;
      }),
      registration_number: z.string().transform((v, ctx) => canonicalRegistrationNumber(v)
        ?? fail(ctx, `"${v}" is not a registration number (digits, at most 10)`, `「${v}」は登録番号（10桁以内の数字）ではありません`)),
      registration_date: date("1900-01-01"),
      name_kanji: name,
      name_kana: z.string().transform((v, ctx) => {
        const k = canonicalKana(v);
        if (!k) return fail(ctx, `"${v}" is not a kana name (katakana or hiragana, family and given name separated by a space)`, `「${v}」はフリガナ（カタカナまたはひらがな、姓と名の間に空白）ではありません`);
        if ([...k].length > MAX_NAME) return fail(ctx, `is longer than ${MAX_NAME} characters`, `${MAX_NAME}文字を超えています`);
        return k;
      }),
      birth_date: date("1900-01-01"),
    })
    .superRefine((r, ctx) => {
      if (r.registration_date < addYears(r.birth_date, MIN_AGE_AT_REGISTRATION)) {
        ctx.addIssue({
          code: "custom",
          path: ["registration_date"],
          message: `${r.registration_date} is before the holder's ${MIN_AGE_AT_REGISTRATION}th birthday (born ${r.birth_date})`,
          params: { messageJa: `登録日 ${r.registration_date} が ${MIN_AGE_AT_REGISTRATION} 歳の誕生日より前です（生年月日 ${r.birth_date}）` },
        });
      }
    })
    .transform((r): LicenceRecord => ({
      qualification: r.qualification,
      registrationNumber: r.registration_number,
      registrationDate: r.registration_date,
      nameKanji: r.name_kanji,
      nameKana: r.name_kana,
      birthDate: r.birth_date,
    }));
}

function addYears(isoDate: string, years: number): string {
  return `${String(Number(isoDate.slice(0, 4)) + years).padStart(4, "0")}${isoDate.slice(4)}`;
}

/** Today's date in Japan (UTC+9, no daylight saving), YYYY-MM-DD. */
function japanToday(): string {
  return new Date(Date.now() + 9 * 3600_000).toISOString().slice(0, 10);
}

function issue(line: number, field: string, message: string, messageJa: string): LicenceImportIssue {
  return { line, field, message, messageJa };
}
