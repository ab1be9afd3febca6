/**
 * `hpki audit verify [--checkpoint FILE]`: recompute the audit log's hash chain, compare the stored
 * head with the last record and the log with the latest signed checkpoint (and an auditor's).
 * `hpki audit checkpoint [--out FILE] [--signer-out FILE]`: sign a checkpoint of the head now.
 */
import fs from "node:fs";
import type { Command } from "commander";
import { signAuditCheckpoint } from "../audit/checkpoint.ts";
import { readAuditSignerSpki } from "../audit/checkpoint-signer.ts";
import { checkCheckpoint, checkHead, checkLatestCheckpoint, checkpointFileBytes, type CheckpointCheck, type HeadCheck } from "../audit/checkpoint-verify.ts";
import { verifyAuditChain, type AuditChainReport } from "../audit/verify.ts";
import { loadConfig } from "../config.ts";
import { parseCmsSignedData } from "../pki/cms.ts";
import { toPem } from "../pki/pem.ts";
import { openDatabase } from "../store/db.ts";
import { cliActor, runCommand, withIa } from "./run.ts";

/** The whole `hpki audit verify` result. */
export interface AuditVerifyReport extends AuditChainReport {
  /** ok of the chain alone is in firstBroken; this `ok` is the chain AND the head AND every checkpoint. */
  chainOk: boolean;
  headRow: HeadCheck;
  checkpoints: CheckpointCheck[];
  /** Why the checkpoint signer could not be pinned to the HSM key (checked against its own certificate only). */
  signerNotPinned?: string;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("the hash-chained audit log and its signed checkpoints");
  audit.command("verify")
    .description("recompute the audit log's hash chain and compare it with the stored head and the signed checkpoints; exit code 1 on any problem")
    .option("--checkpoint <file>", "also compare with this checkpoint (CMS, DER or PEM) an auditor kept")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean; checkpoint?: string }) => {
      let report: AuditVerifyReport | undefined;
      await runCommand(o, async () => {
        const cfg = loadConfig();
        const file = o.checkpoint ? checkpointFileBytes(fs.readFileSync(o.checkpoint)) : null;
        const pinned = await readAuditSignerSpki(cfg);
        const db = await openDatabase(cfg);
        try {
          const chain = await verifyAuditChain(db);
          const headRow = await checkHead(db);
          const checkpoints: CheckpointCheck[] = [];
          const latest = await checkLatestCheckpoint(db, pinned.spki);
          if (latest) checkpoints.push(latest);
          if (file) checkpoints.push(await checkCheckpoint(db, file, "file", pinned.spki));
          report = {
            ...chain,
            chainOk: chain.ok,
            ok: chain.ok && headRow.ok && checkpoints.every((c) => c.ok),
            headRow,
            checkpoints,
            ...(pinned.spki ? {} : { signerNotPinned: pinned.reason }),
          };
        } finally {
          await db.destroy();
        }
        return { json: report, text: describeReport(report) };
      });
      if (report && !report.ok) process.exitCode = 1;
    });

  audit.command("checkpoint")
    .description("sign a checkpoint of the audit log's head now with the audit key in the HSM (IA host)")
    .option("--out <file>", "write the checkpoint (CMS SignedData, DER) here, for an auditor to keep")
    .option("--signer-out <file>", "write the signer certificate (PEM) here, for openssl cms -verify -CAfile")
    .option("--json", "print one JSON object")
    .action(async (o: { out?: string; signerOut?: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const c = await signAuditCheckpoint(ctx.db, ctx.keys, cliActor());
        if (o.out) fs.writeFileSync(o.out, c.cms);
        if (o.signerOut) fs.writeFileSync(o.signerOut, toPem(parseCmsSignedData(c.cms).certificate));
        const json = { id: c.id, seq: c.seq, hash: c.hash, signedAt: c.signedAt, signerSha256: c.signerSha256, out: o.out ?? null };
        return {
          json,
          text: `audit checkpoint #${c.id} signed: seq ${c.seq}, hash ${c.hash}, ${c.signedAt.toISOString()}${o.out ? ` → ${o.out}` : ""}\n`
            + `監査チェックポイント #${c.id} に署名しました（seq ${c.seq}）。`,
        };
      }),
    );
}

const WHAT_BROKE: Record<NonNullable<AuditChainReport["firstBroken"]>["reason"], { en: string; ja: string }> = {
  "hash-mismatch": { en: "the record's content or hash was changed", ja: "記録の内容またはハッシュが変更されています" },
  "prev-hash-mismatch": { en: "the record does not chain to the one before it", ja: "直前の記録とハッシュがつながっていません" },
  "sequence-gap": { en: "records before it are missing (deleted)", ja: "直前の記録が欠落しています（削除）" },
};

/** The report in English and Japanese: the chain, the head row, then one pair of lines per checkpoint. */
function describeReport(r: AuditVerifyReport): string {
  const lines: string[] = [];
  if (r.chainOk) {
    lines.push(`audit log: ${r.records} records, chain intact, head ${r.head ?? "(empty log)"}`,
      `監査ログ: ${r.records} 件、ハッシュ連鎖は正常です。先頭ハッシュ ${r.head ?? "（記録なし）"}`);
  } else {
    const b = r.firstBroken!;
    const what = WHAT_BROKE[b.reason];
    const detail = b.reason === "sequence-gap" ? `expected seq ${b.expected}, found seq ${b.actual}` : `expected ${b.expected}, found ${b.actual}`;
    const detailJa = b.reason === "sequence-gap" ? `seq ${b.expected} のはずが seq ${b.actual}` : `期待値 ${b.expected}、実際 ${b.actual}`;
    lines.push(`audit log: chain BROKEN at seq ${b.seq} (${b.reason}): ${what.en}; ${detail}. ${r.records} records before it are intact.`,
      `監査ログ: seq ${b.seq} でハッシュ連鎖が切れています（${b.reason}）: ${what.ja}。${detailJa}。それより前の ${r.records} 件は正常です。`);
  }
  if (!r.headRow.ok) {
    lines.push(`audit log: the stored head ${r.headRow.stored} is NOT the hash of the last record (seq ${r.headRow.lastSeq}, ${r.headRow.last}): records were cut from the end or the head was rewritten`,
      `監査ログ: 保存されている先頭ハッシュが最後の記録（seq ${r.headRow.lastSeq}）のハッシュと一致しません。末尾の記録が削除されたか、先頭ハッシュが書き換えられています。`);
  }
  if (r.checkpoints.length === 0) lines.push("audit log: no signed checkpoint yet (run hpki audit checkpoint)", "監査ログ: 署名済みチェックポイントはまだありません（hpki audit checkpoint）");
  for (const c of r.checkpoints) lines.push(`${c.ok ? "ok" : "PROBLEM"}: ${c.message}`, `${c.ok ? "正常" : "問題"}: ${c.messageJa}`);
  if (r.signerNotPinned) lines.push(`note: checkpoint signatures checked against their own certificate only (${r.signerNotPinned})`, "注: チェックポイントの署名者は HSM の監査鍵と照合していません");
  return lines.join("\n");
}
