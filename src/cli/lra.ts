/** `hpki lra add|list`: regional associations (地域受付審査局), database only. */
import type { Command } from "commander";
import { addLra, listLras } from "../operators/operators.ts";
import { table } from "./run.ts";
import { cliAdminActor, withDatabase } from "./operators.ts";

export function registerLraCommands(program: Command): void {
  const lra = program.command("lra").description("regional associations (地域受付審査局, LRAs)");
  lra
    .command("add")
    .description("create a regional association")
    .requiredOption("--code <code>", 'association code "PP-NNN" (prefecture, number), e.g. 13-001')
    .requiredOption("--name <name>", "name, e.g. 東京都医師会")
    .option("--json", "print one JSON object")
    .action(async (o: { code: string; name: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const r = await addLra(db, { code: o.code, name: o.name }, cliAdminActor());
        return { text: `regional association ${r.code} ${r.name} created`, json: { ...r, createdAt: r.createdAt.toISOString() } };
      }),
    );
  lra
    .command("list")
    .description("list regional associations")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withDatabase(o, async (db) => {
        const list = await listLras(db);
        return {
          text: list.length ? table([["code", "name"], ...list.map((l) => [l.code, l.name])]) : "no regional associations",
          json: { lras: list.map((l) => ({ ...l, createdAt: l.createdAt.toISOString() })) },
        };
      }),
    );
}
