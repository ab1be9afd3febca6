/**
 * The RA's actions on a failed issuance request (issue 12 §1; DESIGN §3): retry — after a
 * correction of the application (application-edit.ts) or as it is — or cancel.
 *
 * Retry, in one transaction:
 *   1. the licence register check is re-run and must match, and the issuability dry run must be
 *      clean (the checks of RA approval, on the data as it stands now);
 *   2. the card bound to the failed request is never used again by it: released (card lifecycle
 *      "release": back to blank, in the pool again, audited) when nothing was ever made or
 *      written on it for this request — no saga record, no certificate — or "spoiled" when
 *      anything was (a key pair planned, made or removed, a certificate
 *      issued): a spoiled card is destroyed, and the certificates issued onto it are listed in
 *      the audit record for revocation. The request is unbound (card generation + 1, so the next
 *      card's certificates get new request keys) and the IA personalises a new card;
 *   3. a request whose application was corrected after its approval goes back to "requested":
 *      the approval attested the data, so another approver — neither its creator nor its
 *      corrector (records.ts guard, migration 0130) — approves it again. An uncorrected request
 *      (the failure was the IA's: HSM, card) goes straight back to "approved".
 * Cancel withdraws the application with its request (decideApplication "withdraw", which releases
 * or sets aside the card): a new application follows if the applicant still wants a card.
 */
import type { Knex } from "knex";
import { applyCardTransitionIfDue } from "./card-lifecycle.ts";
import { lifecycleActorOf } from "./lifecycle.ts";
import { applicationMachine } from "./application.ts";
import { assertIssuable, decideApplication, deskPolicies, isoDate, licenceCheckFor } from "./applications.ts";
import { ValidationError } from "./errors.ts";
import { applyTransition, lockRow, type Row } from "./machine.ts";
import type { Operator } from "./operator.ts";
import { issuanceRequestMachine } from "./records.ts";

/** What became of the card of a failed request. */
export interface CardDisposal {
  card: string;
  status: "released" | "spoiled";
  certificatesToRevoke: { serial: string; profile: string }[];
}

/**
 * Releases or spoils the card bound to failed request `ir` (module comment, step 2) through the
 * card lifecycle (card-lifecycle.ts: history + audit "card.released" / "card.spoiled") and
 * unbinds it, inside `trx`. A card already set aside (spoiled by the IA's saga) stays so. No card
 * bound: null.
 */
export async function disposeCardOfFailedRequest(trx: Knex.Transaction, op: Operator, ir: Row): Promise<CardDisposal | null> {
  const card = (ir.card_label as string | null) ?? null;
  if (!card) return null;
  const steps = await trx("issuance_card_keys").where({ request_id: ir.id, card_label: card }).select("profile", "step");
  // Certificates of this card (recorded with their card at the intent, issuance.ts): other cards
  // of the same request, set aside earlier, are not this disposal's.
  const certificates = await trx("certificates").where({ card_label: card }).select("serial_hex", "status", "profile");
  const status = steps.length || certificates.length ? "spoiled" : "released";
  const certificatesToRevoke = certificates.filter((c) => c.status === "issued").map((c) => ({ serial: String(c.serial_hex), profile: String(c.profile) }));
  await applyCardTransitionIfDue(trx, status === "spoiled" ? "spoil" : "release", card, lifecycleActorOf(op), {
    details: {
      request: Number(ir.id), steps: steps.map((s) => `${s.profile}:${s.step}`), certificatesToRevoke,
      reason: status === "spoiled" ? "failed issuance retried with keys or certificates on the card" : "failed issuance retried, nothing written on the card",
    },
  });
  await trx("issuance_requests").where({ id: ir.id }).update({ card_label: null, card_generation: trx.raw("card_generation + 1") });
  return { card, status, certificatesToRevoke };
}

/** The result of a retry: the request after it, whether it needs approval again, its old card. */
export interface RetryResult {
  request: Row;
  reapproval: boolean;
  card: CardDisposal | null;
}

/**
 * Retries failed issuance request `requestId` as RA officer `op` (module comment).
 * @throws ConflictError when the request is not failed (someone acted first); ValidationError
 *   when the licence check does not match or the dry run names a field to correct.
 */
export async function retryFailedIssuance(db: Knex, op: Operator, requestId: number): Promise<RetryResult> {
  return db.transaction(async (trx) => {
    const ir = await lockRow(trx, issuanceRequestMachine, requestId, op);
    const app = await lockRow(trx, applicationMachine, Number(ir.application_id), op);
    if (ir.state === "failed") await assertStillApprovable(trx, app);
    const corrected = ir.corrected_at != null && (ir.approved_at == null || new Date(String(ir.corrected_at)) > new Date(String(ir.approved_at)));
    const card = ir.state === "failed" ? await disposeCardOfFailedRequest(trx, op, ir) : null;
    const details = { card: card?.card ?? null, cardStatus: card?.status ?? null, corrected, lastError: String(ir.last_error ?? "").slice(0, 300) };
    const request = corrected
      ? await applyTransition(trx, issuanceRequestMachine, "resubmit", requestId, op, { patch: { approved_by: null, approved_at: null, last_error: null }, details })
      : await applyTransition(trx, issuanceRequestMachine, "ra_retry", requestId, op, { patch: { last_error: null }, details });
    return { request, reapproval: corrected, card };
  });
}

/** The checks of RA approval on the application as it stands: licence match, issuable. */
async function assertStillApprovable(trx: Knex.Transaction, app: Row): Promise<void> {
  const check = await licenceCheckFor(trx, {
    qualification: String(app.qualification), licenceNumber: String(app.licence_number), licenceDate: isoDate(app.licence_date),
    nameKanji: String(app.name_kanji), nameKana: String(app.name_kana), birthDate: isoDate(app.birth_date),
  });
  await trx("applications").where({ id: app.id }).update({ licence_check: JSON.stringify(check) });
  if (check.result !== "match") {
    throw new ValidationError([{
      field: "licenceCheck",
      message: `the licence register check is "${check.result}": correct the application before retrying`,
      messageJa: "免許情報が資格確認台帳と一致しません。申込内容を訂正してから再発行してください。",
    }]);
  }
  assertIssuable(app, deskPolicies());
}

/**
 * Cancels failed issuance request `requestId`: its application is withdrawn with it, for
 * `reason` (required). @throws ValidationError without a reason; ConflictError when the request
 * is being worked by the IA or issued.
 */
export async function cancelFailedIssuance(db: Knex, op: Operator, requestId: number, reason: string): Promise<Row> {
  const ir = (await db("issuance_requests").where({ id: requestId }).first("application_id")) as Row | undefined;
  if (!ir) return lockRowOutside(db, op, requestId);
  return decideApplication(db, op, Number(ir.application_id), "withdraw", { reason });
}

/** Raises the NotFoundError of a missing request the same way the machine does. */
async function lockRowOutside(db: Knex, op: Operator, requestId: number): Promise<Row> {
  return db.transaction((trx) => lockRow(trx, issuanceRequestMachine, requestId, op));
}
