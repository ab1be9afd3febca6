/**
 * Bulk approval of issuance requests by an RA approver (issue 12 §7). Each request ticked on the
 * list is approved on its own, in its own transaction, through approveIssuanceRequest: the
 * two-person rule (approver ≠ creator, src/pipeline/records.ts) and the audit record hold per
 * request, exactly as for one approval. A request that cannot be approved (own request, already
 * approved, withdrawn…) is reported on its row; the others are approved all the same.
 *
 *   POST /ra/issuance-requests/approve  ({ids: [id…]} or form fields ids=…)
 *     → {results: [{id, ok: true, state} | {id, ok: false, code, error, errorJa}]}
 * The page shows the per-row results once, after the redirect (kept in the session).
 */
import type { Request, Router } from "express";
import { z } from "zod";
import { parseInput } from "../pipeline/errors.ts";
import { approveIssuanceRequest } from "../pipeline/issuance-requests.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { toHpkiError } from "../web/console/router.ts";

/** Most requests one bulk approval takes (a page of the list at most). */
export const MAX_BULK_APPROVALS = 200;

/** The outcome of one request of a bulk approval. */
export type BulkApprovalResult =
  | { id: number; ok: true; state: string }
  | { id: number; ok: false; code: string; error: string; errorJa: string };

declare module "express-session" {
  interface SessionData {
    /** The per-row results of the last bulk approval, shown once on the list. */
    bulkApproval?: BulkApprovalResult[];
  }
}

const idList = z.preprocess(
  (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]),
  z.array(z.union([z.number().int().positive(), z.string().regex(/^\d{1,15}$/).transform(Number)])).min(1, "choose at least one request").max(MAX_BULK_APPROVALS),
);
const bulkSchema = z.object({ ids: idList });

/**
 * Approves each of `ids` as `op` (one transaction and one audit record each, two-person rule per
 * request); never stops at a refusal. Unknown errors (not typed refusals) are rethrown.
 */
export async function approveIssuanceRequests(db: ConsoleKit["deps"]["db"], op: Parameters<typeof approveIssuanceRequest>[1], ids: number[]): Promise<BulkApprovalResult[]> {
  const results: BulkApprovalResult[] = [];
  for (const id of [...new Set(ids)]) {
    try {
      const row = await approveIssuanceRequest(db, op, id);
      results.push({ id, ok: true, state: String(row.state) });
    } catch (err) {
      const e = toHpkiError(err);
      if (!e || e.status >= 500) throw err;
      results.push({ id, ok: false, code: e.code, error: e.message, errorJa: e.messageJa });
    }
  }
  return results;
}

/** The results of the last bulk approval for the list page (read once, then cleared). */
export function bulkResultsView(req: Request): { rows: { id: number; ok: boolean; text: string }[]; approved: number; refused: number } | null {
  const results = req.session?.bulkApproval;
  if (!results) return null;
  req.session.bulkApproval = undefined;
  const ja = (req.lang ?? "ja") === "ja";
  return {
    rows: results.map((r) => ({ id: r.id, ok: r.ok, text: r.ok ? (ja ? "承認しました" : "approved") : ja ? r.errorJa : r.error })),
    approved: results.filter((r) => r.ok).length,
    refused: results.filter((r) => !r.ok).length,
  };
}

/** Mounts POST /issuance-requests/approve (ra_approver only). */
export function mountBulkApproval(router: Router, kit: ConsoleKit): void {
  router.post("/issuance-requests/approve", kit.requireRole("ra_approver"), async (req, res) => {
    const { ids } = parseInput(bulkSchema, req.body ?? {});
    const results = await approveIssuanceRequests(kit.deps.db, kit.operator(req), ids);
    if (kit.wantsJson(req)) {
      kit.render(res, "", { results });
      return;
    }
    req.session.bulkApproval = results;
    const ok = results.filter((r) => r.ok).length;
    kit.flash(req, ok === results.length ? "success" : "error",
      `${ok} of ${results.length} issuance request(s) approved.${ok < results.length ? " See the refused rows below." : ""}`,
      `${results.length}件中${ok}件の発行依頼を承認しました。${ok < results.length ? "承認できなかった依頼は下の表のとおりです。" : ""}`);
    res.redirect(303, kit.url("/issuance-requests?state=requested"));
  });
}
