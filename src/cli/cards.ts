/** `hpki cards provision | list`: blank IC cards (PKCS#11 tokens) and their PIN mailers. */
import type { Command } from "commander";
import { provisionCards } from "../ia/cards.ts";
import { cliActor, table, withIa } from "./run.ts";

export function registerCardCommands(program: Command): void {
  const cards = program.command("cards").description("IC cards (PKCS#11 tokens)");

  cards
    .command("provision")
    .description("create blank cards labelled card-<card serial>; each PIN is written once to a PIN mailer under $HPKI_HOME/mail")
    .requiredOption("--count <n>", "number of cards", (v) => Number.parseInt(v, 10))
    .option("--json", "print one JSON object")
    .action(async (o: { count: number; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const made = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, o.count, cliActor());
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
