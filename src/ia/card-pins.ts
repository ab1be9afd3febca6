/**
 * Card PINs at the IA (issue 13 §2, §8): the SO PIN of every card sealed under the IA token's
 * card-PIN sealing key (src/hsm/sealing-key.ts, AES-GCM inside the HSM) in card_so_pins — never in
 * the clear; the old 0600 SO PIN slip files sealed and deleted (migrateSoPinSlips, run when the
 * IA starts and by `hpki cards migrate-so-pins`); and the PIN unblock itself, with the card
 * present: SO login + C_InitPIN with a fresh random PIN, which nobody sees — it goes sealed into a
 * new PIN mailer (pin_mailers) that the IA console prints (pin-mailers.ts) and then erases. Nobody
 * learns the old PIN: it is never asked for.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Actor } from "../audit/actor.ts";
import { SealingKey } from "../hsm/sealing-key.ts";
import { randomDigits } from "../hsm/softhsm.ts";
import { applyCardTransition } from "../pipeline/card-lifecycle.ts";
import { ConflictError } from "../pipeline/errors.ts";
import { lifecycleActorOf } from "../pipeline/lifecycle.ts";
import { applyTransition } from "../pipeline/machine.ts";
import type { Operator } from "../pipeline/operator.ts";
import { pinUnblockMachine, pinUnblockRequest } from "../pipeline/pin-unblock.ts";
import type { IaContext } from "./context.ts";

/** CKA_LABEL of the sealing key on the IA (CA) token that seals card SO PINs and mailer PINs. */
export const CARD_PIN_SEALING_KEY_LABEL = "hpki-card-pin-sealing-key";

/** AAD binding a sealed SO PIN to card row `cardId`. */
export const soPinAad = (cardId: number): string => `cards.so_pin:${cardId}`;
/** AAD binding a sealed mailer PIN to mailer `mailerNo`. */
export const mailerPinAad = (mailerNo: string): string => `pin_mailers.pin:${mailerNo}`;

const keys = new WeakMap<object, Promise<SealingKey>>();

/** The IA token's card-PIN sealing key (generated in the HSM on first use; one per context). */
export function cardPinKey(ctx: Pick<IaContext, "pool">): Promise<SealingKey> {
  let k = keys.get(ctx.pool);
  if (!k) {
    k = SealingKey.ensure(ctx.pool, CARD_PIN_SEALING_KEY_LABEL).then((r) => r.key);
    keys.set(ctx.pool, k);
    k.catch(() => keys.delete(ctx.pool));
  }
  return k;
}

/** Seals `soPin` for card row `cardId` into card_so_pins inside `trx` (insert or keep the first). */
export async function storeSealedSoPin(trx: Knex.Transaction, key: SealingKey, cardId: number, soPin: string, source: "provisioned" | "slip-file"): Promise<void> {
  const sealed = await key.seal(Buffer.from(soPin, "utf8"), soPinAad(cardId));
  await trx("card_so_pins").insert({ card_id: cardId, so_pin_sealed: sealed, source }).onConflict("card_id").ignore();
}

/** Opens the sealed SO PIN of card row `cardId`. @throws ConflictError when none is stored. */
async function openSoPin(ctx: IaContext, cardId: number, label: string): Promise<string> {
  const row = await ctx.db("card_so_pins").where({ card_id: cardId }).first("so_pin_sealed");
  if (!row) throw new ConflictError(`card ${label}: no SO PIN is stored for it (run \`hpki cards migrate-so-pins\`)`, `カード ${label} のSO PINが保管されていません`);
  return (await (await cardPinKey(ctx)).open(row.so_pin_sealed, soPinAad(cardId))).toString("utf8");
}

/** Outcome of migrateSoPinSlips. */
export interface SoPinMigration {
  sealed: string[];
  /** Slips of cards the database does not know: left in place, named here. */
  unknown: string[];
}

const SLIP = /^so-pin-(card-[A-Za-z0-9_-]+)\.txt$/;

/**
 * Seals every SO PIN slip file under `mailDir` (so-pin-<label>.txt, written by earlier versions)
 * into card_so_pins and deletes the file once the sealed value is committed; one audit record per
 * card ("card.so_pin_sealed", no PIN). Idempotent; a slip whose card is unknown stays and is reported.
 */
export async function migrateSoPinSlips(ctx: IaContext, by: Actor): Promise<SoPinMigration> {
  const out: SoPinMigration = { sealed: [], unknown: [] };
  if (!fs.existsSync(ctx.cfg.mailDir)) return out;
  const slips = fs.readdirSync(ctx.cfg.mailDir).filter((f) => SLIP.test(f)).sort();
  if (!slips.length) return out;
  const key = await cardPinKey(ctx);
  for (const f of slips) {
    const label = SLIP.exec(f)![1];
    const file = path.join(ctx.cfg.mailDir, f);
    const pin = /SO PIN: (\S+)/.exec(fs.readFileSync(file, "utf8"))?.[1];
    const card = await ctx.db("cards").where({ label }).first("id");
    if (!card || !pin) {
      out.unknown.push(label);
      continue;
    }
    await ctx.db.transaction(async (trx) => {
      await storeSealedSoPin(trx, key, Number(card.id), pin, "slip-file");
      await appendAudit(trx, [{ ...by, action: "card.so_pin_sealed", objectType: "card", objectId: label, details: { source: "slip-file", key: CARD_PIN_SEALING_KEY_LABEL } }]);
    });
    fs.rmSync(file);
    out.sealed.push(label);
  }
  return out;
}

/** A new mailer number: "PM-" + 12 characters, read aloud without confusion. */
export function newMailerNo(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  return `PM-${[...randomBytes(12)].map((b) => alphabet[b & 31]).join("")}`;
}

/** What an executed unblock returns: never the PIN. */
export interface UnblockOutcome {
  requestNo: string;
  cardLabel: string;
  pinMailerNo: string;
}

/**
 * Executes approved PIN unblock request `requestId` with the card present at the IA (issue 13 §2):
 * opens the card's sealed SO PIN, logs in as SO and sets a fresh random 8-digit user PIN with
 * C_InitPIN; then, in one transaction, the request becomes done, the card active again
 * (pin_unblock) and a PIN mailer with the new PIN sealed is queued for printing — each audited,
 * no PIN in any record. A database failure after C_InitPIN leaves the request approved: run it
 * again (the SO PIN still opens the card; the first new PIN is simply replaced).
 * @throws ConflictError (request not approved, card not PIN-locked, no SO PIN), HsmError (card absent, SO PIN refused).
 */
export async function executePinUnblock(ctx: IaContext, op: Operator, requestId: number): Promise<UnblockOutcome> {
  const req = await pinUnblockRequest(ctx.db, requestId);
  if (req.state !== "approved") {
    throw new ConflictError(`PIN unblock request ${req.request_no} is ${req.state}; it must be approved by the RA first`,
      `PINロック解除申請 ${req.request_no} は「${pinUnblockMachine.stateJa[req.state as keyof typeof pinUnblockMachine.stateJa] ?? req.state}」です（登録局の承認が必要です）`);
  }
  const card = await ctx.db("cards").where({ id: req.card_id }).first("id", "label", "status");
  if (card.status !== "pin_locked") throw new ConflictError(`card ${card.label} is ${card.status}, not PIN-locked`, `カード ${card.label} はPINロック中ではありません`);
  const soPin = await openSoPin(ctx, Number(card.id), card.label);
  const newPin = randomDigits(8);
  await ctx.cards.unblockUserPin(card.label, soPin, newPin);
  const key = await cardPinKey(ctx);
  const mailerNo = newMailerNo();
  const sealed = await key.seal(Buffer.from(newPin, "utf8"), mailerPinAad(mailerNo));
  const actor = lifecycleActorOf(op);
  await ctx.db.transaction(async (trx) => {
    const [mailer] = await trx("pin_mailers").insert({ mailer_no: mailerNo, card_id: card.id, kind: "unblock", pin_sealed: sealed, created_by: op.username }).returning("id");
    await applyTransition(trx, pinUnblockMachine, "execute", requestId, op, {
      patch: { executed_by: op.username, executed_at: trx.fn.now(), pin_mailer_id: mailer.id },
      details: { card: card.label, pinMailer: mailerNo },
    });
    await applyCardTransition(trx, "pin_unblock", card.label, actor, { details: { request: req.request_no, pinMailer: mailerNo } });
    await appendAudit(trx, [{ actor: op.username, role: op.role, action: "pin_mailer.created", objectType: "pin_mailer", objectId: mailerNo, details: { card: card.label, kind: "unblock" } }]);
  });
  return { requestNo: String(req.request_no), cardLabel: card.label, pinMailerNo: mailerNo };
}
