/**
 * Routes of the LRA console (地域受付審査局): the shared application pages, the association's
 * LRA batches (the manager signs the open batch off and forwards it to the RA), deliveries of
 * personalised cards, and the handover of a card at the desk (identity check + signed receipt).
 *
 * JSON (Accept: application/json), besides the shared application routes:
 *   GET  /lra/batches                      → {batches: [{id, batchNo, state, …, applications}]}
 *   POST /lra/batches/:id/forward          → {batch, applications: <number forwarded>}
 * Deliveries and handover: src/registration/application-handover.ts (this association's deliveries).
 */
import type { Request, Router } from "express";
import { applicationMachine } from "../pipeline/application.ts";
import { forwardLraBatch } from "../pipeline/lra-batches.ts";
import type { Row } from "../pipeline/machine.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import { lraBatchMachine } from "../pipeline/records.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { applicationSummaryJson, displayDateTime, lraBatchJson, stateBadge } from "../registration/application-format.ts";
import { handoverExtras, mountHandoverRoutes } from "../registration/application-handover.ts";
import { mountCardRoutes } from "../registration/card-routes.ts";
import { mountCardDeskRoutes } from "../registration/card-desk-routes.ts";
import { operatorNames, pageLraBatches } from "../registration/application-queries.ts";
import { pageCursor, pageJson, pagerView } from "../registration/keyset.ts";
import { done, idParam, mountApplicationRoutes, respond } from "../registration/application-routes.ts";
import { batchRows } from "../registration/batch-rows.ts";
import { mountWorklistHome } from "../registration/worklists.ts";
import { confirmationPending } from "../web/console/confirm.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { lraWorklist } from "./worklist.ts";
import type { Lang } from "../web/i18n.ts";

const DESK: OperatorRole[] = ["lra_reviewer", "lra_manager"];
const READERS: OperatorRole[] = [...DESK, "auditor"];

/** Registers every LRA console route and its navigation on `router`. */
export function mountLraRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode>): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...READERS);
  const lang = (req: Request): Lang => req.lang ?? "ja";

  kit.addNav({ path: "/applications", label: "Applications", labelJa: "申込一覧", roles: READERS });
  kit.addNav({ path: "/applications/new", label: "New application", labelJa: "新規受付", roles: DESK });
  kit.addNav({ path: "/batches", label: "Batches to the RA", labelJa: "受付バッチ（登録局への送付）", roles: READERS });

  mountWorklistHome(router, kit, lraWorklist);
  mountApplicationRoutes(router, kit, {
    hcRoles,
    readers: READERS,
    writers: DESK,
    directIntake: false,
    detailExtras: (req, app) => handoverExtras(kit, req, app),
  });
  mountHandoverRoutes(router, kit, { readers: READERS, desk: DESK, deliveriesTo: "lra" });
  mountCardRoutes(router, kit, { readers: READERS, writers: DESK });
  mountCardDeskRoutes(router, kit, { readers: READERS, desk: DESK });

  const appRow = (l: Lang) => (a: Row) => ({
    ...applicationSummaryJson(a),
    href: kit.url(`/applications/${Number(a.id)}`),
    badge: stateBadge(applicationMachine, String(a.state), l),
  });

  router.get("/batches", read, async (req, res) => {
    const op = kit.operator(req);
    const { list, page } = await pageLraBatches(db, { lraId: op.role === "auditor" ? null : op.lraId }, pageCursor(req));
    const batches = list.map(({ batch, applications }) => lraBatchJson(batch, applications));
    await respond(kit, req, res, "batches", { batches, page: pageJson(page) }, async () => {
      const l = lang(req);
      const names = await operatorNames(db, list.map((b) => b.batch.signed_off_by));
      return {
        isManager: op.role === "lra_manager",
        pager: pagerView(req, kit.url("/batches"), page),
        rows: list.map(({ batch, applications }) => ({
          id: Number(batch.id),
          batchNo: batch.batch_no,
          badge: stateBadge(lraBatchMachine, String(batch.state), l),
          open: batch.state === "open",
          approvedCount: applications.filter((a) => a.state === "lra_approved").length,
          canForward: op.role === "lra_manager" && batch.state === "open" && applications.some((a) => a.state === "lra_approved"),
          forwardUrl: kit.url(`/batches/${Number(batch.id)}/forward`),
          createdText: displayDateTime(batch.created_at, l),
          forwardedText: displayDateTime(batch.forwarded_at, l),
          receivedText: displayDateTime(batch.received_at, l),
          signedOffBy: batch.signed_off_by == null ? null : names.get(Number(batch.signed_off_by))?.displayName,
          ...batchRows(applications.map(appRow(l)), batch.state !== "open", kit.url(`/applications?batch=${Number(batch.id)}`)),
        })),
      };
    }, { title: { en: "Batches", ja: "受付バッチ" } });
  });

  router.post("/batches/:id/forward", kit.requireRole("lra_manager"), async (req, res) => {
    if (confirmationPending(kit, req, res, {
      message: "Sign the batch off and forward its approved applications to the RA? This cannot be undone.",
      messageJa: "この受付バッチを承認し、承認済みの申込を登録局へ送付します。送付後は取り消せません。よろしいですか。",
      action: "Forward to the RA", actionJa: "登録局へ送付する", cancelPath: "/batches",
    })) return;
    const r = await forwardLraBatch(db, kit.operator(req), idParam(req));
    done(kit, req, res, { batch: lraBatchJson(r.batch), applications: r.applications }, kit.url("/batches"), {
      message: `Batch ${r.batch.batch_no} signed off: ${r.applications} application(s) forwarded to the RA.`,
      messageJa: `受付バッチ ${r.batch.batch_no} を承認し、${r.applications}件の申込を登録局へ送付しました。`,
    });
  });
}
