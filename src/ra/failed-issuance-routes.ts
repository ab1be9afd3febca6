/**
 * The RA console's handling of a failed issuance request (issue 12 §1): the failure explained in
 * Japanese and English with the form fields it names (pipeline/issuance-failure.ts), the
 * application corrected through the shared correction form (registration/application-edit-routes.ts),
 * then retried — back to approval by another approver when the data was corrected — or cancelled
 * (the application withdrawn with its request). Services: pipeline/failed-issuance.ts.
 *
 * JSON (Accept: application/json):
 *   GET  /ra/issuance-requests/:id/failure → {failure: {message, messageJa, fields, problems}, lastError}
 *   POST /ra/issuance-requests/:id/retry   → {issuanceRequest, reapproval, card: {card, status, certificatesToRevoke} | null}
 *   POST /ra/issuance-requests/:id/cancel  → {application}  ({reason})
 */
import type { Request, Router } from "express";
import { z } from "zod";
import { deskPolicies } from "../pipeline/applications.ts";
import { parseInput } from "../pipeline/errors.ts";
import { cancelFailedIssuance, retryFailedIssuance } from "../pipeline/failed-issuance.ts";
import { explainIssuanceFailure, type IssuanceFailure } from "../pipeline/issuance-failure.ts";
import type { Row } from "../pipeline/machine.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import { applicationJson, issuanceRequestJson, jsonColumn } from "../registration/application-format.ts";
import { done, idParam } from "../registration/application-routes.ts";
import type { ConsoleKit } from "../web/console/kit.ts";

const cancelSchema = z.object({ reason: z.string().max(1000) });

/** The explanation of failed request `ir` of application `app` (null unless failed). */
export function failureOf(ir: Row | undefined, app: Row): IssuanceFailure | null {
  if (!ir || ir.state !== "failed") return null;
  const profiles = jsonColumn<string[]>(ir.profiles) ?? [];
  return explainIssuanceFailure(String(ir.last_error ?? ""), app, profiles, deskPolicies());
}

/** View data of the failed request's section on the RA application page. */
export function failedIssuanceExtras(kit: ConsoleKit, req: Request, officers: readonly OperatorRole[], app: Row, ir: Row | undefined): Record<string, unknown> {
  const failure = failureOf(ir, app);
  if (!failure || !ir) return {};
  const l = req.lang ?? "ja";
  return {
    failure: {
      ...failure,
      text: l === "ja" ? failure.messageJa : failure.message,
      fieldNames: failure.fields.map((f) => (l === "ja" ? f.ja : f.en)),
      problemTexts: failure.problems.map((p) => (l === "ja" ? p.messageJa : p.message)),
      corrected: ir.corrected_at != null && (ir.approved_at == null || new Date(String(ir.corrected_at)) > new Date(String(ir.approved_at))),
      lastError: ir.last_error,
      canAct: officers.includes(kit.operator(req).role),
      retryUrl: kit.url(`/issuance-requests/${Number(ir.id)}/retry`),
      cancelUrl: kit.url(`/issuance-requests/${Number(ir.id)}/cancel`),
    },
  };
}

/** Mounts the failed-request routes (module comment) on the RA router. */
export function mountFailedIssuanceRoutes(router: Router, kit: ConsoleKit, readers: readonly OperatorRole[], officers: readonly OperatorRole[]): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...readers);
  const officer = kit.requireRole(...officers);

  router.get("/issuance-requests/:id/failure", read, async (req, res) => {
    const ir = (await db("issuance_requests").where({ id: idParam(req) }).first()) as Row | undefined;
    const app = ir && ((await db("applications").where({ id: ir.application_id }).first()) as Row);
    kit.render(res, "", { failure: app ? failureOf(ir, app) : null, lastError: ir?.last_error ?? null });
  });

  router.post("/issuance-requests/:id/retry", officer, async (req, res) => {
    const r = await retryFailedIssuance(db, kit.operator(req), idParam(req));
    const cardJa = r.card ? (r.card.status === "released" ? `カード ${r.card.card} は未使用のため解放しました。` : `カード ${r.card.card} は書損として廃棄扱いにしました。`) : "";
    const cardEn = r.card ? (r.card.status === "released" ? `Card ${r.card.card} was released (nothing written).` : `Card ${r.card.card} was marked spoiled.`) : "";
    done(kit, req, res, { issuanceRequest: issuanceRequestJson(r.request), reapproval: r.reapproval, card: r.card },
      kit.url(`/applications/${Number(r.request.application_id)}`), r.reapproval
        ? { message: `Issuance request ${r.request.id} resubmitted after the correction: another approver must approve it. ${cardEn}`, messageJa: `訂正後の発行依頼 ${r.request.id} を再申請しました。訂正者・作成者以外の承認者の承認が必要です。${cardJa}` }
        : { message: `Issuance request ${r.request.id} is back in the issuing office's queue. ${cardEn}`, messageJa: `発行依頼 ${r.request.id} を発行局の発行待ちに戻しました。${cardJa}` });
  });

  router.post("/issuance-requests/:id/cancel", officer, async (req, res) => {
    const { reason } = parseInput(cancelSchema, req.body ?? {});
    const row = await cancelFailedIssuance(db, kit.operator(req), idParam(req), reason);
    done(kit, req, res, { application: applicationJson(row) }, kit.url(`/applications/${Number(row.id)}`), {
      message: `Issuance request cancelled: application ${row.application_no} withdrawn.`,
      messageJa: `発行依頼を取り消し、申込 ${row.application_no} を取り下げました。`,
    });
  });
}
