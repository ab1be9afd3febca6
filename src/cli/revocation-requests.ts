/**
 * `hpki revocation-requests list|execute|retry`: the revocation workflow's queue for operators and
 * tests. `list` reads the requests (as an auditor would); `execute` runs the IA worker once — what
 * the IA role server's poll loop does every 5 s — and needs the IA (HSM) context like `hpki
 * revoke`; `retry` puts a failed request back in the IA's queue, as the RA console's retry button
 * does. A retry is an RA approver's decision (see src/pipeline/revocation-request.ts), so the
 * command signs the approver in first — password and TOTP code, like the console, audited as
 * operator.login with console "cli" — and acts as that operator: shell access to the CA host alone
 * does not make anyone an RA approver.
 */
import fs from "node:fs";
import os from "node:os";
import type { Command } from "commander";
import { changedSerials, executeApprovedRevocationRequests, REVOCATION_WORKER_OPERATOR } from "../ia/revocation-worker.ts";
import { describeStatusRefresh, refreshStatusAfterRevocation } from "../ia/status-after-revocation.ts";
import { NotFoundError } from "../pipeline/errors.ts";
import { auditActor, type Operator } from "../pipeline/operator.ts";
import { listRevocationRequests, retryRevocationRequest } from "../pipeline/revocation-requests.ts";
import { REVOCATION_REQUEST_STATES } from "../pipeline/revocation-request.ts";
import type { Db } from "../store/db.ts";
import { loadConfig } from "../config.ts";
import { withOperatorSecrets } from "../operators/operator-secrets.ts";
import { authenticate } from "../operators/operators.ts";
import { withDatabase } from "./operators.ts";
import { statusRefreshDeps } from "./revocation.ts";
import { askSecret, table, withIa } from "./run.ts";

/** The CLI user as a read-only operator (listing) or as the IA worker (execute). */
function cliOperator(role: "auditor" | "ia_operator"): Operator {
  const username = `cli:${os.userInfo().username}`;
  return role === "ia_operator" ? { ...REVOCATION_WORKER_OPERATOR, username } : { id: 0, username, displayName: username, role, lraId: null };
}

const iso = (v: unknown) => (v == null ? null : new Date(v as string).toISOString());

export function registerRevocationRequestCommands(program: Command): void {
  const rr = program.command("revocation-requests").description("revocation requests (失効申請): list the queue, execute approved requests (IA)");
  rr.command("list")
    .description("list revocation requests, newest first")
    .option("--state <state>", `only this state: ${REVOCATION_REQUEST_STATES.join(" | ")}`)
    .option("--review-pending", "only emergency requests waiting for their after-the-fact review")
    .option("--json", "print one JSON object")
    .action(async (o: { state?: string; reviewPending?: boolean; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const rows = await listRevocationRequests(db, cliOperator("auditor"), { state: o.state, reviewPending: o.reviewPending });
        const json = rows.map((r) => ({
          requestNo: r.request_no, state: r.state, target: r.target_kind, caName: r.ca_name ?? null, serialHex: r.serial_hex ?? null,
          cardLabel: r.card_label ?? null, channel: r.channel, reason: r.reason, emergency: Boolean(r.emergency), reviewState: r.review_state ?? null,
          createdBy: r.created_by_name, approvedBy: r.approved_by_name ?? null, createdAt: iso(r.created_at), executedAt: iso(r.executed_at),
          results: r.results ?? null, id: Number(r.id), attempts: Number(r.attempts), lastError: r.last_error ?? null,
        }));
        const text = rows.length
          ? [table([["no", "state", "target", "reason", "emergency", "review", "created"],
            ...json.map((r) => [String(r.requestNo), String(r.state), r.cardLabel ? `card ${r.cardLabel}` : `${r.caName}:${r.serialHex}`, String(r.reason),
              r.emergency ? "yes" : "", String(r.reviewState ?? ""), r.createdAt ?? ""])]),
            ...json.filter((r) => r.state === "failed").map((r) => `${r.requestNo} failed after ${r.attempts} attempt(s): ${r.lastError}`)].join("\n")
          : "no revocation requests";
        return { text, json: { requests: json } };
      }),
    );
  rr.command("execute")
    .description("IA: execute every approved revocation request now (one transaction per request)")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const op = cliOperator("ia_operator");
        const r = await executeApprovedRevocationRequests(ctx, op);
        // Committed: re-sign OCSP and regenerate the CRLs now (issue 11 §2), as `hpki revoke` does.
        const changed = changedSerials(r.executed);
        const status = changed.size ? await refreshStatusAfterRevocation(statusRefreshDeps(ctx), changed, auditActor(op)) : [];
        const lines = [
          ...r.executed.map((e) => `${e.requestNo}: ${e.results.map((x) => `${x.caName}:${x.serialHex} ${x.action ?? `skipped (${x.skipped})`}`).join(", ")}`),
          ...r.failed.map((f) => `${f.requestNo}: FAILED ${f.error}`),
          ...status.flatMap(describeStatusRefresh),
        ];
        if (r.failed.length) process.exitCode = 1;
        return { text: lines.length ? lines.join("\n") : "no approved revocation request", json: status.length ? { ...r, status } : r };
      }),
    );
  rr.command("retry")
    .description("RA approver: put a failed revocation request back in the IA's queue once the cause of the failure is fixed (signs the approver in: password + TOTP)")
    .requiredOption("--id <id>", "the request: its number (R2026-000001) or its id")
    .requiredOption("--username <name>", "the RA approver's login name")
    .option("--password-file <file>", "read the approver's password from this file instead of asking")
    .option("--totp <code>", "the approver's current 6-digit TOTP code (asked when absent)")
    .option("--note <text>", "what was fixed (kept in the audit record)")
    .option("--json", "print one JSON object")
    .action(async (o: { id: string; username: string; passwordFile?: string; totp?: string; note?: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const password = o.passwordFile ? fs.readFileSync(o.passwordFile, "utf8").replace(/\r?\n$/, "") : await askSecret({ en: "password", ja: "パスワード" }, "--password-file");
        const totp = o.totp ?? (await askSecret({ en: "TOTP code", ja: "ワンタイムコード" }, "--totp", { echo: true }));
        const op = await withOperatorSecrets(loadConfig(), db, () => authenticate(db, o.username, password, totp, { allowedRoles: ["ra_approver"], console: "cli" }));
        const row = await retryRevocationRequest(db, op, await requestId(db, o.id), { note: o.note });
        return {
          text: `${row.request_no} is back in the IA's queue (retried by ${op.username}) / 失効申請 ${row.request_no} を再処理に回しました`,
          json: { requestNo: row.request_no, id: Number(row.id), state: row.state, attempts: Number(row.attempts), previousError: row.last_error ?? null, retriedBy: op.username },
        };
      }),
    );
}

/** The id of request `ref`: a request number (R2026-000001) or a numeric id. @throws NotFoundError. */
async function requestId(db: Db, ref: string): Promise<number> {
  const r = ref.trim();
  const row = await db("revocation_requests").where(/^\d+$/.test(r) ? { id: Number(r) } : { request_no: r.toUpperCase() }).first("id");
  if (!row) throw new NotFoundError(`no revocation request ${ref}`, `失効申請 ${ref} は見つかりません`);
  return Number(row.id);
}
