/**
 * Replacing a subscriber's card after handover (issue 13 §3–§5; DESIGN §3, HPKI-PROFILE
 * §9.4–§9.6). Each replacement is a pipeline record in `applications` (kind reissue, change or
 * renewal) linked to the record and the card it replaces, so the new card goes through the same
 * review → issuance request (two people) → IA → delivery → handover path:
 *
 * - Loss or theft (紛失・盗難; startLossReissue): no new application form — the subscriber's
 *   verified data are reused, the licence is checked against the register again now, identity is
 *   re-checked at the desk (recordIdentityCheck) before approval, and a card-wide revocation
 *   request (keyCompromise) is filed for a second officer; the issuance request cannot be made,
 *   approved or claimed while the lost card has a live certificate (card-replacement-rules.ts).
 * - Change of particulars (記載事項変更; startChange): name change (with its document), manager
 *   role gained (with the proof of position: the new certificates carry O and OU=Director) or lost;
 *   the form values of the replaced record with the changes, validated like an intake.
 * - Renewal (更新): src/notices/renewal.ts, from the expiry notice.
 *
 * At the new card's handover (revokeReplacedCardAtHandover) the replaced card's certificates are
 * revoked with the reason of CHANGE_REASONS — for a renewal unless the deployment leaves them to
 * expire (HPKI_RENEWAL_OLD_CERTIFICATES=expire).
 */
import type { Knex } from "knex";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { applicationMachine } from "./application.ts";
import { isoDate, submitApplication, type ReplacementLinks } from "./applications.ts";
import { CHANGE_REASONS, type ChangeReason } from "./card-replacement-rules.ts";
import { ConflictError, ForbiddenError, NotFoundError, parseInput, ValidationError } from "./errors.ts";
import { assertScope, type Row } from "./machine.ts";
import { auditActor, isLraRole, type Operator } from "./operator.ts";
import { fileReplacedCardRevocation } from "./revocation-requests.ts";

/** Application states in which a replacement counts as under way (all but the dead ends). */
const DEAD_STATES = ["lra_rejected", "ra_rejected", "withdrawn"];

/** How the replaced card's certificates end when a renewal's card is handed over. */
export type RenewalOldCertificates = "revoke" | "expire";

/** The subscriber's record holding card `cardLabel` (or record `applicationId`), checked for replacement. */
export interface ReplaceableRecord {
  application: Row;
  cardLabel: string;
}

function assertDeskRole(op: Operator): void {
  if (!isLraRole(op.role) && op.role !== "ra_officer" && op.role !== "ra_approver") {
    throw new ForbiddenError(`role ${op.role} may not replace cards`, "カードの再発行・変更を受け付ける権限がありません");
  }
}

/**
 * Finds the completed record whose card is `by.cardLabel` (or record `by.applicationId`) for a
 * replacement: scope checked (an LRA operator: its own association's subscribers), the card
 * handed over and the record completed, and no other replacement of that card under way.
 * @throws ForbiddenError, NotFoundError, ConflictError.
 */
export async function findReplaceableRecord(db: Knex, op: Operator, by: { cardLabel?: string; applicationId?: number }): Promise<ReplaceableRecord> {
  assertDeskRole(op);
  const q = db("applications as a").join("issuance_requests as ir", "ir.application_id", "a.id").whereNotNull("ir.card_label");
  if (by.cardLabel) q.where("ir.card_label", by.cardLabel);
  else q.where("a.id", by.applicationId ?? 0);
  const app = (await q.first("a.*", "ir.card_label as card_label")) as (Row & { card_label: string }) | undefined;
  if (!app) {
    throw new NotFoundError(
      `no subscriber record for ${by.cardLabel ? `card ${by.cardLabel}` : `application ${by.applicationId}`}`,
      by.cardLabel ? `カード「${by.cardLabel}」の加入者記録が見つかりません` : `申込が見つかりません（${by.applicationId}）`,
    );
  }
  assertScope(applicationMachine, app, op);
  if (app.state !== "completed") {
    throw new ConflictError(
      `application ${app.application_no} is ${app.state}: only the record of a card handed over and completed is replaced`,
      `申込 ${app.application_no} は完了していないため、再発行・変更の対象になりません（状態: ${applicationMachine.stateJa[app.state as keyof typeof applicationMachine.stateJa] ?? app.state}）`,
    );
  }
  const under = await db("applications").where({ replaces_card_label: app.card_label }).whereNotIn("state", DEAD_STATES).first("application_no");
  if (under) {
    throw new ConflictError(
      `card ${app.card_label} is already being replaced (${under.application_no})`,
      `カード ${app.card_label} の再発行・変更はすでに受付済みです（${under.application_no}）`,
    );
  }
  return { application: app, cardLabel: app.card_label };
}

/** The intake form values (applicationInputSchema's names) of a subscriber record. */
export function formValuesOf(app: Row): Record<string, string> {
  const s = (v: unknown) => (v == null ? "" : String(v));
  return {
    nameKanji: s(app.name_kanji), nameKana: s(app.name_kana), nameLatin: s(app.name_latin), birthDate: isoDate(app.birth_date),
    postalCode: s(app.postal_code), address: s(app.address), phone: s(app.phone), email: s(app.email),
    qualification: s(app.qualification), licenceNumber: s(app.licence_number), licenceDate: isoDate(app.licence_date),
    organizationKanji: s(app.organization_kanji), organizationLatin: s(app.organization_latin), managerRole: s(app.manager_role),
    requestSign: app.request_sign ? "on" : "", requestAuth: app.request_auth ? "on" : "",
  };
}

function linksOf(r: ReplaceableRecord, kind: ReplacementLinks["kind"], reason: ChangeReason): ReplacementLinks {
  return {
    kind, replacesApplicationId: Number(r.application.id), replacesCardLabel: r.cardLabel, changeReason: reason,
    subscriberId: r.application.subscriber_id == null ? null : String(r.application.subscriber_id),
  };
}

const lossSchema = z.object({
  cardLabel: z.string().transform((s) => s.trim()).pipe(z.string().min(1).max(100)),
  reason: z.enum(["loss", "theft"]),
  grounds: z.string().transform((s) => s.normalize("NFC").trim()).pipe(z.string().min(1).max(1000)),
});

/**
 * Starts the reissue of a lost or stolen card (issue 13 §3) at the desk, in one transaction:
 * files the card-wide revocation request (keyCompromise, for a second RA officer to approve — or
 * links the one already filed; an emergency hold is made permanent by it) and records the reissue
 * (kind reissue, state received) from the subscriber's verified data, with the licence checked
 * against the register again now. The desk then records the identity check; the reissue is
 * approved like an application and its issuance request waits for the revocation.
 * @returns the reissue record and the revocation request (null when every certificate of the
 *   card was already revoked).
 * @throws ValidationError (fields), ForbiddenError, NotFoundError, ConflictError (not completed,
 *   already being replaced).
 */
export async function startLossReissue(
  db: Knex,
  op: Operator,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  input: unknown,
): Promise<{ application: Row; revocationRequest: Row | null }> {
  const a = parseInput(lossSchema, input);
  const r = await findReplaceableRecord(db, op, { cardLabel: a.cardLabel });
  return db.transaction(async (trx) => {
    const reason = CHANGE_REASONS[a.reason];
    const revocationRequest = await fileReplacedCardRevocation(trx, op, {
      cardLabel: r.cardLabel, reason: "keyCompromise", approved: false,
      grounds: `${reason.ja}（${reason.en}）: ${a.grounds}`,
    });
    const application = await submitApplication(trx, op, hcRoles, formValuesOf(r.application), {
      channel: isLraRole(op.role) ? undefined : "ra_desk",
      replacement: linksOf(r, "reissue", a.reason),
    });
    const [row] = (await trx("applications").where({ id: application.id })
      .update({ old_card_revocation_request_id: revocationRequest?.id ?? null }).returning("*")) as Row[];
    await appendAudit(trx, [{
      ...auditActor(op), action: "application.reissue_started", objectType: "application", objectId: String(row.application_no),
      details: { reason: a.reason, replacesCard: r.cardLabel, replacesApplication: r.application.application_no, revocationRequest: revocationRequest?.request_no ?? null },
    }]);
    return { application: row, revocationRequest };
  });
}

const changeSchema = z.object({ change: z.enum(["name_change", "role_gained", "role_lost"]) });

/**
 * The form values of a change of particulars of the record holding card `cardLabel`, for the
 * desk to edit (the changed name, the manager role gained or removed).
 */
export async function prefillChange(db: Knex, op: Operator, cardLabel: string): Promise<{ replaces: Row; cardLabel: string; values: Record<string, string> }> {
  const r = await findReplaceableRecord(db, op, { cardLabel });
  return { replaces: r.application, cardLabel: r.cardLabel, values: formValuesOf(r.application) };
}

/**
 * Takes a change of particulars (記載事項変更; issue 13 §5) for card `cardLabel`: `input.change`
 * is name_change, role_gained or role_lost and the other fields are the intake form's, prefilled
 * from the replaced record with the changes applied — validated and dry-run like an intake, the
 * licence checked against the register. The change must match what changed (a new name; a
 * manager role set where there was none; the manager role removed).
 * @throws ValidationError (fields), ForbiddenError, NotFoundError, ConflictError.
 */
export async function startChange(
  db: Knex,
  op: Operator,
  hcRoles: ReadonlyMap<string, HcRoleCode>,
  cardLabel: string,
  input: Record<string, unknown>,
): Promise<Row> {
  const { change } = parseInput(changeSchema, input);
  const r = await findReplaceableRecord(db, op, { cardLabel });
  const before = formValuesOf(r.application);
  const values = { ...before, ...input };
  const nfc = (v: unknown) => String(v ?? "").normalize("NFC").trim();
  const mismatch = change === "name_change"
    ? nfc(values.nameKanji) === before.nameKanji && nfc(values.nameLatin) === before.nameLatin && nfc(values.nameKana) === before.nameKana
    : change === "role_gained" ? !nfc(values.managerRole) || Boolean(before.managerRole) : Boolean(nfc(values.managerRole)) || !before.managerRole;
  if (mismatch) {
    const m = {
      name_change: ["the name is unchanged", "氏名が変更されていません。"],
      role_gained: ["choose the manager role gained (the record has none)", "追加する管理者資格を選択してください（現在は管理者資格なし）。"],
      role_lost: ["clear the manager role (the record has one)", "管理者資格を外してください。"],
    }[change];
    throw new ValidationError([{ field: change === "name_change" ? "nameKanji" : "managerRole", message: m[0], messageJa: m[1] }]);
  }
  const { change: _c, channel: _ch, ...form } = values as Record<string, unknown>;
  return submitApplication(db, op, hcRoles, form, {
    channel: isLraRole(op.role) ? undefined : input.channel === "ra_mail" ? "ra_mail" : "ra_desk",
    replacement: linksOf(r, "change", change),
  });
}

/**
 * At the handover of a replacement card (inside handOverCard's transaction): the replaced card's
 * certificates are revoked — a card-wide request filed approved for the IA worker, with the
 * reason of CHANGE_REASONS (superseded for a renewal, affiliationChanged for a changed name or a
 * lost manager role…) — or, for a renewal with `renewalOldCertificates` "expire", left to expire
 * (audited). A loss reissue's old card was revoked before issuance; nothing to do.
 */
export async function revokeReplacedCardAtHandover(
  trx: Knex.Transaction,
  op: Operator,
  app: Row,
  renewalOldCertificates: RenewalOldCertificates = "revoke",
): Promise<void> {
  if (!app.replaces_card_label || app.kind === "reissue" || app.kind === "new") return;
  const reason = CHANGE_REASONS[String(app.change_reason) as ChangeReason] ?? CHANGE_REASONS.renewal;
  if (app.kind === "renewal" && renewalOldCertificates === "expire") {
    await appendAudit(trx, [{
      ...auditActor(op), action: "application.replaced_card_left_to_expire", objectType: "application", objectId: String(app.application_no),
      details: { replacedCard: app.replaces_card_label, policy: "HPKI_RENEWAL_OLD_CERTIFICATES=expire" },
    }]);
    return;
  }
  const request = await fileReplacedCardRevocation(trx, op, {
    cardLabel: String(app.replaces_card_label), reason: reason.oldCardReason, approved: true,
    grounds: `${APPLICATION_KIND_JA[String(app.kind)] ?? ""}カード交付（${app.application_no}）による置換 / replaced by the card of ${app.application_no} (${reason.en})`,
  });
  if (request) await trx("applications").where({ id: app.id }).update({ old_card_revocation_request_id: request.id });
}

const APPLICATION_KIND_JA: Record<string, string> = { renewal: "更新", change: "記載事項変更" };
