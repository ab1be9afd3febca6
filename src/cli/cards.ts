/** `hpki cards provision | list`: blank IC cards (PKCS#11 tokens) and their PIN mailers. */
import type { Command } from "commander";
import { appendAudit } from "../audit/log.ts";
import { provisionCards } from "../ia/cards.ts";
import { cardPinKey, migrateSoPinSlips } from "../ia/card-pins.ts";
import { cliActor, table, withIa } from "./run.ts";

/** Two lines from stdin: the current PIN, then the new one (never from argv, which `ps` shows). */
async function readTwoPins(): Promise<[string, string]> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const [a, b] = Buffer.concat(chunks).toString("utf8").split(/\r?\n/);
  if (!a || !b) throw new Error("give the current PIN and the new PIN on two lines of standard input");
  return [a, b];
}

export function registerCardCommands(program: Command): void {
  const cards = program.command("cards").description("IC cards (PKCS#11 tokens)");

  cards
    .command("migrate-so-pins")
    .description("seal the SO PIN slip files of earlier versions ($HPKI_HOME/mail/so-pin-*.txt) under the IA token's sealing key, then delete them (also run when the IA starts)")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const r = await migrateSoPinSlips(ctx, cliActor());
        return { text: `${r.sealed.length} SO PIN slip(s) sealed and deleted${r.unknown.length ? `; left for unknown cards: ${r.unknown.join(", ")}` : ""}.`, json: r };
      }),
    );

  cards
    .command("provision")
    .description("create blank cards labelled card-<card serial>; each PIN is written once to a PIN mailer under $HPKI_HOME/mail")
    .requiredOption("--count <n>", "number of cards", (v) => Number.parseInt(v, 10))
    .option("--json", "print one JSON object")
    .action(async (o: { count: number; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const made = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, o.count, cliActor(), await cardPinKey(ctx));
        const text = [
          table([["card", "card serial", "PIN mailer"], ...made.map((c) => [c.label, c.cardSerial, c.pinMailer])]),
          `${made.length} blank card(s). PINs are only in the PIN mailers (mode 0600).`,
        ].join("\n");
        return { text, json: { cards: made } };
      }),
    );

  cards
    .command("list")
    .description("list cards and their status")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const rows = await ctx.db("cards").orderBy("id");
        const json = rows.map((r) => ({ label: r.label, cardSerial: r.card_serial, status: r.status }));
        return { text: table([["card", "card serial", "status"], ...json.map((c) => [c.label, c.cardSerial, c.status])]), json: { cards: json } };
      }),
    );
}

/**
 * `hpki card change-pin | pin-state` (issue 13 §2), registered on the `hpki card` command the SSO
 * module creates (src/cli/sso.ts) for what a holder does with the card.
 */
export function registerCardHolderCommands(card: Command): void {
  card
    .command("change-pin")
    .description("the holder changes the card's PIN (C_SetPIN): current and new PIN on two lines of standard input")
    .requiredOption("--card <label>", "card label (card-…)")
    .option("--json", "print one JSON object")
    .action(async (o: { card: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const [oldPin, newPin] = await readTwoPins();
        await ctx.cards.changeUserPin(o.card, oldPin, newPin);
        await ctx.db.transaction((trx) => appendAudit(trx, [{ ...cliActor(), action: "card.pin_changed", objectType: "card", objectId: o.card, details: {} }]));
        return { text: `PIN of ${o.card} changed.`, json: { card: o.card, changed: true } };
      }),
    );

  card
    .command("pin-state")
    .description("the card's PIN state from its token flags (CKF_USER_PIN_LOCKED, …)")
    .requiredOption("--card <label>", "card label (card-…)")
    .option("--json", "print one JSON object")
    .action(async (o: { card: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const st = ctx.cards.pinState(o.card);
        return { text: `${o.card}: ${st.userPinLocked ? "PIN locked" : "PIN not locked"}${st.userPinFinalTry ? " (final try)" : ""}`, json: { card: o.card, ...st } };
      }),
    );
}
