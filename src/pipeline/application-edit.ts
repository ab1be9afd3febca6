/**
 * Corrections of an application (issue 12 §2; 利用申込の訂正, HPKI-PROFILE §9.2): the LRA and the
 * RA edit an application's form fields until its issuance request exists — and the RA also while
 * that request has failed (a correction before a retry, failed-issuance.ts). Each edit is one
 * transaction: the form validated as at intake, the issuability dry run (the IA's subject,
 * profile and lint), the licence register check re-run and stored, and one audit record
 * "application.edited" with the changed fields only, each with its value before and after (form
 * fields hold no secret: PINs and keys are never on the form).
 *
 * Who edits when:
 *   LRA reviewer / manager (own association): received, returned_to_lra, lra_approved
 *   RA officer / approver: received (direct intake), forwarded, ra_approved, and
 *     issuance_requested while its request is "failed"
 * Correcting a failed request's application voids that request's approval (approved_by cleared,
 * recorded in the audit record): the retry sends it back for a new one (failed-issuance.ts).
 * In a state that rests on an approval (lra_approved, ra_approved, a failed request) the edit must
 * keep the licence check a match: the approval was given on that evidence. Under review, an edit
 * that makes the check fail is stored, and the reviewer sees the nearest register entries
 * (licence-nearest.ts) — never applied by themselves.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { applicationMachine, type ApplicationState } from "./application.ts";
import { applicationColumns, applicationInputSchema } from "./application-input.ts";
import { assertIssuable, deskPolicies, isoDate, licenceCheckFor } from "./applications.ts";
import { ConflictError, ForbiddenError, parseInput, ValidationError } from "./errors.ts";
import { requestedProfiles } from "./issuance-requests.ts";
import { lockRow, type Row } from "./machine.ts";
import { auditActor, isLraRole, type Operator } from "./operator.ts";

/** States in which each desk may edit (see the module comment). */
const EDITABLE: Record<"lra" | "ra", readonly ApplicationState[]> = {
  lra: ["received", "returned_to_lra", "lra_approved"],
  ra: ["received", "forwarded", "ra_approved", "issuance_requested"],
};

/** States whose approval rests on the licence check matching. */
const APPROVED: ReadonlySet<string> = new Set(["lra_approved", "ra_approved", "issuance_requested"]);

/** Form field (input name) of each `applications` column the form writes. */
const FIELD_OF_COLUMN: Record<string, string> = {
  name_kanji: "nameKanji", name_kana: "nameKana", name_latin: "nameLatin", birth_date: "birthDate",
  postal_code: "postalCode", address: "address", phone: "phone", email: "email",
  qualification: "qualification", licence_number: "licenceNumber", licence_date: "licenceDate",
  organization_kanji: "organizationKanji", organization_latin: "organizationLatin", manager_role: "managerRole",
  request_sign: "requestSign", request_auth: "requestAuth",
};

/** One changed field: its value before and after the edit (dates YYYY-MM-DD, absent as null). */
export type FieldChange = { before: string | boolean | null; after: string | boolean | null };

/** The result of an edit: the row after it, the fields changed (empty: nothing was written). */
export interface EditResult {
  application: Row;
  changes: Record<string, FieldChange>;
}

function comparable(column: string, v: unknown): string | boolean | null {
  if (v == null || v === "") return null;
  if (typeof v === "boolean") return v;
  if (column === "birth_date" || column === "licence_date") return isoDate(v);
  return String(v);
}

/** Whether `op` may edit an application in state `state` at all (for the consoles' buttons). */
export function mayEdit(op: Operator, app: Row, issuanceRequestState?: string | null): boolean {
  const desk = isLraRole(op.role) ? "lra" : op.role === "ra_officer" || op.role === "ra_approver" ? "ra" : null;
  if (!desk || !EDITABLE[desk].includes(app.state as ApplicationState)) return false;
  if (desk === "ra" && app.state === "received" && app.channel === "lra") return false;
  if (app.state === "issuance_requested") return issuanceRequestState === "failed";
  return true;
}

/**
 * Edits application `applicationId` with form input `input` (every field, as at intake) as `op`.
 * @returns the row and the changed fields; nothing is written when nothing changed.
 * @throws ForbiddenError (role, another association); ConflictError (state, version, an open
 *   application of the same licence, a request that has not failed); ValidationError (the form,
 *   the dry run naming the field, a check that would stop matching after an approval).
 */
export async function editApplication(
  db: Knex,
  op: Operator,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  applicationId: number,
  input: unknown,
  opts: { expectedVersion?: number } = {},
): Promise<EditResult> {
  if (!isLraRole(op.role) && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not edit applications`, "申込を訂正する権限がありません");
  }
  const a = parseInput(applicationInputSchema(hcRoles), input);
  const columns = applicationColumns(a);
  try {
    return await db.transaction(async (trx) => {
      const row = await lockRow(trx, applicationMachine, applicationId, op);
      const ir = row.state === "issuance_requested"
        ? ((await trx("issuance_requests").where({ application_id: row.id }).forUpdate().first()) as Row | undefined)
        : undefined;
      if (!mayEdit(op, row, ir?.state)) {
        const stateJa = applicationMachine.stateJa[row.state as ApplicationState] ?? row.state;
        throw new ConflictError(
          `application ${row.application_no} is ${row.state}${ir ? ` (issuance request ${ir.state})` : ""}: it cannot be edited at this desk now`,
          `申込 ${row.application_no} は「${stateJa}」のため、この窓口では訂正できません${ir ? "（発行依頼が発行失敗のときに登録局で訂正できます）" : ""}`,
        );
      }
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== row.version) {
        throw new ConflictError(
          `application ${row.application_no} changed since it was shown (version ${row.version}, expected ${opts.expectedVersion})`,
          `申込 ${row.application_no} は表示後に更新されています。再読み込みしてから訂正してください`,
        );
      }
      const changes: Record<string, FieldChange> = {};
      for (const [column, value] of Object.entries(columns)) {
        const before = comparable(column, row[column]);
        const after = comparable(column, value);
        if (before !== after) changes[FIELD_OF_COLUMN[column] ?? column] = { before, after };
      }
      if (!Object.keys(changes).length) return { application: row, changes };
      const next = { ...row, ...columns };
      assertIssuable(next, { profiles: deskPolicies().profiles, hcRoles: deskPolicies().hcRoles });
      const before = (row.licence_check as { result?: string } | null)?.result ?? null;
      const check = await licenceCheckFor(trx, a);
      if (APPROVED.has(row.state) && check.result !== "match") {
        throw new ValidationError([{
          field: "licenceNumber",
          message: `after this edit the licence register check would be "${check.result}": an approved application must keep matching the register (nothing was changed)`,
          messageJa: "この訂正では免許情報が資格確認台帳と一致しなくなります。承認済みの申込は台帳と一致する内容にのみ訂正できます（訂正は保存していません）。",
        }]);
      }
      const [updated] = (await trx("applications").where({ id: row.id })
        .update({ ...columns, licence_check: JSON.stringify(check), version: row.version + 1, updated_at: trx.fn.now() })
        .returning("*")) as Row[];
      if (ir) {
        await trx("issuance_requests").where({ id: ir.id }).update({
          // The approval attested the data as it was: it no longer stands (failed-issuance.ts resubmits for a new one).
          corrected_by: op.id, corrected_at: trx.fn.now(), approved_by: null, approved_at: null,
          profiles: JSON.stringify(requestedProfiles(updated)), updated_at: trx.fn.now(),
        });
      }
      await appendAudit(trx, [{
        ...auditActor(op), action: "application.edited", objectType: "application", objectId: String(row.application_no),
        details: {
          state: row.state, changes, licenceCheck: { before, after: check.result },
          ...(ir ? { issuanceRequest: Number(ir.id), issuanceRequestState: ir.state, approvalWithdrawnFrom: ir.approved_by == null ? null : Number(ir.approved_by) } : {}),
        },
      }]);
      return { application: updated, changes };
    });
  } catch (e) {
    if ((e as { constraint?: string }).constraint === "applications_one_open_per_licence") {
      throw new ConflictError(
        `another application for ${a.qualification} licence ${a.licenceNumber} is already in progress`,
        `この免許（${a.licenceNumber}）の別の申込がすでに受付中のため、この登録番号には訂正できません`,
      );
    }
    throw e;
  }
}
