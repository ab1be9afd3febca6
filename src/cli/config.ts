/** `hpki config table [--write]` (the README's configuration table) and `hpki config check`. */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { configTable, withConfigTable } from "../config/table.ts";
import { runCommand } from "./run.ts";

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "README.md");

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("the configuration: every environment variable, checked against one schema");
  config
    .command("table")
    .description("print the configuration table (Markdown) generated from the schema; --write puts it into README.md")
    .option("--write", `replace the table in ${path.relative(process.cwd(), README) || README}`)
    .action(async (o: { write?: boolean }) =>
      runCommand({}, async () => {
        if (!o.write) return { text: configTable(), json: undefined };
        const before = fs.readFileSync(README, "utf8");
        const after = withConfigTable(before);
        if (after !== before) fs.writeFileSync(README, after);
        return { text: after === before ? "README.md: configuration table already current" : "README.md: configuration table updated", json: undefined };
      }),
    );
  config
    .command("check")
    .description("check the environment against the schema (done at every start) and print the mode and main paths")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      runCommand(o, async () => {
        const cfg = loadConfig();
        const summary = { mode: cfg.mode, home: cfg.home, database: cfg.databaseUrl ? "external PostgreSQL" : "embedded", hsm: cfg.pkcs11Module, repoUrl: cfg.repoUrl, policies: cfg.policiesDir };
        return { text: `configuration OK / 設定は正常です\n${Object.entries(summary).map(([k, v]) => `  ${k}: ${v}`).join("\n")}`, json: summary };
      }),
    );
}
