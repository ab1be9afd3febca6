/**
 * The hcRole table in production (issue 13 §9; HPKI-PROFILE §6.4). Japan has no numeric role
 * codes (codeDataValue is "Do not use"), so the English codeDataFreeText string is the whole
 * hcRole — and only "Medical Doctor" and "Pharmacist" are confirmed from real certificates
 * (status confirmed); "Director of Hospital" and "Director of Clinic" from secondary sources
 * (confirmed-secondary); the others are best guesses (unverified). In production mode an hcRole
 * whose entry is not `confirmed` is issued only after an operator has compared it with the CP's
 * code table and recorded that (confirmHcRole: audited, naming the CP version); in demo mode it is
 * issued with a warning.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Actor } from "../audit/actor.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { NotFoundError, ValidationError } from "./errors.ts";

/** One recorded operator confirmation of a table entry. */
export interface HcRoleConfirmation {
  code: string;
  ja: string;
  cpVersion: string;
  confirmedBy: string;
  confirmedAt: Date;
  note: string | null;
}

/**
 * Records that an operator checked table entry `code` against the certificate policy `cpVersion`
 * (e.g. "MHLW HPKI signature CP 1.91 §7.1"), replacing an earlier confirmation; audited
 * ("hcrole.confirmed" with the CP version and the entry's table status).
 * @throws NotFoundError for a code not in the table; ValidationError for an empty CP version.
 */
export async function confirmHcRole(
  db: Knex,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  code: string,
  cpVersion: string,
  by: Actor,
  note?: string,
): Promise<HcRoleConfirmation> {
  const c = code.normalize("NFC");
  const entry = hcRoles.get(c);
  if (!entry) throw new NotFoundError(`hcRole "${c}" is not in the hcRole table`, `hcRole「${c}」はコード表にありません`);
  const cp = cpVersion.normalize("NFC").trim();
  if (!cp) throw new ValidationError([{ field: "cpVersion", message: "name the CP version the entry was checked against", messageJa: "照合した CP の版を指定してください。" }]);
  return db.transaction(async (trx) => {
    const row = { code: c, ja: entry.ja, cp_version: cp, confirmed_by: by.actor, note: note?.normalize("NFC").trim() || null, confirmed_at: trx.fn.now() };
    const [saved] = await trx("hcrole_confirmations").insert(row).onConflict("code").merge().returning("*");
    await appendAudit(trx, [{
      ...by, action: "hcrole.confirmed", objectType: "hcrole", objectId: c,
      details: { ja: entry.ja, kind: entry.kind, tableStatus: entry.status, cpVersion: cp, note: row.note },
    }]);
    return confirmationFromRow(saved);
  });
}

/** Every recorded confirmation, by code. */
export async function listHcRoleConfirmations(db: Knex): Promise<HcRoleConfirmation[]> {
  return (await db("hcrole_confirmations").orderBy("code").select("*")).map(confirmationFromRow);
}

function confirmationFromRow(r: Record<string, unknown>): HcRoleConfirmation {
  return {
    code: String(r.code), ja: String(r.ja), cpVersion: String(r.cp_version), confirmedBy: String(r.confirmed_by),
    confirmedAt: new Date(r.confirmed_at as string), note: r.note == null ? null : String(r.note),
  };
}

/** How issuance treats hcRole strings that real certificates have not confirmed. */
export interface HcRoleGate {
  /** Production mode (NODE_ENV=production): refuse unless an operator confirmed the entry. */
  production: boolean;
  /** Demo mode: told once per code that an unconfirmed string is being issued. */
  warn?: (message: string) => void;
}

const warned = new Set<string>();

/**
 * Checks that hcRole `code` (status `status` in the table) may be issued: a `confirmed` entry
 * always; another one in production only with an operator confirmation recorded; in demo mode
 * with a warning (once per code and process).
 * @throws ValidationError (field hcRole, Japanese and English) in production without confirmation.
 */
export async function assertHcRoleIssuable(db: Knex, code: string | undefined, status: string | undefined, gate: HcRoleGate): Promise<void> {
  if (!code || status === "confirmed") return;
  const confirmed = await db("hcrole_confirmations").where({ code }).first("cp_version");
  if (confirmed) return;
  const what = status === "confirmed-secondary" ? "confirmed only from secondary sources" : "unverified (a best guess)";
  if (gate.production) {
    throw new ValidationError([{
      field: "hcRole",
      message: `hcRole "${code}" is ${what}: an operator must confirm the table entry against the CP first (hpki hcrole confirm "${code}" --cp-version …)`,
      messageJa: `hcRole「${code}」は実証明書で確認されていません。CP のコード表と照合し、運用者が確認を記録してから発行してください（hpki hcrole confirm）。`,
    }]);
  }
  if (!warned.has(code)) {
    warned.add(code);
    (gate.warn ?? ((m: string) => process.stderr.write(`${m}\n`)))(`warning: hcRole "${code}" is ${what}; issued in demo mode only (production refuses it until \`hpki hcrole confirm\`)`);
  }
}
