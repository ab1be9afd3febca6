/** `hpki audit verify`: recompute the audit log's hash chain and name the first broken link. */
import type { Command } from "commander";
import { verifyAuditChain, type AuditChainReport } from "../audit/verify.ts";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../store/db.ts";
import { runCommand } from "./run.ts";

export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("the hash-chained audit log");
  audit.command("verify")
    .description("recompute the audit log's hash chain; exit code 1 and the first broken link when it is broken")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) => {
      let report: AuditChainReport | undefined;
      await runCommand(o, async () => {
        const db = await openDatabase(loadConfig());
        try {
          report = await verifyAuditChain(db);
        } finally {
          await db.destroy();
        }
        return { json: report, text: describeReport(report) };
      });
      if (report && !report.ok) process.exitCode = 1;
    });
}

const WHAT_BROKE: Record<NonNullable<AuditChainReport["firstBroken"]>["reason"], { en: string; ja: string }> = {
  "hash-mismatch": { en: "the record's content or hash was changed", ja: "記録の内容またはハッシュが変更されています" },
  "prev-hash-mismatch": { en: "the record does not chain to the one before it", ja: "直前の記録とハッシュがつながっていません" },
  "sequence-gap": { en: "records before it are missing (deleted)", ja: "直前の記録が欠落しています（削除）" },
};

/** The report in English and Japanese, two lines. */
function describeReport(r: AuditChainReport): string {
  if (r.ok) {
    return `audit log: ${r.records} records, chain intact, head ${r.head ?? "(empty log)"}\n`
      + `監査ログ: ${r.records} 件、ハッシュ連鎖は正常です。先頭ハッシュ ${r.head ?? "（記録なし）"}`;
  }
  const b = r.firstBroken!;
  const what = WHAT_BROKE[b.reason];
  const detail = b.reason === "sequence-gap" ? `expected seq ${b.expected}, found seq ${b.actual}` : `expected ${b.expected}, found ${b.actual}`;
  const detailJa = b.reason === "sequence-gap" ? `seq ${b.expected} のはずが seq ${b.actual}` : `期待値 ${b.expected}、実際 ${b.actual}`;
  return `audit log: chain BROKEN at seq ${b.seq} (${b.reason}): ${what.en}; ${detail}. ${r.records} records before it are intact.\n`
    + `監査ログ: seq ${b.seq} でハッシュ連鎖が切れています（${b.reason}）: ${what.ja}。${detailJa}。それより前の ${r.records} 件は正常です。`;
}
