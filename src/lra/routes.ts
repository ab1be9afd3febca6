/**
 * Routes of the LRA console (地域受付審査局): the shared application pages, the association's
 * LRA batches (the manager signs the open batch off and forwards it to the RA), deliveries of
 * personalised cards, and the handover of a card at the desk (identity check + signed receipt).
 *
 * JSON (Accept: application/json), besides the shared application routes:
 *   GET  /lra/batches                      → {batches: [{id, batchNo, state, …, applications}]}
 *   POST /lra/batches/:id/forward          → {batch, applications: <number forwarded>}
 *   GET  /lra/deliveries                   → {deliveries: [{id, batchNo, state, …, applications: [{…, receipt}]}]}
 *   POST /lra/deliveries/:id/receive       → {delivery}
 *   GET  /lra/applications/:id/handover    → {application, delivery, receipt, signedReceipts}
 *   POST /lra/applications/:id/handover    → {application}  ({documentType, documentNumber, photoMatches, signedReceiptDocumentId})
 *   POST /lra/applications/:id/receipt     → {receipt}  ({signedReceiptDocumentId}: a receipt the RA returned, recorded again)
 */
import type { Request, Response, Router } from "express";
import { applicationMachine, DOCUMENT_KINDS } from "../pipeline/application.ts";
import { handOverCard, receiveDeliveryBatch } from "../pipeline/delivery.ts";
import { forwardLraBatch } from "../pipeline/lra-batches.ts";
import type { Row } from "../pipeline/machine.ts";
import type { Operator, OperatorRole } from "../pipeline/operator.ts";
import { deliveryBatchMachine, lraBatchMachine, receiptMachine } from "../pipeline/records.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import {
  applicationJson, applicationSummaryJson, deliveryJson, displayDate, displayDateTime, documentJson, lraBatchJson, receiptJson, stateBadge,
} from "../web/console/application-format.ts";
import { listLraBatches, operatorNames, readApplication } from "../web/console/application-queries.ts";
import { done, idParam, mountApplicationRoutes, respond } from "../web/console/application-routes.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import type { Lang } from "../web/i18n.ts";
import { handoverRecords, listDeliveries } from "./queries.ts";
import { recordReceiptAgain } from "./receipts.ts";

const DESK: OperatorRole[] = ["lra_reviewer", "lra_manager"];
const READERS: OperatorRole[] = [...DESK, "auditor"];
const IDENTITY_DOCUMENT_TYPES = ["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"] as const;

/** Registers every LRA console route and its navigation on `router`. */
export function mountLraRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode>): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...READERS);
  const desk = kit.requireRole(...DESK);
  const lang = (req: Request): Lang => req.lang ?? "ja";

  kit.addNav({ path: "/applications", label: "Applications", labelJa: "申込一覧", roles: READERS });
  kit.addNav({ path: "/applications/new", label: "New application", labelJa: "新規受付", roles: DESK });
  kit.addNav({ path: "/batches", label: "Batches to the RA", labelJa: "受付バッチ（登録局への送付）", roles: READERS });
  kit.addNav({ path: "/deliveries", label: "Card deliveries and handover", labelJa: "カードの受領・交付", roles: READERS });

  mountApplicationRoutes(router, kit, {
    hcRoles,
    readers: READERS,
    writers: DESK,
    directIntake: false,
    detailExtras: async (req, app) => {
      const { receipt } = await handoverRecords(db, app);
      return {
        handoverUrl: ["shipped", "handed_over", "completed"].includes(String(app.state)) ? kit.url(`/applications/${Number(app.id)}/handover`) : null,
        receiptBadge: receipt ? stateBadge(receiptMachine, String(receipt.state), lang(req)) : null,
      };
    },
  });

  const appRow = (l: Lang) => (a: Row) => ({
    ...applicationSummaryJson(a),
    href: kit.url(`/applications/${Number(a.id)}`),
    badge: stateBadge(applicationMachine, String(a.state), l),
  });

  router.get("/batches", read, async (req, res) => {
    const op = kit.operator(req);
    const list = await listLraBatches(db, { lraId: op.role === "auditor" ? null : op.lraId });
    const batches = list.map(({ batch, applications }) => lraBatchJson(batch, applications));
    await respond(kit, req, res, "batches", { batches }, async () => {
      const l = lang(req);
      const names = await operatorNames(db, list.map((b) => b.batch.signed_off_by));
      return {
        isManager: op.role === "lra_manager",
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
          applications: applications.map(appRow(l)),
        })),
      };
    }, { title: { en: "Batches", ja: "受付バッチ" } });
  });

  router.post("/batches/:id/forward", kit.requireRole("lra_manager"), async (req, res) => {
    const r = await forwardLraBatch(db, kit.operator(req), idParam(req));
    done(kit, req, res, { batch: lraBatchJson(r.batch), applications: r.applications }, kit.url("/batches"), {
      message: `Batch ${r.batch.batch_no} signed off: ${r.applications} application(s) forwarded to the RA.`,
      messageJa: `受付バッチ ${r.batch.batch_no} を承認し、${r.applications}件の申込を登録局へ送付しました。`,
    });
  });

  router.get("/deliveries", read, async (req, res) => {
    const op = kit.operator(req);
    const list = await listDeliveries(db, op);
    const deliveries = list.map(({ delivery, items }) => ({
      ...deliveryJson(delivery),
      applications: items.map(({ application, receipt }) => ({ ...applicationSummaryJson(application), receipt: receipt ? receiptJson(receipt, kit.base) : null })),
    }));
    await respond(kit, req, res, "deliveries", { deliveries }, () => {
      const l = lang(req);
      return {
        rows: list.map(({ delivery, items }) => ({
          id: Number(delivery.id),
          batchNo: delivery.batch_no,
          badge: stateBadge(deliveryBatchMachine, String(delivery.state), l),
          canReceive: DESK.includes(op.role) && delivery.state === "shipped",
          receiveUrl: kit.url(`/deliveries/${Number(delivery.id)}/receive`),
          shippedText: displayDateTime(delivery.shipped_at, l),
          receivedText: displayDateTime(delivery.received_at, l),
          cards: items.map(({ application, receipt }) => ({
            ...appRow(l)(application),
            receiptNo: receipt?.receipt_no,
            receiptBadge: receipt ? stateBadge(receiptMachine, String(receipt.state), l) : null,
            handoverUrl: kit.url(`/applications/${Number(application.id)}/handover`),
            canHandOver: DESK.includes(op.role) && delivery.state === "received" && application.state === "shipped",
          })),
        })),
      };
    }, { title: { en: "Deliveries", ja: "カードの受領・交付" } });
  });

  router.post("/deliveries/:id/receive", desk, async (req, res) => {
    const row = await receiveDeliveryBatch(db, kit.operator(req), idParam(req));
    done(kit, req, res, { delivery: deliveryJson(row) }, kit.url("/deliveries"), {
      message: `Delivery ${row.batch_no} received. Hand each card over in person.`,
      messageJa: `配送バッチ ${row.batch_no} の受領を記録しました。カードは本人確認のうえ窓口で交付してください。`,
    });
  });

  const handoverPage = async (req: Request, op: Operator, app: Row) => {
    const l = lang(req);
    const { delivery, receipt, signedReceipts } = await handoverRecords(db, app);
    const json = {
      application: applicationJson(app),
      delivery: delivery ? deliveryJson(delivery) : null,
      receipt: receipt ? receiptJson(receipt, kit.base) : null,
      signedReceipts: signedReceipts.map((d) => documentJson(d, kit.base)),
    };
    const deskOp = DESK.includes(op.role);
    const page = {
      app: { ...json.application, href: kit.url(`/applications/${Number(app.id)}`), badge: stateBadge(applicationMachine, String(app.state), l), birthDateText: displayDate(app.birth_date, l) },
      deliveryBadge: delivery ? stateBadge(deliveryBatchMachine, String(delivery.state), l) : null,
      deliveryReceived: delivery?.state === "received",
      receiptBadge: receipt ? stateBadge(receiptMachine, String(receipt.state), l) : null,
      receiptNo: receipt?.receipt_no,
      reviewNote: receipt?.review_note,
      signedReceiptRows: signedReceipts.map((d, i) => ({
        ...documentJson(d, kit.base),
        uploadedText: displayDateTime(d.created_at, l),
        selected: i === signedReceipts.length - 1,
        returned: receipt?.state === "returned" && Number(d.id) === Number(receipt.signed_document_id),
      })),
      receiptKindText: l === "ja" ? DOCUMENT_KINDS.signed_receipt.ja : DOCUMENT_KINDS.signed_receipt.en,
      canUpload: deskOp && ["shipped", "handed_over"].includes(String(app.state)) && receipt?.state !== "accepted" && receipt?.state !== "recorded",
      canHandOver: deskOp && app.state === "shipped" && delivery?.state === "received" && signedReceipts.length > 0,
      canRecordAgain: deskOp && app.state === "handed_over" && receipt?.state === "returned" && signedReceipts.some((d) => Number(d.id) !== Number(receipt.signed_document_id)),
      recordAgainUrl: kit.url(`/applications/${Number(app.id)}/receipt`),
      uploadUrl: `${kit.url(`/applications/${Number(app.id)}/documents`)}?_csrf=`,
      nextUrl: kit.url(`/applications/${Number(app.id)}/handover`),
      identityTypes: IDENTITY_DOCUMENT_TYPES.map((t) => ({ value: t, labelKey: `app.idType.${t}` })),
    };
    return { json, page };
  };

  /** Loads the application (scope-checked) and declares the handover page as the form view. */
  const handoverForm = async (req: Request, res: Response): Promise<{ op: Operator; id: number }> => {
    const op = kit.operator(req);
    const id = idParam(req);
    const app = await readApplication(db, op, id);
    if (!kit.wantsJson(req)) {
      const { json, page } = await handoverPage(req, op, app);
      kit.formView(res, "handover", { ...json, ...page });
    }
    return { op, id };
  };

  router.get("/applications/:id/handover", read, async (req, res) => {
    const op = kit.operator(req);
    const app = await readApplication(db, op, idParam(req));
    const { json, page } = await handoverPage(req, op, app);
    await respond(kit, req, res, "handover", json, () => page, { title: { en: `Handover ${app.application_no}`, ja: `カード交付 ${app.application_no}` } });
  });

  router.post("/applications/:id/handover", desk, async (req, res) => {
    const { op, id } = await handoverForm(req, res);
    const row = await handOverCard(db, op, id, req.body ?? {});
    done(kit, req, res, { application: applicationJson(row) }, kit.url("/deliveries"), {
      message: `Card of application ${row.application_no} handed over; the receipt goes to the RA for review.`,
      messageJa: `申込 ${row.application_no} のカードを交付しました。受領書は登録局で確認されます。`,
    });
  });

  router.post("/applications/:id/receipt", desk, async (req, res) => {
    const { op, id } = await handoverForm(req, res);
    const row = await recordReceiptAgain(db, op, id, req.body ?? {});
    done(kit, req, res, { receipt: receiptJson(row, kit.base) }, kit.url(`/applications/${id}/handover`), {
      message: `Receipt ${row.receipt_no} recorded again; the RA reviews it.`,
      messageJa: `受領書 ${row.receipt_no} を再提出しました。登録局で確認されます。`,
    });
  });
}
