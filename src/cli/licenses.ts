/** `hpki licenses import FILE.csv`: load the national licence register (免許 register) for the licence check. */
import fs from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { importLicenceRegister, LicenceImportError } from "../pipeline/licence-register.ts";
import { openDatabase } from "../store/db.ts";
import { cliActor, runCommand } from "./run.ts";

export function registerLicenceCommands(program: Command): void {
  const licenses = program.command("licenses").description("the national licence register (免許 register) applications are checked against");
  licenses.command("import")
    .description("import a licence register CSV (UTF-8; header qualification,registration_number,registration_date,name_kanji,name_kana,birth_date); all rows or none")
    .argument("<file>", "CSV file")
    .option("--json", "print one JSON object")
    .action(async (file: string, o: { json?: boolean }) =>
      runCommand(o, async () => {
        const csv = fs.readFileSync(file);
        const db = await openDatabase(loadConfig());
        try {
          // The licence register is the RA's reference for the licence check (資格確認).
          const r = await importLicenceRegister(db, csv, { ...cliActor(), role: "ra" });
          return {
            json: r,
            text: [
              `licence register: ${r.rows} rows from ${file}: ${r.inserted} inserted, ${r.updated} updated, ${r.unchanged} unchanged (import ${r.importId}, sha256 ${r.fileSha256})`,
              `免許台帳: ${r.rows} 行を取り込みました（新規 ${r.inserted}・更新 ${r.updated}・変更なし ${r.unchanged}、取込番号 ${r.importId}）`,
            ].join("\n"),
          };
        } catch (e) {
          // Text mode prints one line per issue by field: put the file line in front of the column.
          if (e instanceof LicenceImportError && !o.json) {
            throw Object.assign(new Error(e.message), { messageJa: e.messageJa, issues: e.issues.map((i) => ({ ...i, field: `line ${i.line} ${i.field}` })) });
          }
          throw e;
        } finally {
          await db.destroy();
        }
      }),
    );
}
