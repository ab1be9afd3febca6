/**
 * IA console — issuance queue and jobs (issue 3 item 5):
 *
 *   GET  /queue                         approved requests waiting, failed ones (error, retry),
 *                                       the ones being issued, and recently issued cards
 *   POST /jobs                          "issue batch": starts a background job ({limit?}) → 202
 *   GET  /jobs                          this process's recent jobs
 *   GET  /jobs/:id                      one job with its progress and each card or failure
 *   POST /issuance-requests/:id/retry   puts a failed request back in the queue
 */
import type { Router } from "express";
import type { Knex } from "knex";
import { ConflictError, NotFoundError } from "../../pipeline/errors.ts";
import { retryIssuanceRequest } from "../../pipeline/issuance-requests.ts";
import { issuanceRequestMachine } from "../../pipeline/records.ts";
import type { ConsoleKit } from "../../web/console/kit.ts";
import { DEFAULT_JOB_LIMIT, explainIssuanceFailureJa, MAX_JOB_LIMIT, parseJobStart, type IssuanceJob } from "../issuance-jobs.ts";
import { idParam, qualificationJa, sendJson, type IaGuards, type IaRouteDeps } from "./common.ts";

/** Most rows of one queue section sent or shown (the counts are always exact). */
const SECTION_LIMIT = 500;
/** Recently issued cards shown. */
const RECENT_ISSUED = 20;

interface CertificateRef {
  caName: string;
  serialHex: string;
  profile: string;
}

/** The certificates stored for each card label. */
async function certificatesByCard(db: Knex, labels: string[]): Promise<Map<string, CertificateRef[]>> {
  const out = new Map<string, CertificateRef[]>();
  if (!labels.length) return out;
  const rows = await db("certificates as c")
    .join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .whereIn("c.card_label", labels)
    .where("c.status", "issued")
    .orderBy("c.id")
    .select("c.card_label", "ca.name", "c.serial_hex", "c.profile");
  for (const r of rows) {
    const list = out.get(r.card_label) ?? [];
    list.push({ caName: r.name, serialHex: r.serial_hex, profile: r.profile });
    out.set(r.card_label, list);
  }
  return out;
}

/** Issuance requests in `states` with their applicants, as the queue page and JSON show them. */
async function queueSection(deps: IaRouteDeps, states: string[], o: { recent?: boolean } = {}) {
  const { db, policies } = deps.ctx;
  const q = db("issuance_requests as ir")
    .join("applications as a", "a.id", "ir.application_id")
    .leftJoin("lras as l", "l.id", "a.lra_id")
    .whereIn("ir.state", states)
    .select(
      "ir.id", "ir.state", "ir.attempts", "ir.last_error", "ir.card_label", "ir.approved_at", "ir.issued_at", "ir.updated_at", "ir.profiles",
      "a.application_no", "a.name_kanji", "a.name_kana", "a.qualification", "a.manager_role", "a.lra_id", "l.code as lra_code", "l.name as lra_name",
    );
  const rows = await (o.recent ? q.orderBy("ir.issued_at", "desc").limit(RECENT_ISSUED) : q.orderBy("ir.id").limit(SECTION_LIMIT));
  const certs = o.recent ? await certificatesByCard(db, rows.map((r) => r.card_label).filter(Boolean)) : new Map<string, CertificateRef[]>();
  return rows.map((r) => ({
    requestId: Number(r.id),
    applicationNo: r.application_no as string,
    applicantName: r.name_kanji as string,
    applicantKana: r.name_kana as string,
    qualificationJa: qualificationJa(policies.hcRoles, r.qualification, r.manager_role),
    lra: r.lra_id == null ? null : { id: Number(r.lra_id), code: r.lra_code as string, name: r.lra_name as string },
    profiles: (typeof r.profiles === "string" ? JSON.parse(r.profiles) : r.profiles) as string[],
    state: r.state as string,
    stateJa: issuanceRequestMachine.stateJa[r.state as keyof typeof issuanceRequestMachine.stateJa] ?? r.state,
    attempts: Number(r.attempts),
    cardLabel: (r.card_label as string | null) ?? null,
    error: (r.last_error as string | null) ?? null,
    errorJa: r.last_error ? explainIssuanceFailureJa(r.last_error) : null,
    approvedAt: r.approved_at ?? null,
    issuedAt: r.issued_at ?? null,
    updatedAt: r.updated_at,
    ...(o.recent ? { certificates: certs.get(r.card_label) ?? [] } : {}),
  }));
}

async function countByState(db: Knex): Promise<Record<string, number>> {
  const rows = (await db("issuance_requests").groupBy("state").select("state").count({ n: "*" })) as Record<string, any>[];
  return Object.fromEntries(rows.map((r) => [r.state as string, Number(r.n)]));
}

/** A job as JSON, with each card's applicant looked up by application number. */
export async function jobJson(db: Knex, job: IssuanceJob) {
  const nos = [...job.issued.map((c) => c.applicationNo), ...job.failed.map((f) => f.applicationNo)];
  const names = new Map<string, { nameKanji: string; nameKana: string }>();
  if (nos.length) {
    for (const r of await db("applications").whereIn("application_no", nos).select("application_no", "name_kanji", "name_kana")) {
      names.set(r.application_no, { nameKanji: r.name_kanji, nameKana: r.name_kana });
    }
  }
  const who = (x: { requestId: number; applicationNo: string }) => ({
    requestId: x.requestId,
    applicationNo: x.applicationNo,
    applicantName: names.get(x.applicationNo)?.nameKanji ?? null,
    applicantKana: names.get(x.applicationNo)?.nameKana ?? null,
  });
  return {
    id: job.id,
    state: job.state,
    done: job.done,
    total: job.total,
    percent: job.total ? Math.round((100 * job.done) / job.total) : job.state === "finished" ? 100 : 0,
    limit: job.limit,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    startedBy: { username: job.startedBy.username, displayName: job.startedBy.displayName },
    issued: job.issued.map((c) => ({ ...who(c), cardLabel: c.cardLabel, certificates: c.certificates })),
    failed: job.failed.map((f) => ({ ...who(f), error: f.error, errorJa: f.errorJa })),
    error: job.error,
  };
}

/** A job in lists: no per-card detail. */
function jobSummary(job: IssuanceJob) {
  return {
    id: job.id, state: job.state, done: job.done, total: job.total, issued: job.issued.length, failed: job.failed.length,
    startedAt: job.startedAt, finishedAt: job.finishedAt, startedBy: { username: job.startedBy.username, displayName: job.startedBy.displayName },
  };
}

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Registers the queue and job routes; `read` and `write` are the role guards. */
export function mountQueueRoutes(router: Router, kit: ConsoleKit, deps: IaRouteDeps, guard: IaGuards): void {
  const { db } = deps.ctx;
  const title = { en: "Issuance queue", ja: "発行キュー" };

  router.get("/queue", guard.read, async (req, res) => {
    const [approved, failed, issuing, issued, counts] = await Promise.all([
      queueSection(deps, ["approved"]),
      queueSection(deps, ["failed"]),
      queueSection(deps, ["issuing"]),
      queueSection(deps, ["issued"], { recent: true }),
      countByState(db),
    ]);
    const current = deps.jobs.current();
    kit.render(res, "queue", {
      approved, failed, issuing, issued,
      truncated: { approved: (counts.approved ?? 0) > approved.length, failed: (counts.failed ?? 0) > failed.length },
      counts: { approved: counts.approved ?? 0, failed: counts.failed ?? 0, issuing: counts.issuing ?? 0, issued: counts.issued ?? 0, requested: counts.requested ?? 0 },
      job: current ? jobSummary(current) : null,
      recentJobs: deps.jobs.recent().slice(0, 5).map(jobSummary),
      limits: { default: DEFAULT_JOB_LIMIT, max: MAX_JOB_LIMIT },
      canIssue: req.operator?.role === "ia_operator",
    }, { title });
  });

  router.post("/jobs", guard.write, async (req, res) => {
    const { limit } = parseJobStart(req.body);
    let job: IssuanceJob;
    try {
      job = await deps.jobs.start(kit.operator(req), limit);
    } catch (e) {
      const running = deps.jobs.current();
      if (e instanceof ConflictError && running && !kit.wantsJson(req)) {
        kit.flash(req, "error", e.message, e.messageJa);
        res.redirect(303, kit.url(`/jobs/${running.id}`));
        return;
      }
      throw e;
    }
    res.location(kit.url(`/jobs/${job.id}`));
    if (kit.wantsJson(req)) sendJson(res, 202, { job: await jobJson(db, job) });
    else res.redirect(303, kit.url(`/jobs/${job.id}`));
  });

  router.get("/jobs", guard.read, (_req, res) => {
    kit.render(res, "jobs", { jobs: deps.jobs.recent().map(jobSummary) }, { title: { en: "Issuance jobs", ja: "発行処理の履歴" } });
  });

  router.get("/jobs/:id", guard.read, async (req, res) => {
    const id = String(req.params.id);
    const job = JOB_ID.test(id) ? deps.jobs.get(id) : undefined;
    if (!job) throw new NotFoundError(`no issuance job ${id} in this process`, "指定の発行処理は見つかりません（サーバー再起動前の処理は表示できません）");
    kit.render(res, "job", { job: await jobJson(db, job) }, { title: { en: "Issuance job", ja: "発行処理の進捗" } });
  });

  router.post("/issuance-requests/:id/retry", guard.write, async (req, res) => {
    const row = await retryIssuanceRequest(db, kit.operator(req), idParam(req.params.id));
    const app = await db("applications").where({ id: row.application_id }).first("application_no");
    const request = {
      requestId: Number(row.id), applicationNo: app?.application_no ?? null, state: row.state,
      stateJa: issuanceRequestMachine.stateJa[row.state as keyof typeof issuanceRequestMachine.stateJa], attempts: Number(row.attempts),
    };
    if (kit.wantsJson(req)) {
      sendJson(res, 200, { request });
      return;
    }
    kit.flash(req, "success", `Request for ${request.applicationNo} is back in the queue.`, `申込 ${request.applicationNo} の発行依頼を発行待ちに戻しました。「一括発行」で再度発行してください。`);
    res.redirect(303, kit.url("/queue"));
  });
}
