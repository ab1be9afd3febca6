/**
 * Card deliveries and handover (HPKI-PROFILE §9.3 steps 5–6), shared by the desks that hand
 * cards over: the LRA console for its association's applications, the RA console for the
 * applications it took directly (mail or desk). The desk receives a delivery batch, hands each
 * card over in person (identity check + the scanned signed receipt, handOverCard) and, when the
 * RA returns a receipt, records it again with a new scan.
 *
 * JSON (Accept: application/json), relative to the console base:
 *   GET  /deliveries                    → {deliveries: [{id, batchNo, state, …, applications: [{…, receipt}]}]}
 *   POST /deliveries/:id/receive        → {delivery}
 *   GET  /applications/:id/handover     → {application, delivery, receipt, signedReceipts}
 *   POST /applications/:id/handover     → {application}  ({documentType, documentNumber, photoMatches, signedReceiptDocumentId})
 *   POST /applications/:id/receipt      → {receipt}  ({signedReceiptDocumentId}: a returned receipt, recorded again)
 */
import { assertScannedReceipt, cardOfApplication, mountReceiptScan } from "./handover-card.ts";
import type { Request, Response, Router } from "express";
import { applicationMachine, DOCUMENT_KINDS } from "../pipeline/application.ts";
import { handOverCard, receiveDeliveryBatch } from "../pipeline/delivery.ts";
import type { Row } from "../pipeline/machine.ts";
import { isLraRole, type Operator, type OperatorRole } from "../pipeline/operator.ts";
import { deliveryBatchMachine, receiptMachine } from "../pipeline/records.ts";
import type { Db } from "../store/db.ts";
import type { Lang } from "../web/i18n.ts";
import {
  applicationJson, applicationSummaryJson, deliveryJson, displayDate, displayDateTime, documentJson, receiptJson, stateBadge,
} from "./application-format.ts";
import { readApplication } from "./application-queries.ts";
import { recordReceiptAgain } from "./application-receipts.ts";
import { done, idParam, respond } from "./application-routes.ts";
import type { ConsoleKit } from "../web/console/kit.ts";

const IDENTITY_DOCUMENT_TYPES = ["my_number_card", "driver_licence", "passport", "residence_card", "other_photo_id"] as const;

export interface DeliveryWithCards {
  delivery: Row;
  /** The applications in the batch, each with its receipt (受領書) row. */
  items: { application: Row; receipt: Row | undefined }[];
}

/**
 * Delivery batches shipped to a desk, newest first (shipped before received): `to` "lra" — an
 * LRA operator's own association (the auditor: every association's); "ra" — the RA desk's
 * (batches without an association).
 */
export async function listDeliveries(db: Db, op: Operator, to: "lra" | "ra", limit = 50): Promise<DeliveryWithCards[]> {
  const q = db("delivery_batches").whereIn("state", ["shipped", "received"]).orderByRaw("(state = 'shipped') desc, id desc").limit(limit);
  if (to === "ra") q.whereNull("lra_id");
  else if (isLraRole(op.role)) q.where({ lra_id: op.lraId });
  else q.whereNotNull("lra_id");
  const deliveries = (await q.select("*")) as Row[];
  if (!deliveries.length) return [];
  const ids = deliveries.map((d) => d.id);
  const apps = (await db("applications").whereIn("delivery_batch_id", ids).orderBy("id").select("*")) as Row[];
  const receipts = (await db("receipts").whereIn("delivery_batch_id", ids).select("*")) as Row[];
  return deliveries.map((delivery) => ({
    delivery,
    items: apps
      .filter((a) => Number(a.delivery_batch_id) === Number(delivery.id))
      .map((application) => ({ application, receipt: receipts.find((r) => Number(r.application_id) === Number(application.id)) })),
  }));
}

/** The delivery batch, receipt and signed-receipt scans of an application (scope: readApplication first). */
export async function handoverRecords(db: Db, app: Row): Promise<{ delivery: Row | undefined; receipt: Row | undefined; signedReceipts: Row[] }> {
  const delivery = app.delivery_batch_id == null ? undefined : ((await db("delivery_batches").where({ id: app.delivery_batch_id }).first()) as Row | undefined);
  const receipt = (await db("receipts").where({ application_id: app.id }).first()) as Row | undefined;
  const signedReceipts = (await db("application_documents")
    .where({ application_id: app.id, kind: "signed_receipt" })
    .orderBy("id")
    .select("id", "application_id", "kind", "filename", "media_type", "size_bytes", "sha256", "created_at")) as Row[];
  return { delivery, receipt, signedReceipts };
}

/** Detail-page additions: the link to the handover page and the receipt's state. */
export async function handoverExtras(kit: ConsoleKit, req: Request, app: Row): Promise<Record<string, unknown>> {
  const { receipt } = await handoverRecords(kit.deps.db, app);
  return {
    handoverUrl: ["shipped", "handed_over", "completed"].includes(String(app.state)) ? kit.url(`/applications/${Number(app.id)}/handover`) : null,
    receiptBadge: receipt ? stateBadge(receiptMachine, String(receipt.state), req.lang ?? "ja") : null,
  };
}

export interface HandoverRoutesOptions {
  /** Roles that may read the pages. */
  readers: readonly OperatorRole[];
  /** Roles of the desk that receives deliveries and hands cards over. */
  desk: readonly OperatorRole[];
  /** Whose deliveries the console lists (see listDeliveries). */
  deliveriesTo: "lra" | "ra";
}

/** Mounts the delivery and handover routes (see the module comment) with their navigation entry. */
export function mountHandoverRoutes(router: Router, kit: ConsoleKit, opts: HandoverRoutesOptions): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...opts.readers);
  const desk = kit.requireRole(...opts.desk);
  const lang = (req: Request): Lang => req.lang ?? "ja";
  kit.addNav({ path: "/deliveries", label: "Card deliveries and handover", labelJa: "カードの受領・交付", roles: opts.readers });

  router.get("/deliveries", read, async (req, res) => {
    const op = kit.operator(req);
    const list = await listDeliveries(db, op, opts.deliveriesTo);
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
          canReceive: opts.desk.includes(op.role) && delivery.state === "shipped",
          receiveUrl: kit.url(`/deliveries/${Number(delivery.id)}/receive`),
          shippedText: displayDateTime(delivery.shipped_at, l),
          receivedText: displayDateTime(delivery.received_at, l),
          cards: items.map(({ application, receipt }) => ({
            ...applicationSummaryJson(application),
            href: kit.url(`/applications/${Number(application.id)}`),
            badge: stateBadge(applicationMachine, String(application.state), l),
            receiptNo: receipt?.receipt_no,
            receiptBadge: receipt ? stateBadge(receiptMachine, String(receipt.state), l) : null,
            handoverUrl: kit.url(`/applications/${Number(application.id)}/handover`),
            canHandOver: opts.desk.includes(op.role) && delivery.state === "received" && application.state === "shipped",
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
    const deskOp = opts.desk.includes(op.role);
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
      card: await cardOfApplication(db, Number(app.id), l),
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

  mountReceiptScan(router, kit, opts.readers);

  router.get("/applications/:id/handover", read, async (req, res) => {
    const op = kit.operator(req);
    const app = await readApplication(db, op, idParam(req));
    const { json, page } = await handoverPage(req, op, app);
    await respond(kit, req, res, "handover", json, () => page, { title: { en: `Handover ${app.application_no}`, ja: `カード交付 ${app.application_no}` } });
  });

  router.post("/applications/:id/handover", desk, async (req, res) => {
    const { op, id } = await handoverForm(req, res);
    assertScannedReceipt((req.body ?? {}) as Record<string, unknown>, (await db("receipts").where({ application_id: id }).first()) as Row | undefined);
    const row = await handOverCard(db, op, id, req.body ?? {}, { renewalOldCertificates: kit.deps.cfg.renewalOldCertificates });
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
