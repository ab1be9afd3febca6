/**
 * Issuance jobs of the IA console ("issue batch", issue 3 item 5): one background run of the
 * issuance worker (personaliseApprovedRequests) inside the IA process, with its progress kept in
 * memory for the job page and its JSON poll.
 *
 * One job at a time per process: the worker opens cards one after another on the same card
 * station, and an operator watching one progress bar should not find a second run interleaved
 * with it. A second start while a job runs is refused with a ConflictError (409). Several IA
 * processes may still work the queue side by side (claims use FOR UPDATE SKIP LOCKED).
 *
 * A job claims its requests when it starts (under leases a heartbeat renews, see
 * pipeline/issuance-lease.ts), so its total is exactly what it took: requests held by another
 * live worker are not counted. A job is not persisted: the requests themselves carry their state
 * in the database. Requests of a process that stopped are taken again by the next job once their
 * lease has expired (seconds).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import { ConflictError, jaMessage, parseInput } from "../pipeline/errors.ts";
import type { Operator } from "../pipeline/operator.ts";
import type { LeaseSettings } from "../pipeline/issuance-lease.ts";
import type { ClaimedRequest } from "../pipeline/issuance-requests.ts";
import { claimForPersonalisation, personaliseClaimed, type FailedPersonalisation, type PersonalisedCard } from "./card-personalisation.ts";
import type { IaContext } from "./context.ts";
import { explainIssuanceFailureJa } from "../pipeline/issuance-failure.ts";

/** Moved to the pipeline, where the RA desk explains the same failures (issue 12 §1). */
export { explainIssuanceFailureJa };

/** Most requests one job may take; the worker's own default is 50. */
export const MAX_JOB_LIMIT = 500;
export const DEFAULT_JOB_LIMIT = 50;

/** A failed request of a job, with a Japanese explanation for the operator. */
export interface JobFailure extends FailedPersonalisation {
  errorJa: string;
}

/** One issuance job as shown on the job page and returned by GET /ia/jobs/:id. */
export interface IssuanceJob {
  id: string;
  state: "running" | "finished";
  /** Requests handled so far (issued + failed). */
  done: number;
  /** Requests this run claimed (exact: only what it could take). */
  total: number;
  limit: number;
  startedAt: Date;
  finishedAt: Date | null;
  startedBy: { id: number; username: string; displayName: string };
  issued: PersonalisedCard[];
  failed: JobFailure[];
  /** Set when the run itself stopped (database unreachable…), not for one request's failure. */
  error: { message: string; messageJa: string } | null;
}

const startSchema = z.object({
  limit: z.preprocess(
    (v) => (v === "" || v === null ? undefined : v),
    z.coerce.number().int(jaMessage("limit must be a whole number", "件数は整数で入力してください。"))
      .min(1).max(MAX_JOB_LIMIT).optional(),
  ),
});

/** Parses the body of POST /ia/jobs (`{limit?}`, form or JSON). @throws ValidationError */
export function parseJobStart(body: unknown): { limit: number } {
  const r = parseInput(startSchema, body ?? {});
  return { limit: r.limit ?? DEFAULT_JOB_LIMIT };
}

/** Runs issuance jobs for one IA context; see the module comment. */
export class IssuanceJobRunner {
  private readonly jobs = new Map<string, IssuanceJob>();
  private running: { job: IssuanceJob; done: Promise<void> } | null = null;

  constructor(
    private readonly ctx: IaContext,
    private readonly opts: { log?: Logger; keep?: number; lease?: LeaseSettings } = {},
  ) {}

  /** The running job, if any. */
  current(): IssuanceJob | null {
    return this.running?.job ?? null;
  }

  /** A job of this process by id (the last `keep`, default 20, are kept). */
  get(id: string): IssuanceJob | undefined {
    return this.jobs.get(id);
  }

  /** Jobs of this process, newest first. */
  recent(): IssuanceJob[] {
    return [...this.jobs.values()].reverse();
  }

  /**
   * Starts a job issuing up to `limit` requests as `op` and returns it once they are claimed (its
   * total); the work goes on in the background. @throws ConflictError while another job runs.
   */
  async start(op: Operator, limit: number): Promise<IssuanceJob> {
    if (this.running) {
      const r = this.running.job;
      throw new ConflictError(
        `an issuance job is already running (${r.done} of ${r.total} done, started by ${r.startedBy.username}); wait for it to finish`,
        `発行処理が実行中です（${r.total}件中${r.done}件完了、開始者: ${r.startedBy.displayName}）。終了してから開始してください。`,
      );
    }
    const job: IssuanceJob = {
      id: randomUUID(),
      state: "running",
      done: 0,
      total: 0,
      limit,
      startedAt: new Date(),
      finishedAt: null,
      startedBy: { id: op.id, username: op.username, displayName: op.displayName },
      issued: [],
      failed: [],
      error: null,
    };
    // Taken before the first await: two starts in the same tick cannot both pass the check.
    let release!: () => void;
    this.running = { job, done: new Promise((r) => (release = r)) };
    this.remember(job);
    let claims: ClaimedRequest[];
    try {
      claims = await claimForPersonalisation(this.ctx, op, { limit, lease: this.opts.lease });
      job.total = claims.length;
    } catch (e) {
      this.finish(job, e);
      release();
      throw e;
    }
    void this.run(job, op, claims).finally(release);
    return job;
  }

  /** Waits for the running job (if any) to finish; call before closing the IA context. */
  async idle(): Promise<void> {
    await this.running?.done;
  }

  private async run(job: IssuanceJob, op: Operator, claims: ClaimedRequest[]): Promise<void> {
    try {
      await personaliseClaimed(this.ctx, op, claims, {
        lease: this.opts.lease,
        onProgress: (done, total, outcome) => {
          job.done = done;
          job.total = total;
          if ("error" in outcome) job.failed.push({ ...outcome, errorJa: explainIssuanceFailureJa(outcome.error) });
          else job.issued.push(outcome);
        },
      });
      this.finish(job, null);
    } catch (e) {
      this.finish(job, e);
    }
  }

  private finish(job: IssuanceJob, e: unknown): void {
    if (e) {
      this.opts.log?.error({ err: e, job: job.id }, "issuance job stopped");
      job.error = {
        message: `the issuance job stopped: ${(e as Error).message}`,
        messageJa: "発行処理が途中で停止しました。完了していない発行依頼は次回の発行処理で再開します。管理者に連絡してください。",
      };
    }
    job.total = Math.max(job.done, e ? job.total : job.done);
    job.state = "finished";
    job.finishedAt = new Date();
    if (this.running?.job === job) this.running = null;
  }

  private remember(job: IssuanceJob): void {
    this.jobs.set(job.id, job);
    const keep = this.opts.keep ?? 20;
    for (const id of this.jobs.keys()) {
      if (this.jobs.size <= keep) break;
      if (this.jobs.get(id)?.state === "finished") this.jobs.delete(id);
    }
  }
}
