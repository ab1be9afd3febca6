/**
 * The rows of one LRA batch on a batches page (issue 12 §3): at most BATCH_ROWS_SHOWN of its
 * applications, then a link to the paginated application list of that batch (with its true total);
 * a completed batch (forwarded or received) is folded away, collapsed by default.
 */

/** Applications shown per batch on a batches page; the rest are one link away, paginated. */
export const BATCH_ROWS_SHOWN = 20;

/** View data of a batch's rows: the first rows, how many more, the list link, folded or not. */
export function batchRows<T>(rows: T[], done: boolean, listHref: string): { applications: T[]; total: number; moreCount: number; listHref: string; done: boolean } {
  return { applications: rows.slice(0, BATCH_ROWS_SHOWN), total: rows.length, moreCount: Math.max(0, rows.length - BATCH_ROWS_SHOWN), listHref, done };
}
