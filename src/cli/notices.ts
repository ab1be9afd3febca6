/**
 * `hpki notices send [--now ISO] [--json]`: sends the expiry notices due (90/30/7 days before
 * notAfter) — the daily job; safe to run as often as wanted (each notice goes out once; one left
 * "sending" by a run that stopped is sent again once its 10-minute lease has run out, see
 * src/notices/expiry.ts). Mail goes to SMTP when HPKI_SMTP_URL is set, else to .eml files under
 * $HPKI_HOME/mail/notices.
 */
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { sendExpiryNotices } from "../notices/expiry.ts";
import { createMailer } from "../notices/mailer.ts";
import { HpkiError } from "../pipeline/errors.ts";
import { withDatabase } from "./operators.ts";
import { table } from "./run.ts";

export function registerNoticeCommands(program: Command): void {
  const notices = program.command("notices").description("notices to subscribers (有効期限のお知らせ)");
  notices.command("send")
    .description("send the expiry notices due now (90, 30 and 7 days before expiry), each once")
    .option("--now <iso>", "act as if it were this time (ISO 8601 with zone; for tests and catching up)")
    .option("--json", "print one JSON object")
    .action(async (o: { now?: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const now = o.now === undefined ? new Date() : parseNow(o.now);
        const mailer = createMailer(loadConfig());
        try {
          const r = await sendExpiryNotices(db, mailer, { now, by: { actor: `cli:${process.env.USER ?? "hpki"}`, role: "ra" } });
          const text = [
            `${r.sent.length} sent, ${r.failed.length} failed, ${r.skipped} skipped (already sent or renewal under way) — via ${mailer.describe}`,
            ...(r.sent.length ? [table([["application", "subject", "days", "to"], ...r.sent.map((n) => [n.applicationNo, n.subjectKey, String(n.threshold), n.to])])] : []),
            ...r.sent.filter((n) => n.retaken).map((n) => `TAKEN AGAIN ${n.subjectKey} (${n.threshold} days): an earlier run stopped while sending it; sent again with the same Message-ID ${n.messageId} (the subscriber may have two copies)`),
            ...r.failed.map((f) => `FAILED ${f.subjectKey} (${f.threshold} days): ${f.error}`),
          ].join("\n");
          if (r.failed.length) process.exitCode = 1;
          return { text, json: { ...r, now: now.toISOString(), transport: mailer.describe } };
        } finally {
          mailer.close();
        }
      }),
    );
}

function parseNow(s: string): Date {
  const d = new Date(s);
  if (!/T.*(Z|[+-]\d\d:?\d\d)$/.test(s) || Number.isNaN(d.getTime())) {
    throw new HpkiError(`--now "${s}" is not an ISO 8601 date-time with a zone (e.g. 2031-08-24T00:00:00Z)`,
      `--now「${s}」はタイムゾーン付きの ISO 8601 日時ではありません`, 400, "invalid_input");
  }
  return d;
}
