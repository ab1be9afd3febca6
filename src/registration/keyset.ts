/**
 * Keyset pagination of the desk lists (issue 12 §3): a stable order on one unique integer column
 * (the id), a page of `size` rows after or before a cursor, and the TRUE total of the filter
 * ("全253件"), never a capped count. The cursor is the id of the last row shown (next page) or
 * of the first (previous page), so a row inserted meanwhile neither repeats nor hides another.
 *
 * Query string of a paginated page: `after=<id>` or `before=<id>`, `size=<n>` (10–200, default 50).
 */
import type { Request } from "express";
import type { Knex } from "knex";
import type { Row } from "../pipeline/machine.ts";

/** Rows per page unless ?size= says otherwise. */
export const DEFAULT_PAGE_SIZE = 50;
/** Most rows per page. */
export const MAX_PAGE_SIZE = 200;

export interface PageCursor {
  /** Show the rows that follow this key in the list order. */
  after?: number;
  /** Show the rows that precede this key in the list order. */
  before?: number;
  size: number;
}

export interface KeysetPage {
  rows: Row[];
  /** Rows matching the filter, all pages together. */
  total: number;
  /** 1-based position of the first row shown (0 when the page is empty). */
  from: number;
  /** 1-based position of the last row shown. */
  to: number;
  /** Cursor of the next page (the last key shown), null on the last page. */
  nextAfter: number | null;
  /** Cursor of the previous page (the first key shown), null on the first page. */
  prevBefore: number | null;
  size: number;
}

const positiveInt = (v: unknown): number | undefined => (typeof v === "string" && /^\d{1,15}$/.test(v) && Number(v) > 0 ? Number(v) : undefined);

/** The page cursor of a request's query string (after/before/size), clamped to sane values. */
export function pageCursor(req: Request): PageCursor {
  const size = Math.min(MAX_PAGE_SIZE, Math.max(10, positiveInt(req.query.size) ?? DEFAULT_PAGE_SIZE));
  const after = positiveInt(req.query.after);
  const before = after === undefined ? positiveInt(req.query.before) : undefined;
  return { after, before, size };
}

/** How keysetPage reads a base query that joins or names its own columns. */
export interface KeysetOptions {
  /** The row property holding `column`'s value (e.g. "id" for column "rr.id"); default `column`. */
  key?: string;
  /** The base already selects its columns: do not add `select *`. */
  selected?: boolean;
}

/**
 * One page of `base` (a filtered query without order or limit) in `order` of `column` (unique,
 * integer), with the total and the position of the page. Three queries: the page (size + 1 rows,
 * to know whether another page follows), the total, and the rows before the page (its position).
 */
export async function keysetPage(base: Knex.QueryBuilder, column: string, order: "asc" | "desc", cursor: PageCursor, opts: KeysetOptions = {}): Promise<KeysetPage> {
  const key = opts.key ?? column;
  const forward = cursor.before === undefined;
  const cmp = (dirForward: boolean) => ((order === "desc") === dirForward ? "<" : ">");
  const q = base.clone().limit(cursor.size + 1);
  if (!opts.selected) q.select("*");
  if (forward) {
    if (cursor.after !== undefined) q.where(column, cmp(true), cursor.after);
    q.orderBy(column, order);
  } else {
    q.where(column, cmp(false), cursor.before!);
    q.orderBy(column, order === "desc" ? "asc" : "desc");
  }
  let rows = (await q) as Row[];
  const more = rows.length > cursor.size;
  rows = rows.slice(0, cursor.size);
  if (!forward) rows.reverse();
  const [{ n }] = (await base.clone().clearSelect().clearOrder().count({ n: "*" })) as { n: string | number }[];
  const total = Number(n);
  let preceding = 0;
  if (rows.length) {
    const [{ p }] = (await base.clone().clearSelect().clearOrder().where(column, cmp(false), rows[0][key] as number).count({ p: "*" })) as { p: string | number }[];
    preceding = Number(p);
  }
  const last = rows.at(-1)?.[key];
  const first = rows[0]?.[key];
  const hasNext = forward ? more : rows.length > 0 && preceding + rows.length < total;
  return {
    rows,
    total,
    from: rows.length ? preceding + 1 : 0,
    to: preceding + rows.length,
    nextAfter: hasNext && last != null ? Number(last) : null,
    prevBefore: preceding > 0 && first != null ? Number(first) : null,
    size: cursor.size,
  };
}

/**
 * The pager of a page (views/partials/pager.hbs): totals and the next/previous links, keeping the
 * other query parameters of `req` (filters) as they are.
 */
export function pagerView(req: Request, pathname: string, page: KeysetPage): Record<string, unknown> {
  const link = (key: "after" | "before", value: number) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (typeof v === "string" && k !== "after" && k !== "before") params.set(k, v);
    params.set(key, String(value));
    return `${pathname}?${params.toString()}`;
  };
  return {
    total: page.total,
    from: page.from,
    to: page.to,
    nextHref: page.nextAfter === null ? null : link("after", page.nextAfter),
    prevHref: page.prevBefore === null ? null : link("before", page.prevBefore),
    several: page.total > page.rows.length,
  };
}

/** The JSON form of a page's navigation (API clients follow `next`/`prev` as query strings). */
export function pageJson(page: KeysetPage): { total: number; from: number; to: number; nextAfter: number | null; prevBefore: number | null; size: number } {
  return { total: page.total, from: page.from, to: page.to, nextAfter: page.nextAfter, prevBefore: page.prevBefore, size: page.size };
}
