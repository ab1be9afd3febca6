/**
 * Worklists of the registration desks (issue 12 §3): what awaits the signed-in operator, counted
 * on the server within the operator's scope (an LRA operator sees only its association), each
 * count linking to the list that shows those rows. The same filters (WORK_FILTERS) narrow the
 * application list (`/applications?work=<name>`), so a count and its list always agree.
 */
import type { Router } from "express";
import type { Knex } from "knex";
import { TERMINAL_APPLICATION_STATES, requiredDocuments } from "../pipeline/application.ts";
import { isLraRole, type Operator } from "../pipeline/operator.ts";
import type { Db } from "../store/db.ts";
import type { ConsoleKit } from "../web/console/kit.ts";

/** Filters of the application list named by ?work= (each a where-clause on `applications`). */
export const WORK_FILTERS = {
  /** Received, not yet decided (the LRA's, or the RA's own desk/mail intake). */
  received: (q: Knex.QueryBuilder) => q.where("applications.state", "received"),
  /** Open for review and some required scan missing (HPKI-PROFILE §9.2). */
  missing_documents: (q: Knex.QueryBuilder) =>
    q.whereIn("applications.state", ["received", "returned_to_lra", "forwarded"]).whereRaw(
      `(select count(distinct d.kind) from application_documents d where d.application_id = applications.id and d.kind = any(?))
        < (case when applications.manager_role is null then ?::int else ?::int end)`,
      [requiredDocuments(true), requiredDocuments(false).length, requiredDocuments(true).length],
    ),
  /** Received with every check done: identity, licence match, documents — the approval is next. */
  awaiting_approval: (q: Knex.QueryBuilder) =>
    WORK_FILTERS.complete(q.where("applications.state", "received")),
  /** Approved by the LRA, waiting for the manager to sign the batch off to the RA. */
  lra_approved: (q: Knex.QueryBuilder) => q.where("applications.state", "lra_approved"),
  /** Returned by the RA to the LRA. */
  returned: (q: Knex.QueryBuilder) => q.where("applications.state", "returned_to_lra"),
  /** At the RA for review: forwarded by an LRA, or taken directly at the RA desk or by mail. */
  ra_review: (q: Knex.QueryBuilder) =>
    q.where((w) => w.where("applications.state", "forwarded").orWhere((x) => x.where("applications.state", "received").whereNot("applications.channel", "lra"))),
  /** Card at the desk (its delivery received), waiting for the applicant to collect it. */
  handover: (q: Knex.QueryBuilder) =>
    q.where("applications.state", "shipped").whereExists((x) =>
      x.select(x.client.raw("1")).from("delivery_batches as db").whereRaw("db.id = applications.delivery_batch_id").where("db.state", "received")),
  /** Every application not in a terminal state. */
  open: (q: Knex.QueryBuilder) => q.whereNotIn("applications.state", TERMINAL_APPLICATION_STATES as string[]),
  /** (helper) identity checked, licence matched, required documents present. */
  complete: (q: Knex.QueryBuilder) =>
    q.whereRaw("applications.identity_check->>'checkedAt' is not null").whereRaw("applications.licence_check->>'result' = 'match'").whereRaw(
      `(select count(distinct d.kind) from application_documents d where d.application_id = applications.id and d.kind = any(?))
        >= (case when applications.manager_role is null then ?::int else ?::int end)`,
      [requiredDocuments(true), requiredDocuments(false).length, requiredDocuments(true).length],
    ),
} as const;
export type WorkFilter = keyof typeof WORK_FILTERS;

/** The work filter named `name`, or undefined (unknown names are ignored, as other filters are). */
export function workFilter(name: string): WorkFilter | undefined {
  return name !== "complete" && Object.hasOwn(WORK_FILTERS, name) ? (name as WorkFilter) : undefined;
}

/** One line of a worklist: a label, how many rows, and the list that shows them. */
export interface WorkItem {
  key: string;
  labelJa: string;
  label: string;
  count: number;
  /** Path below the console base. */
  path: string;
}

/** An item definition: what to count (a query in the operator's scope) and where the list is. */
export interface WorkItemSpec {
  key: string;
  labelJa: string;
  label: string;
  path: string;
  count(db: Db, op: Operator): Knex.QueryBuilder;
}

/** Applications in `op`'s scope narrowed by `filter` (a WorkItemSpec count). */
export function scopedApplications(db: Db, op: Operator, filter: WorkFilter): Knex.QueryBuilder {
  const q = db("applications");
  if (isLraRole(op.role)) q.where("applications.lra_id", op.lraId ?? -1);
  return WORK_FILTERS[filter](q);
}

/** A WorkItemSpec counting applications of a work filter, linking to /applications?work=… */
export function applicationWork(key: WorkFilter, labelJa: string, label: string): WorkItemSpec {
  return { key, labelJa, label, path: `/applications?work=${key}`, count: (db, op) => scopedApplications(db, op, key) };
}

/** Counts every item of `specs` for `op` (one count query each, in parallel). */
export async function countWork(db: Db, op: Operator, specs: readonly WorkItemSpec[]): Promise<WorkItem[]> {
  return Promise.all(specs.map(async ({ count, ...s }) => {
    const [{ n }] = (await count(db, op).clearSelect().count({ n: "*" })) as { n: string | number }[];
    return { ...s, count: Number(n) };
  }));
}

/**
 * The home page data of a desk console: the worklist in the page language (open work first, each
 * with its count and link). Rendered by views/partials/worklist.hbs on views/auth/home.hbs.
 */
export function worklistView(items: WorkItem[], lang: "ja" | "en", url: (p: string) => string): { key: string; label: string; count: number; href: string; pending: boolean }[] {
  return items.map((i) => ({ key: i.key, label: lang === "ja" ? i.labelJa : i.label, count: i.count, href: url(i.path), pending: i.count > 0 }));
}

/**
 * Mounts the console home (GET /) as the operator's worklist: the home page (views/auth/home.hbs)
 * with the counts of `specs(op)`; JSON clients get {operator, worklist: [{key, count, path}]}. Registered
 * before the console's default home, which it replaces.
 */
export function mountWorklistHome(router: Router, kit: ConsoleKit, specs: (op: Operator) => readonly WorkItemSpec[]): void {
  router.get("/", async (req, res) => {
    const op = kit.operator(req);
    const items = await countWork(kit.deps.db, op, specs(op));
    const lang = req.lang ?? "ja";
    if (kit.wantsJson(req)) {
      kit.render(res, "", { operator: op, worklist: items.map((i) => ({ key: i.key, count: i.count, path: i.path })) });
      return;
    }
    kit.render(res, "auth/home", { operator: op, lra: res.locals.lra ?? null, console: kit.console, worklist: worklistView(items, lang, kit.url) });
  });
}
