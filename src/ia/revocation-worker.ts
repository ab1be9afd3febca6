/**
 * The IA's revocation worker (DESIGN §1, §5; HPKI-PROFILE §9.5): the IA pulls approved revocation
 * requests from the pipeline — the RA never calls into the IA. For each request, in ONE
 * transaction:
 *
 *   1. claim the oldest approved request no other worker holds (FOR UPDATE SKIP LOCKED; emergency
 *      requests first), so several IA processes share the queue;
 *   2. resolve its target now (a card: every issued certificate on it);
 *   3. revokeCertificate for each certificate (hold, release, revoke, or make a hold permanent;
 *      each in a savepoint, writing its revocations row and its certificate.* audit record). A
 *      certificate already in the requested status (ALREADY_REVOKED, NOT_ON_HOLD) is recorded as
 *      skipped, not an error;
 *   4. mark the request executed with the serials done (revocation_request.executed).
 *
 * Any other error rolls the whole request back (nothing revoked) and records it as failed in a
 * second transaction; the request can be retried. Each revocation also invalidates the
 * certificate's pre-signed OCSP response in that transaction (revokeCertificate). After a run,
 * `afterRevocations` (the IA server: refreshStatusAfterRevocation) re-signs those responses and
 * regenerates the CRLs at once; the status scheduler is the catch-up.
 *
 * Latency: on Postgres the worker LISTENs for the NOTIFY raised when a request becomes approved
 * and runs at once (tens of milliseconds). Without it (a lost notification) a request
 * approved at time t is executed by t + interval + execution time — with the default 5 s interval
 * at most ≈ 5 s, ≈ 2.5 s on average, plus a few milliseconds per certificate.
 */
import type { Knex } from "knex";
import {
  claimApprovedRevocationRequest, completeRevocationRequest, failRevocationRequest, listenForApprovedRevocations, resolveRevocationTarget,
  type RevocationResult,
} from "../pipeline/revocation-requests.ts";
import type { Row } from "../pipeline/machine.ts";
import { auditActor, type Operator } from "../pipeline/operator.ts";
import { startPollLoop } from "../pipeline/poll-loop.ts";
import type { IaContext } from "./context.ts";
import { RevocationError, revokeCertificate } from "./revocation.ts";

/** Default poll interval of startRevocationWorker (ms). */
export const DEFAULT_REVOCATION_POLL_MS = 5_000;

/** The operator the IA server's worker acts as when none is given (audit actor "system:ia-revocation-worker"). */
export const REVOCATION_WORKER_OPERATOR: Operator = {
  id: 0,
  username: "system:ia-revocation-worker",
  displayName: "IA revocation worker",
  role: "ia_operator",
  lraId: null,
};

export interface ExecutedRevocationRequest {
  requestId: number;
  requestNo: string;
  emergency: boolean;
  results: RevocationResult[];
}

export interface FailedRevocationRequest {
  requestId: number;
  requestNo: string;
  error: string;
}

/** Codes of revokeCertificate that mean "already in the requested status": recorded, not fatal. */
const SKIPPABLE = new Set(["ALREADY_REVOKED", "NOT_ON_HOLD"]);

/**
 * Executes every approved revocation request now (one transaction per request, see the module
 * comment), as IA operator `op` (default REVOCATION_WORKER_OPERATOR). `limit` bounds one run
 * (default 100). Returns what was executed and what failed, in order.
 * @throws ForbiddenError when `op` is not an IA operator; database errors of the claim itself.
 */
export async function executeApprovedRevocationRequests(
  ctx: Pick<IaContext, "db">,
  op: Operator = REVOCATION_WORKER_OPERATOR,
  opts: { limit?: number } = {},
): Promise<{ executed: ExecutedRevocationRequest[]; failed: FailedRevocationRequest[] }> {
  const executed: ExecutedRevocationRequest[] = [];
  const failed: FailedRevocationRequest[] = [];
  const limit = opts.limit ?? 100;
  const failedIds = new Set<number>();
  while (executed.length + failed.length < limit) {
    let claimed: Row | null = null;
    try {
      const done = await ctx.db.transaction(async (trx) => {
        claimed = await claimApprovedRevocationRequest(trx, op);
        if (!claimed) return null;
        const results = await revokeTargets(trx, claimed, op);
        await completeRevocationRequest(trx, op, Number(claimed.id), results);
        return { requestId: Number(claimed.id), requestNo: String(claimed.request_no), emergency: Boolean(claimed.emergency), results };
      });
      if (!done) break;
      executed.push(done);
    } catch (e) {
      const row = claimed as Row | null;
      if (!row || failedIds.has(Number(row.id))) throw e;
      failedIds.add(Number(row.id));
      const error = (e as Error).message;
      await failRevocationRequest(ctx.db, op, Number(row.id), error);
      failed.push({ requestId: Number(row.id), requestNo: String(row.request_no), error });
    }
  }
  return { executed, failed };
}

/** Applies the request's reason to each certificate of its target, inside `trx`. */
async function revokeTargets(trx: Knex.Transaction, request: Row, op: Operator): Promise<RevocationResult[]> {
  const target = await resolveRevocationTarget(trx, {
    targetKind: request.target_kind as "certificate" | "card",
    caName: request.ca_name as string | null,
    serialHex: request.serial_hex as string | null,
    cardLabel: request.card_label as string | null,
  });
  const by = auditActor(op);
  const invalidityDate = request.invalidity_date ? new Date(request.invalidity_date as string) : undefined;
  const results: RevocationResult[] = [];
  for (const c of target.certificates) {
    try {
      const r = await revokeCertificate(trx, { caName: c.caName, serialHex: c.serialHex, reason: String(request.reason), invalidityDate }, by);
      results.push({ caName: c.caName, serialHex: c.serialHex, action: r.action });
    } catch (e) {
      if (!(e instanceof RevocationError && SKIPPABLE.has(e.code))) throw e;
      results.push({ caName: c.caName, serialHex: c.serialHex, skipped: e.code });
    }
  }
  return results;
}

export interface RevocationWorkerOptions {
  /** Poll interval in ms (default DEFAULT_REVOCATION_POLL_MS = 5 s). */
  intervalMs?: number;
  /** The IA operator the worker acts as (default REVOCATION_WORKER_OPERATOR). */
  operator?: Operator;
  /** Called after each run that did something (logging). */
  onRun?: (r: { executed: ExecutedRevocationRequest[]; failed: FailedRevocationRequest[] }) => void;
  /** Called when a run throws (the loop goes on). */
  onError?: (e: unknown) => void;
  /** LISTEN for approvals and run at once (default true). */
  listen?: boolean;
  /** Called after a run that changed statuses, with CA name → serials changed (re-sign OCSP, regenerate CRLs). */
  afterRevocations?: (changed: Map<string, string[]>) => Promise<void>;
}

/** CA name → serials whose status a run changed (skipped certificates left out). */
export function changedSerials(executed: ExecutedRevocationRequest[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of executed) for (const r of e.results) if (r.action) out.set(r.caName, [...(out.get(r.caName) ?? []), r.serialHex]);
  return out;
}

/**
 * Starts the in-process poll loop of the IA role server: runs executeApprovedRevocationRequests
 * now and then every `intervalMs` (never two runs at once). On Postgres it also LISTENs for the
 * notification raised when a request is approved (or an emergency request created) and runs at
 * once — execution within tens of milliseconds; the poll interval remains the bound when a
 * notification is lost. `stop()` ends the loop (and the listening connection) and
 * resolves once a run in progress has finished.
 */
export function startRevocationWorker(ctx: Pick<IaContext, "db">, opts: RevocationWorkerOptions = {}): { stop(): Promise<void> } {
  const loop = startPollLoop(async () => {
    const r = await executeApprovedRevocationRequests(ctx, opts.operator);
    if (r.executed.length || r.failed.length) opts.onRun?.(r);
    const changed = changedSerials(r.executed);
    if (changed.size && opts.afterRevocations) await opts.afterRevocations(changed);
  }, opts.intervalMs ?? DEFAULT_REVOCATION_POLL_MS, opts.onError);
  let stopped = false;
  const listening = opts.listen === false
    ? Promise.resolve(null)
    : listenForApprovedRevocations(ctx.db, () => loop.wake(), opts.onError).catch((e: unknown) => {
      opts.onError?.(e);
      return null;
    });
  void listening.then((l) => (stopped ? l?.close() : undefined));
  return {
    async stop() {
      stopped = true;
      await (await listening)?.close();
      await loop.stop();
    },
  };
}
