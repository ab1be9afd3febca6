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
 * A job is not persisted: the requests themselves carry their state in the database. After a
 * restart, requests left in "issuing" are resumed by the next job (the worker does that).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import { ConflictError, jaMessage, parseInput } from "../pipeline/errors.ts";
import type { Operator } from "../pipeline/operator.ts";
import { personaliseApprovedRequests, type FailedPersonalisation, type PersonalisedCard } from "./card-personalisation.ts";
import type { IaContext } from "./context.ts";

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
  /** Requests in this run: estimated at start, exact from the first progress report on. */
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

/**
 * Japanese explanation of a worker error message (the worker records English messages). Names
 * the likely cause and what to do; the original message is shown beside it.
 */
export function explainIssuanceFailureJa(error: string): string {
  if (/^invalid subject:/.test(error)) {
    const fields = [...error.matchAll(/(?:: |; )([\w.]+): /g)].map((m) => m[1]);
    const names: Record<string, string> = {
      hcRole: "資格（hcRole）", "name.latin": "氏名（ローマ字）", "name.kanji": "氏名（漢字）",
      "organization.latin": "組織名（英字）", "organization.kanji": "組織名（漢字）", subscriberId: "加入者ID",
    };
    const list = [...new Set(fields.map((f) => names[f] ?? f))].join("、");
    return `申込内容が証明書プロファイルの要件を満たさないため、証明書を発行しませんでした${list ? `（${list}）` : ""}。登録局で申込内容を確認・修正してから再発行してください。`;
  }
  if (/lint/i.test(error)) return "証明書プロファイル検査（lint）で不合格となったため、署名しませんでした。プロファイルと申込内容を確認してから再発行してください。";
  if (/is not in the HSM|CA key/.test(error)) return "発行局CAの鍵がHSMに見つかりません。HSMの状態を確認してから再発行してください。";
  if (/PIN|CKR_|card|token|HSM|PKCS#11/i.test(error)) return "HSMまたはカードの操作に失敗しました。カード・HSMの状態を確認してから再発行してください（同じカードで再開します）。";
  if (/profile/.test(error)) return "証明書プロファイルの設定に問題があります。policies/ の設定を確認してください。";
  return "発行処理中にエラーが発生しました。詳細を確認し、原因を取り除いてから再発行してください。";
}

/** Runs issuance jobs for one IA context; see the module comment. */
export class IssuanceJobRunner {
  private readonly jobs = new Map<string, IssuanceJob>();
  private running: { job: IssuanceJob; done: Promise<void> } | null = null;

  constructor(
    private readonly ctx: IaContext,
    private readonly opts: { log?: Logger; keep?: number } = {},
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
   * Starts a job issuing up to `limit` approved requests as `op` and returns it once its total is
   * estimated; the work goes on in the background. @throws ConflictError while another job runs.
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
    try {
      job.total = await this.estimate(limit);
    } catch (e) {
      this.finish(job, e);
      release();
      throw e;
    }
    void this.run(job, op).finally(release);
    return job;
  }

  /** Waits for the running job (if any) to finish; call before closing the IA context. */
  async idle(): Promise<void> {
    await this.running?.done;
  }

  private async estimate(limit: number): Promise<number> {
    const count = async (state: string) => Number((await this.ctx.db("issuance_requests").where({ state }).count({ n: "*" }).first())?.n ?? 0);
    return (await count("issuing")) + Math.min(limit, await count("approved"));
  }

  private async run(job: IssuanceJob, op: Operator): Promise<void> {
    try {
      await personaliseApprovedRequests(this.ctx, op, {
        limit: job.limit,
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
