/**
 * Renewal (更新; HPKI-PROFILE §9.4): a renewal is a new application — identity and licence are
 * checked again and a new key pair is made on a new card — prefilled from the previous, completed
 * application and linked to it (applications.renewal_of; submitApplication's `renewalOf`), so the
 * subscriber keeps the subscriber identifier (subject serialNumber) assigned at the first approval.
 * The renewal replaces the previous card (applications.replaces_card_label, issue 13 §4): at the
 * new card's handover the old certificates are revoked as superseded, or left to expire
 * (HPKI_RENEWAL_OLD_CERTIFICATES; src/pipeline/card-replacement.ts).
 */
import type { Knex } from "knex";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { applicationMachine } from "../pipeline/application.ts";
import { submitApplication, type SubmitOptions } from "../pipeline/applications.ts";
import { formValuesOf } from "../pipeline/card-replacement.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../pipeline/errors.ts";
import type { Row } from "../pipeline/machine.ts";
import { assertScope } from "../pipeline/machine.ts";
import { isLraRole, type Operator } from "../pipeline/operator.ts";

/** Application states in which a renewal already counts as begun (all but the dead ends). */
const DEAD_STATES = ["lra_rejected", "ra_rejected", "withdrawn"];

/** The intake form values of a renewal (the field names of applicationInputSchema). */
export interface RenewalPrefill {
  /** The previous application's id: pass it as `renewalOf` when submitting. */
  renewalOf: number;
  previousApplicationNo: string;
  subscriberId: string | null;
  values: Record<string, string>;
}

/**
 * The application form values for renewing application `applicationId`, from that (completed)
 * application: applicant, licence, facility, manager role and the certificates asked for. The
 * operator reviews and corrects them (address, e-mail, facility may have changed) before
 * submitting with submitRenewalApplication.
 * @throws ForbiddenError (role; an LRA operator and another association's subscriber),
 *   NotFoundError, ConflictError (the application is not completed, or a renewal of it is
 *   already in progress or done).
 */
export async function prefillRenewal(db: Knex, op: Operator, applicationId: number): Promise<RenewalPrefill> {
  if (!isLraRole(op.role) && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not take renewal applications`, "更新の申込を受け付ける権限がありません");
  }
  const app = (await db("applications").where({ id: applicationId }).first()) as Row | undefined;
  if (!app) throw new NotFoundError(`application ${applicationId} not found`, `申込が見つかりません（${applicationId}）`);
  assertScope(applicationMachine, app, op);
  if (app.state !== "completed") {
    throw new ConflictError(
      `application ${app.application_no} is ${app.state}: only a completed application (card handed over) is renewed`,
      `申込 ${app.application_no} は完了していないため更新できません（状態: ${applicationMachine.stateJa[app.state as keyof typeof applicationMachine.stateJa] ?? app.state}）`,
    );
  }
  const renewal = await db("applications").where({ renewal_of: app.id }).whereNotIn("state", DEAD_STATES).first("application_no");
  if (renewal) {
    throw new ConflictError(`application ${app.application_no} is already being renewed (${renewal.application_no})`, `申込 ${app.application_no} の更新申込はすでにあります（${renewal.application_no}）`);
  }
  return {
    renewalOf: Number(app.id),
    previousApplicationNo: String(app.application_no),
    subscriberId: app.subscriber_id == null ? null : String(app.subscriber_id),
    values: formValuesOf(app),
  };
}

/**
 * Submits the renewal of application `applicationId` with the (reviewed) form `input`: the same
 * checks as prefillRenewal, then submitApplication with renewalOf. RA operators choose the
 * channel (desk or mail); LRA operators take it for their association.
 * @throws as prefillRenewal and submitApplication (ValidationError per field, ConflictError).
 */
export async function submitRenewalApplication(
  db: Knex,
  op: Operator,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  applicationId: number,
  input: unknown,
  opts: Omit<SubmitOptions, "renewalOf"> = {},
): Promise<Row> {
  const prefill = await prefillRenewal(db, op, applicationId);
  // The card it replaces: revoked as superseded at the new card's handover (issue 13 §4).
  const ir = await db("issuance_requests").where({ application_id: prefill.renewalOf }).first("card_label");
  return submitApplication(db, op, hcRoles, input, {
    ...opts,
    renewalOf: prefill.renewalOf,
    replacement: ir?.card_label
      ? { kind: "renewal", replacesApplicationId: prefill.renewalOf, replacesCardLabel: String(ir.card_label), changeReason: "renewal", subscriberId: prefill.subscriberId }
      : undefined,
  });
}
