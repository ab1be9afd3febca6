/**
 * `hpki hcrole list | confirm <code> --cp-version X`: the hcRole code table with each entry's
 * confirmation source (policies/hcrole-codes.yaml status + note) and the operator confirmations
 * production issuance needs for entries not confirmed from real certificates (issue 13 §9;
 * src/pipeline/hcrole-confirmations.ts).
 */
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { confirmHcRole, listHcRoleConfirmations } from "../pipeline/hcrole-confirmations.ts";
import { loadPolicies } from "../policies.ts";
import { openDatabase } from "../store/db.ts";
import { cliActor, runCommand } from "./run.ts";

export function registerHcRoleCommands(program: Command): void {
  const hc = program.command("hcrole").description("the hcRole code table (policies/hcrole-codes.yaml) and operator confirmations of its entries");
  hc.command("list")
    .description("every table entry: code, Japanese name, kind, confirmation source, and the operator confirmation if recorded")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      runCommand(o, async () => {
        const cfg = loadConfig();
        const { hcRoles } = loadPolicies(cfg.policiesDir);
        const db = await openDatabase(cfg);
        try {
          const confirmations = new Map((await listHcRoleConfirmations(db)).map((c) => [c.code, c]));
          const entries = [...hcRoles.values()].map((e) => {
            const c = confirmations.get(e.code);
            return { ...e, operatorConfirmation: c ? { cpVersion: c.cpVersion, confirmedBy: c.confirmedBy, confirmedAt: c.confirmedAt.toISOString() } : null,
              issuableInProduction: e.status === "confirmed" || Boolean(c) };
          });
          return {
            json: { mode: cfg.mode, entries },
            text: entries.map((e) => `${e.issuableInProduction ? "✔" : "✘"} ${e.code}\t${e.ja}\t${e.kind}\t${e.status}${e.operatorConfirmation ? `\tconfirmed for ${e.operatorConfirmation.cpVersion} by ${e.operatorConfirmation.confirmedBy}` : ""}`).join("\n"),
          };
        } finally {
          await db.destroy();
        }
      }),
    );
  hc.command("confirm")
    .description("record (audited) that an operator checked this entry's English string against the CP's code table; production issues it from then on")
    .argument("<code>", "the exact hcRole string, e.g. \"Director of Hospital\"")
    .requiredOption("--cp-version <version>", "the certificate policy and version checked against, e.g. \"MHLW HPKI signature CP 1.91 §7.1\"")
    .option("--note <text>", "what was compared")
    .option("--json", "print one JSON object")
    .action(async (code: string, o: { cpVersion: string; note?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const cfg = loadConfig();
        const { hcRoles } = loadPolicies(cfg.policiesDir);
        const db = await openDatabase(cfg);
        try {
          const c = await confirmHcRole(db, hcRoles, code, o.cpVersion, cliActor(), o.note);
          return {
            json: { ...c, confirmedAt: c.confirmedAt.toISOString() },
            text: [`hcRole "${c.code}" (${c.ja}) confirmed against ${c.cpVersion} by ${c.confirmedBy}`, `hcRole「${c.code}」（${c.ja}）を ${c.cpVersion} と照合済みとして記録しました`].join("\n"),
          };
        } finally {
          await db.destroy();
        }
      }),
    );
}
