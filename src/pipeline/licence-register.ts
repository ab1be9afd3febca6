/**
 * The licence register (免許 register) in the database: importing a register file
 * (`hpki licenses import`) and looking a licence up for the licence check (licence-check.ts).
 *
 * An import is all-or-nothing: every row is validated first (licence-csv.ts) and any invalid row
 * refuses the whole file; a valid file is written in one transaction with one licence_imports row
 * and one audit record. Rows are keyed by qualification + registration number: a new key is
 * inserted, a known key with different data is updated, identical data is left untouched. Rows
 * absent from the file stay: a file may be an extract (one qualification, one year), and a
 * withdrawn licence (免許取消) is a decision for a person, not a side effect of a shorter file.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Actor } from "../audit/actor.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { loadPolicies } from "../policies.ts";
import { canonicalRegistrationNumber, normaliseText, type LicenceRecord } from "./licence-check.ts";
import { parseLicenceCsv, type LicenceCsvRow, type LicenceImportIssue } from "./licence-csv.ts";

/** Refused import: nothing was written. `issues` lists every problem with its line. */
export class LicenceImportError extends Error {
  override name = "LicenceImportError";
  constructor(
    readonly code: "NOT_UTF8" | "INVALID_ROWS",
    message: string,
    readonly messageJa: string,
    readonly issues: LicenceImportIssue[],
  ) {
    super(message);
  }
}

export interface LicenceImportResult {
  /** licence_imports.id, also the audit record's objectId. */
  importId: number;
  /** SHA-256 of the file's bytes, hex. */
  fileSha256: string;
  rows: number;
  inserted: number;
  updated: number;
  unchanged: number;
}

export interface LicenceImportOptions {
  /** The hcRole table; default: policies/hcrole-codes.yaml. */
  hcRoles?: ReadonlyMap<string, HcRoleCode>;
  /** Upper bound of the dates in the file (YYYY-MM-DD); default today in Japan. */
  today?: string;
}

const LICENCE_LOCK_KEY = 0x4c49_4345; // "LICE": one import at a time, so the counts are exact
const PAGE = 5_000;
const COLUMNS = ["qualification", "registration_number", "registration_date", "name_kanji", "name_kana", "birth_date", "imported_at", "import_id"];
// `date` columns read as text: the pg driver turns a date into a local-midnight Date, which shifts
// the day wherever the process's time zone is west of UTC.
const RECORD_SELECT = `qualification, registration_number, registration_date::text AS registration_date,
  name_kanji, name_kana, birth_date::text AS birth_date`;

/**
 * Imports licence register file `csv` (format: licence-csv.ts; bytes are decoded as UTF-8, a
 * string is taken as is) as `by`. Returns the counts; writes one licence_imports row and the audit
 * record "licence_register.imported" {fileSha256, rows, inserted, updated, unchanged} in the
 * transaction that writes the rows — also when nothing changed, so the log shows which file the
 * register was last checked against.
 * @throws LicenceImportError NOT_UTF8 (e.g. a Shift_JIS export), INVALID_ROWS with every issue
 *   {line, field, message, messageJa}; nothing is written then.
 */
export async function importLicenceRegister(db: Knex, csv: string | Uint8Array, by: Actor, opts: LicenceImportOptions = {}): Promise<LicenceImportResult> {
  const bytes = typeof csv === "string" ? Buffer.from(csv, "utf8") : csv;
  const fileSha256 = createHash("sha256").update(bytes).digest("hex");
  let text: string;
  try {
    text = typeof csv === "string" ? csv : new TextDecoder("utf-8", { fatal: true }).decode(csv);
  } catch {
    throw new LicenceImportError("NOT_UTF8", "the file is not UTF-8 text (a spreadsheet's Shift_JIS CSV? save it as \"CSV UTF-8\")",
      "ファイルが UTF-8 ではありません（Shift_JIS の CSV の場合は「CSV UTF-8」で保存し直してください）",
      [{ line: 1, field: "(file)", message: "not UTF-8", messageJa: "UTF-8 ではありません" }]);
  }
  const parsed = parseLicenceCsv(text, opts.hcRoles ?? loadPolicies().hcRoles, opts.today);
  if (!parsed.ok) {
    const n = new Set(parsed.issues.map((i) => i.line)).size;
    throw new LicenceImportError("INVALID_ROWS", `licence register refused: ${n} line(s) invalid, nothing imported`,
      `免許台帳の取込を中止しました: ${n} 行に誤りがあります（何も登録していません）`, parsed.issues);
  }
  const rows = parsed.rows;

  return db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(?)", [LICENCE_LOCK_KEY]);
    const existing = await readExisting(trx, rows);
    const write = rows.filter((r) => {
      const old = existing.get(keyOf(r));
      return !old || !sameRecord(old, r);
    });
    const inserted = rows.filter((r) => !existing.has(keyOf(r))).length;
    const counts = { rows: rows.length, inserted, updated: write.length - inserted, unchanged: rows.length - write.length };
    const at = new Date();
    const [{ id }] = await trx("licence_imports").insert({ file_sha256: fileSha256, ...counts, actor: by.actor, at }).returning("id");
    await upsertRows(trx, write, at, Number(id));
    await appendAudit(trx, [{
      actor: by.actor,
      role: by.role,
      action: "licence_register.imported",
      objectType: "licence_import",
      objectId: String(id),
      details: { fileSha256, ...counts },
    }]);
    return { importId: Number(id), fileSha256, ...counts };
  });
}

/**
 * The register row for `qualification` (hcRole code) and `registrationNumber` (any form the
 * canonicalisation accepts: full-width digits, leading zeros, 第…号), or undefined when there is
 * none or the number is not a number.
 */
export async function lookupLicence(db: Knex, qualification: string, registrationNumber: string): Promise<LicenceRecord | undefined> {
  const number = canonicalRegistrationNumber(registrationNumber);
  if (!number) return undefined;
  const res = await db.raw(`SELECT ${RECORD_SELECT} FROM licence_register WHERE qualification = ? AND registration_number = ?`,
    [normaliseText(qualification), number]);
  const row = res.rows[0] as Record<string, string> | undefined;
  return row ? toRecord(row) : undefined;
}

const keyOf = (r: Pick<LicenceRecord, "qualification" | "registrationNumber">) => `${r.qualification}\u0000${r.registrationNumber}`;

function sameRecord(a: LicenceRecord, b: LicenceRecord): boolean {
  return a.registrationDate === b.registrationDate && a.nameKanji === b.nameKanji && a.nameKana === b.nameKana && a.birthDate === b.birthDate;
}

function toRecord(row: Record<string, string>): LicenceRecord {
  return {
    qualification: row.qualification,
    registrationNumber: row.registration_number,
    registrationDate: row.registration_date,
    nameKanji: row.name_kanji,
    nameKana: row.name_kana,
    birthDate: row.birth_date,
  };
}

/** The register rows sharing a key with `rows`, read in pages of PAGE keys. */
async function readExisting(trx: Knex.Transaction, rows: LicenceCsvRow[]): Promise<Map<string, LicenceRecord>> {
  const out = new Map<string, LicenceRecord>();
  for (let i = 0; i < rows.length; i += PAGE) {
    const page = rows.slice(i, i + PAGE);
    const res = await trx.raw(
      `SELECT ${RECORD_SELECT} FROM licence_register WHERE (qualification, registration_number) IN (VALUES ${page.map(() => "(?, ?)").join(",")})`,
      page.flatMap((r) => [r.qualification, r.registrationNumber]),
    );
    for (const row of res.rows as Record<string, string>[]) {
      const rec = toRecord(row);
      out.set(keyOf(rec), rec);
    }
  }
  return out;
}

/** INSERT … ON CONFLICT DO UPDATE for new and changed rows, PAGE rows per statement. */
async function upsertRows(trx: Knex.Transaction, rows: LicenceCsvRow[], at: Date, importId: number): Promise<void> {
  const tuple = `(${COLUMNS.map(() => "?").join(",")})`;
  const set = COLUMNS.filter((c) => c !== "qualification" && c !== "registration_number").map((c) => `${c} = EXCLUDED.${c}`).join(", ");
  for (let i = 0; i < rows.length; i += PAGE) {
    const page = rows.slice(i, i + PAGE);
    await trx.raw(
      `INSERT INTO licence_register (${COLUMNS.join(",")}) VALUES ${page.map(() => tuple).join(",")}
       ON CONFLICT (qualification, registration_number) DO UPDATE SET ${set}`,
      page.flatMap((r) => [r.qualification, r.registrationNumber, r.registrationDate, r.nameKanji, r.nameKana, r.birthDate, at, importId]),
    );
  }
}
