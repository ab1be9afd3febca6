/**
 * `hpki revocation-requests list|execute`: the revocation workflow's queue for operators and tests.
 * `list` reads the requests (as an auditor would); `execute` runs the IA worker once — what the IA
 * role server's poll loop does every 5 s — and needs the IA (HSM) context like `hpki revoke`.
 */
import os from "node:os";
import type { Command } from "commander";
import { executeApprovedRevocationRequests, REVOCATION_WORKER_OPERATOR } from "../ia/revocation-worker.ts";
import type { Operator } from "../pipeline/operator.ts";
import { listRevocationRequests } from "../pipeline/revocation-requests.ts";
import { REVOCATION_REQUEST_STATES } from "../pipeline/revocation-request.ts";
import { withDatabase } from "./operators.ts";
import { table, withIa } from "./run.ts";

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
          results: r.results ?? null,
        }));
        const text = rows.length
          ? table([["no", "state", "target", "reason", "emergency", "review", "created"],
            ...json.map((r) => [String(r.requestNo), String(r.state), r.cardLabel ? `card ${r.cardLabel}` : `${r.caName}:${r.serialHex}`, String(r.reason),
              r.emergency ? "yes" : "", String(r.reviewState ?? ""), r.createdAt ?? ""])])
          : "no revocation requests";
        return { text, json: { requests: json } };
      }),
    );
  rr.command("execute")
    .description("IA: execute every approved revocation request now (one transaction per request)")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const r = await executeApprovedRevocationRequests(ctx, cliOperator("ia_operator"));
        const lines = [
          ...r.executed.map((e) => `${e.requestNo}: ${e.results.map((x) => `${x.caName}:${x.serialHex} ${x.action ?? `skipped (${x.skipped})`}`).join(", ")}`),
          ...r.failed.map((f) => `${f.requestNo}: FAILED ${f.error}`),
        ];
        if (r.failed.length) process.exitCode = 1;
        return { text: lines.length ? lines.join("\n") : "no approved revocation request", json: r };
      }),
    );
}
