/**
 * The IC card lifecycle (issue 13 §1; JAHIS HPKI IC card guideline; HPKI CP §4.9 revocation,
 * §4.4 acceptance) as data, run by lifecycle.ts on `cards.status`:
 *
 *   blank ──personalise──▶ personalised ──ship──▶ shipped ──hand_over──▶ handed_over ──activate──▶ active
 *     │  └─release (withdrawn request, nothing on the card: stays blank)                               │
 *     └──spoil (failed personalisation, unknown state)──▶ spoiled ◀──spoil── personalised            │
 *   active ──pin_lock──▶ pin_locked ──pin_unblock──▶ active                                         │
 *   active | pin_locked | handed_over ──suspend (emergency hold)──▶ suspended ──resume──▶ active ◀──┘
 *   personalised | shipped | handed_over | active | pin_locked | suspended ──revoke──▶ revoked
 *   handed_over | active | pin_locked | suspended | revoked ──return (返却)──▶ returned
 *   returned | revoked | spoiled | blank ──destroy (廃棄)──▶ destroyed
 *
 * handed_over becomes active when the RA accepts the signed receipt (受領書) — the holder's
 * acknowledgement of the card (HPKI-PROFILE §9.3 step 6). Each transition writes a card_events row
 * and an audit record. A replacement card (loss reissue, renewal) is linked both ways with
 * `replaces_card_id` / `replaced_by_card_id` (linkReplacementCard).
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { ConflictError, ValidationError } from "./errors.ts";
import {
  applyLifecycle, lifecycleHistory, lockLifecycleRow, type Lifecycle, type LifecycleActor, type LifecycleEvent, type LifecycleOptions,
  type LifecycleRole, type LifecycleStep,
} from "./lifecycle.ts";

export const CARD_STATES = [
  "blank", "personalised", "shipped", "handed_over", "active", "pin_locked", "suspended", "revoked", "returned", "destroyed", "spoiled",
] as const;
export type CardState = (typeof CARD_STATES)[number];

/** States a card never leaves except to be destroyed (or not even that). */
export const TERMINAL_CARD_STATES: readonly CardState[] = ["destroyed"];
/** States in which a card is in its holder's hands and usable (login, signing). */
export const CARD_IN_USE_STATES: readonly CardState[] = ["active", "pin_locked", "handed_over"];

const LRA: LifecycleRole[] = ["lra_reviewer", "lra_manager"];
const RA: LifecycleRole[] = ["ra_officer", "ra_approver"];
const DESK: LifecycleRole[] = [...LRA, ...RA];
const IA_WORKER: LifecycleRole[] = ["ia_operator", "ia", "system"];

/** A reason is required (free text, kept in history and audit). */
function reasonRequired(_row: unknown, _a: LifecycleActor, _t: Knex.Transaction, details: Record<string, unknown>): void {
  if (typeof details.reason !== "string" || !details.reason.trim()) {
    throw new ValidationError([{ field: "reason", message: "give the reason", messageJa: "理由を入力してください。" }]);
  }
}

/** The regional association of a card: that of the application its (latest) issuance request serves. */
export async function cardLraId(trx: Knex | Knex.Transaction, cardLabel: string): Promise<number | null> {
  const r = await trx("issuance_requests as ir").join("applications as a", "a.id", "ir.application_id")
    .where("ir.card_label", cardLabel).orderBy("ir.id", "desc").first("a.lra_id");
  return r?.lra_id == null ? null : Number(r.lra_id);
}

export const cardLifecycle = {
  entity: "card",
  entityJa: "カード",
  table: "cards",
  stateColumn: "status",
  keyColumn: "label",
  historyTable: "card_events",
  historyColumn: "card_id",
  versionColumn: "version",
  updatedAtColumn: "updated_at",
  states: CARD_STATES,
  stateJa: {
    blank: "未発行（ブランク）", personalised: "発行済（書込み済）", shipped: "発送済", handed_over: "交付済", active: "利用中",
    pin_locked: "PINロック中", suspended: "一時停止", revoked: "失効", returned: "返却済", destroyed: "廃棄済", spoiled: "書込み失敗（使用不可）",
  },
  stateEn: {
    blank: "blank", personalised: "personalised", shipped: "shipped", handed_over: "handed over", active: "active",
    pin_locked: "PIN locked", suspended: "suspended", revoked: "revoked", returned: "returned", destroyed: "destroyed", spoiled: "spoiled",
  },
  lraOf: (row, trx) => cardLraId(trx, String(row.label)),
  transitions: {
    personalise: { from: ["blank"], to: "personalised", roles: IA_WORKER, event: "card.personalised", labelJa: "書込み", labelEn: "personalise" },
    release: { from: ["blank"], to: "blank", roles: [...IA_WORKER, ...DESK], event: "card.released", labelJa: "割当て解除", labelEn: "release" },
    spoil: {
      from: ["blank", "personalised"], to: "spoiled", roles: [...IA_WORKER, ...DESK], event: "card.spoiled", labelJa: "使用不可（書込み失敗）", labelEn: "spoil",
      guard: reasonRequired,
    },
    ship: { from: ["personalised"], to: "shipped", roles: IA_WORKER, event: "card.shipped", labelJa: "発送", labelEn: "ship" },
    hand_over: { from: ["shipped"], to: "handed_over", roles: DESK, event: "card.handed_over", labelJa: "交付", labelEn: "hand over" },
    activate: { from: ["handed_over"], to: "active", roles: [...RA, "ia", "system"], event: "card.activated", labelJa: "利用開始（受領書確認）", labelEn: "activate" },
    pin_lock: {
      from: ["active", "handed_over"], to: "pin_locked", roles: [...DESK, ...IA_WORKER], event: "card.pin_locked", labelJa: "PINロック記録", labelEn: "record PIN lock",
    },
    pin_unblock: { from: ["pin_locked"], to: "active", roles: ["ia_operator", "ia"], event: "card.pin_unblocked", labelJa: "PINロック解除", labelEn: "unblock PIN" },
    suspend: {
      from: ["active", "pin_locked", "handed_over"], to: "suspended", roles: [...RA, ...IA_WORKER], event: "card.suspended", labelJa: "一時停止", labelEn: "suspend",
    },
    resume: { from: ["suspended"], to: "active", roles: [...RA, ...IA_WORKER], event: "card.resumed", labelJa: "一時停止解除", labelEn: "resume" },
    revoke: {
      from: ["personalised", "shipped", "handed_over", "active", "pin_locked", "suspended"], to: "revoked", roles: [...RA, ...IA_WORKER],
      event: "card.revoked", labelJa: "失効", labelEn: "revoke",
    },
    return: {
      from: ["handed_over", "active", "pin_locked", "suspended", "revoked"], to: "returned", roles: [...DESK, "ia_operator", "ia"],
      event: "card.returned", labelJa: "返却受付", labelEn: "record return",
    },
    destroy: {
      from: ["returned", "revoked", "spoiled", "blank"], to: "destroyed", roles: ["lra_manager", "ra_approver", "ia_operator", "ia"],
      event: "card.destroyed", labelJa: "廃棄", labelEn: "record destruction", guard: reasonRequired,
    },
  },
} as const satisfies Lifecycle<CardState, string>;

export type CardTransition = keyof typeof cardLifecycle.transitions;

/**
 * Takes card transition `name` on the card labelled `cardLabel` inside `trx` (history + audit).
 * @throws as applyLifecycle.
 */
export function applyCardTransition(
  trx: Knex.Transaction,
  name: CardTransition,
  cardLabel: string,
  actor: LifecycleActor,
  opts: LifecycleOptions = {},
): Promise<LifecycleStep> {
  return applyLifecycle(trx, cardLifecycle, name, cardLabel, actor, opts);
}

/**
 * Like applyCardTransition, but only when the card is in one of the transition's `from` states
 * (else nothing happens and null is returned) — for steps recorded per certificate where the card
 * changes state only at the first (e.g. personalise at the first certificate written), and for
 * cards the records of an older version do not know.
 */
export async function applyCardTransitionIfDue(
  trx: Knex.Transaction,
  name: CardTransition,
  cardLabel: string,
  actor: LifecycleActor,
  opts: LifecycleOptions = {},
): Promise<LifecycleStep | null> {
  const row = await trx("cards").where({ label: cardLabel }).first("status");
  if (!row || !(cardLifecycle.transitions[name].from as readonly string[]).includes(row.status)) return null;
  return applyCardTransition(trx, name, cardLabel, actor, opts);
}

/** The first card_events row of new blank cards `ids` (provisioned: no state before). */
export async function recordCardsProvisioned(trx: Knex.Transaction, ids: number[], actor: LifecycleActor): Promise<void> {
  if (!ids.length) return;
  await trx("card_events").insert(ids.map((id) => ({
    card_id: id, transition: "provision", from_state: null, to_state: "blank", event: "card.provisioned", actor: actor.actor, role: actor.role, details: "{}",
  })));
}

/**
 * Links `newLabel` as the replacement of `oldLabel` (loss reissue, renewal; issue 13 §3–§4) in both
 * records — old.replaced_by_card_id, new.replaces_card_id — with a card_events row on each and one
 * audit record. @throws ConflictError when either is already linked to another card.
 */
export async function linkReplacementCard(trx: Knex.Transaction, oldLabel: string, newLabel: string, actor: LifecycleActor, why: string): Promise<void> {
  const oldCard = await lockLifecycleRow(trx, cardLifecycle, oldLabel, actor);
  const newCard = await lockLifecycleRow(trx, cardLifecycle, newLabel, actor);
  if (oldCard.id === newCard.id) throw new ConflictError("a card cannot replace itself", "同じカードを後継カードにはできません");
  if (oldCard.replaced_by_card_id != null && Number(oldCard.replaced_by_card_id) !== Number(newCard.id)) {
    throw new ConflictError(`card ${oldLabel} is already replaced by another card`, `カード ${oldLabel} には既に後継カードがあります`);
  }
  if (newCard.replaces_card_id != null && Number(newCard.replaces_card_id) !== Number(oldCard.id)) {
    throw new ConflictError(`card ${newLabel} already replaces another card`, `カード ${newLabel} は既に別のカードの後継です`);
  }
  await trx("cards").where({ id: oldCard.id }).update({ replaced_by_card_id: newCard.id, updated_at: trx.fn.now() });
  await trx("cards").where({ id: newCard.id }).update({ replaces_card_id: oldCard.id, updated_at: trx.fn.now() });
  const event = (row: typeof oldCard, transition: string, details: Record<string, unknown>) => ({
    card_id: row.id, transition, from_state: row.status, to_state: row.status, event: "card.replacement_linked",
    actor: actor.actor, role: actor.role, details: JSON.stringify(details),
  });
  await trx("card_events").insert([
    event(oldCard, "replaced_by", { replacedBy: newLabel, why }),
    event(newCard, "replaces", { replaces: oldLabel, why }),
  ]);
  await appendAudit(trx, [{
    actor: actor.actor, role: actor.role, action: "card.replacement_linked", objectType: "card", objectId: oldLabel,
    details: { replacedBy: newLabel, why },
  }]);
}

/** A card with its history, as the card page shows it. */
export interface CardRecord {
  id: number;
  label: string;
  cardSerial: string;
  state: CardState;
  stateJa: string;
  stateEn: string;
  createdAt: Date;
  replacesLabel: string | null;
  replacedByLabel: string | null;
  history: LifecycleEvent[];
}

/** The card `label` with its history and replacement links, or null. */
export async function cardRecord(db: Knex, label: string): Promise<CardRecord | null> {
  const c = await db("cards as c").leftJoin("cards as o", "o.id", "c.replaces_card_id").leftJoin("cards as n", "n.id", "c.replaced_by_card_id")
    .where("c.label", label).first("c.*", "o.label as replaces_label", "n.label as replaced_by_label");
  if (!c) return null;
  const state = c.status as CardState;
  return {
    id: Number(c.id), label: c.label, cardSerial: c.card_serial, state,
    stateJa: cardLifecycle.stateJa[state] ?? state, stateEn: cardLifecycle.stateEn[state] ?? state,
    createdAt: new Date(c.created_at), replacesLabel: c.replaces_label ?? null, replacedByLabel: c.replaced_by_label ?? null,
    history: await lifecycleHistory(db, cardLifecycle, c.id),
  };
}
