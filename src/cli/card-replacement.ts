/**
 * `hpki card-replacement reissue|change`: the desk's card replacement workflows (issue 13 §3, §5)
 * from the command line, as the console's /cards/:label/reissue and /change do. The desk officer
 * is signed in first (password + TOTP, audited operator.login with console "cli") and the command
 * acts as that operator; the record then follows the usual review and issuance path.
 */
import fs from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { withOperatorSecrets } from "../operators/operator-secrets.ts";
import { authenticate } from "../operators/operators.ts";
import { startChange, startLossReissue } from "../pipeline/card-replacement.ts";
import type { Operator } from "../pipeline/operator.ts";
import { loadPolicies } from "../policies.ts";
import type { Db } from "../store/db.ts";
import { withDatabase } from "./operators.ts";
import { askSecret } from "./run.ts";

interface SignInOptions {
  username: string;
  passwordFile?: string;
  totp?: string;
}

/** Signs a desk operator (RA officer/approver or LRA reviewer/manager) in, as the console would. */
async function signInDesk(db: Db, o: SignInOptions): Promise<Operator> {
  const password = o.passwordFile ? fs.readFileSync(o.passwordFile, "utf8").replace(/\r?\n$/, "") : await askSecret({ en: "password", ja: "パスワード" }, "--password-file");
  const totp = o.totp ?? (await askSecret({ en: "TOTP code", ja: "ワンタイムコード" }, "--totp", { echo: true }));
  return withOperatorSecrets(loadConfig(), db, () =>
    authenticate(db, o.username, password, totp, { allowedRoles: ["ra_officer", "ra_approver", "lra_reviewer", "lra_manager"], console: "cli" }));
}

function signInOptions(c: Command): Command {
  return c.requiredOption("--username <name>", "the desk officer's login name")
    .option("--password-file <file>", "read the password from this file instead of asking")
    .option("--totp <code>", "the current 6-digit TOTP code (asked when absent)")
    .option("--json", "print one JSON object");
}

export function registerCardReplacementCommands(program: Command): void {
  const cr = program.command("card-replacement").description("reissue a lost or stolen card, or change the registered particulars (再発行・記載事項変更)");
  signInOptions(cr.command("reissue")
    .description("start the reissue of a lost or stolen card: the reissue record from the verified data and a keyCompromise revocation request for a second officer")
    .requiredOption("--card <label>", "the lost card's label")
    .requiredOption("--reason <reason>", "loss | theft")
    .requiredOption("--grounds <text>", "what was reported"))
    .action(async (o: SignInOptions & { card: string; reason: string; grounds: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const op = await signInDesk(db, o);
        const r = await startLossReissue(db, op, loadPolicies().hcRoles, { cardLabel: o.card, reason: o.reason, grounds: o.grounds });
        return {
          text: `reissue ${r.application.application_no} recorded; revocation request ${r.revocationRequest?.request_no ?? "—"} (keyCompromise) waits for a second officer / 再発行 ${r.application.application_no} を受け付けました`,
          json: { applicationNo: r.application.application_no, id: Number(r.application.id), revocationRequestNo: r.revocationRequest?.request_no ?? null },
        };
      }),
    );
  signInOptions(cr.command("change")
    .description("take a change of particulars: name_change (with --set nameKanji=… nameKana=… nameLatin=…), role_gained (--set managerRole=…), role_lost")
    .requiredOption("--card <label>", "the card whose record changes")
    .requiredOption("--change <kind>", "name_change | role_gained | role_lost")
    .option("--set <field=value...>", "form fields to change (names of the application form)"))
    .action(async (o: SignInOptions & { card: string; change: string; set?: string[]; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const op = await signInDesk(db, o);
        const fields = Object.fromEntries((o.set ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
        if (o.change === "role_lost") fields.managerRole ??= "";
        const row = await startChange(db, op, loadPolicies().hcRoles, o.card, { ...fields, change: o.change });
        return {
          text: `change ${row.application_no} received: upload its document and record the identity check / 記載事項変更 ${row.application_no} を受け付けました`,
          json: { applicationNo: row.application_no, id: Number(row.id), changeReason: row.change_reason },
        };
      }),
    );
}
