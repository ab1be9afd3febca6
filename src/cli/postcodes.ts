/** `hpki postcodes import KEN_ALL.CSV`: load Japan Post's postal code list for the intake form's address fill (issue 12 §4). */
import fs from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { importPostcodes } from "../registration/postcodes.ts";
import { openDatabase } from "../store/db.ts";
import { cliActor, runCommand } from "./run.ts";

export function registerPostcodeCommands(program: Command): void {
  const postcodes = program.command("postcodes").description("Japan Post's postal code list (KEN_ALL.CSV) for the address fill of the intake form");
  postcodes.command("import")
    .description("replace the postal code list with a KEN_ALL.CSV file as Japan Post publishes it (Shift_JIS, 15 columns, no header); all rows or none")
    .argument("<file>", "KEN_ALL.CSV (unzipped)")
    .option("--json", "print one JSON object")
    .action(async (file: string, o: { json?: boolean }) =>
      runCommand(o, async () => {
        const bytes = fs.readFileSync(file);
        const db = await openDatabase(loadConfig());
        try {
          const r = await importPostcodes(db, bytes, { ...cliActor(), role: "ra" });
          return {
            json: r,
            text: [
              `postal codes: ${r.rows} addresses for ${r.codes} codes from ${file} (sha256 ${r.fileSha256})`,
              `郵便番号: ${r.codes} 件の郵便番号（住所 ${r.rows} 件）を取り込みました`,
            ].join("\n"),
          };
        } finally {
          await db.destroy();
        }
      }),
    );
}
