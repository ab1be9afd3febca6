/**
 * IA console — deliveries (issue 3 items 5–6, HPKI-PROFILE §9.3 step 5): the issued cards waiting
 * per regional association (and for the RA desk: applications without one), delivery batches with
 * their packing list and receipt forms as PDFs, and shipping.
 *
 *   GET  /deliveries                         waiting cards per destination, batches
 *   POST /deliveries                         {lraId} (null or "" for the RA desk) → 201 {batch, receipts}
 *   GET  /deliveries/:id                     one batch and its cards
 *   POST /deliveries/:id/ship                → {batch}
 *   GET  /deliveries/:id/packing-list.pdf    packing list (配送明細)
 *   GET  /deliveries/:id/receipts.pdf        one receipt form (受領書) per card, with QR code
 */
import type { Response, Router } from "express";
import type { Knex } from "knex";
import { createDeliveryBatch, shipDeliveryBatch } from "../../pipeline/delivery.ts";
import { fieldIssue, NotFoundError, ValidationError } from "../../pipeline/errors.ts";
import type { Row } from "../../pipeline/machine.ts";
import { deliveryBatchMachine, receiptMachine } from "../../pipeline/records.ts";
import { keysetPage, pageCursor, pageJson, pagerView } from "../../registration/keyset.ts";
import { confirmationPending } from "../../web/console/confirm.ts";
import type { ConsoleKit } from "../../web/console/kit.ts";
import { packingListPdf, receiptFormsPdf, type DeliveryDocumentData } from "../delivery-documents.ts";
import { idParam, qualificationJa, RA_DESK, sendJson, type IaGuards, type IaRouteDeps } from "./common.ts";

const WAITING_SHOWN = 500;

/** The regional association id of POST /deliveries: a positive integer, or null/"" for the RA desk. */
export function parseDeliveryDestination(body: unknown): number | null {
  const v = (body as { lraId?: unknown } | undefined)?.lraId;
  if (v === null || v === "") return null;
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (Number.isSafeInteger(n) && n > 0) return n;
  throw new ValidationError([fieldIssue("lraId", 'lraId must be a regional association id, or null ("" in forms) for the RA desk', "配送先（地域受付審査局または登録局窓口）を選んでください。")]);
}

const stateJa = (s: string) => deliveryBatchMachine.stateJa[s as keyof typeof deliveryBatchMachine.stateJa] ?? s;

function batchJson(kit: ConsoleKit, r: Record<string, any>) {
  const id = Number(r.id);
  return {
    id,
    batchNo: r.batch_no as string,
    lraId: r.lra_id == null ? null : Number(r.lra_id),
    lraCode: r.lra_id == null ? null : (r.lra_code as string),
    lraName: r.lra_id == null ? RA_DESK.name : (r.lra_name as string),
    state: r.state as string,
    stateJa: stateJa(r.state),
    cards: Number(r.cards ?? 0),
    createdAt: r.created_at,
    shippedAt: r.shipped_at ?? null,
    receivedAt: r.received_at ?? null,
    packingListUrl: kit.url(`/deliveries/${id}/packing-list.pdf`),
    receiptsUrl: kit.url(`/deliveries/${id}/receipts.pdf`),
  };
}

function batchQuery(db: Knex) {
  return db("delivery_batches as b")
    .leftJoin("lras as l", "l.id", "b.lra_id")
    .select("b.*", "l.code as lra_code", "l.name as lra_name", db.raw("(SELECT count(*) FROM applications a WHERE a.delivery_batch_id = b.id) AS cards"));
}

async function findBatch(db: Knex, id: number): Promise<Record<string, any>> {
  const r = await batchQuery(db).where("b.id", id).first();
  if (!r) throw new NotFoundError(`delivery batch ${id} not found`, `配送バッチが見つかりません（${id}）`);
  return r;
}

/** The cards of a batch with applicant, card and receipt, in application order. */
async function batchItems(deps: IaRouteDeps, batchId: number) {
  const { db, policies } = deps.ctx;
  const rows = await db("applications as a")
    .join("receipts as r", "r.application_id", "a.id")
    .leftJoin("issuance_requests as ir", "ir.application_id", "a.id")
    .leftJoin("cards as c", "c.label", "ir.card_label")
    .where("a.delivery_batch_id", batchId)
    .orderBy("a.id")
    .select("a.id", "a.application_no", "a.name_kanji", "a.name_kana", "a.qualification", "a.manager_role", "a.organization_kanji", "a.state",
      "ir.card_label", "c.card_serial", "r.receipt_no", "r.state as receipt_state");
  return rows.map((r) => ({
    applicationId: Number(r.id),
    applicationNo: r.application_no as string,
    nameKanji: r.name_kanji as string,
    nameKana: r.name_kana as string,
    qualificationJa: qualificationJa(policies.hcRoles, r.qualification, r.manager_role),
    organizationKanji: (r.organization_kanji as string | null) ?? null,
    cardLabel: (r.card_label as string | null) ?? "",
    cardSerial: (r.card_serial as string | null) ?? "",
    receiptNo: r.receipt_no as string,
    receiptState: r.receipt_state as string,
    receiptStateJa: receiptMachine.stateJa[r.receipt_state as keyof typeof receiptMachine.stateJa] ?? r.receipt_state,
    applicationState: r.state as string,
  }));
}

async function documentData(deps: IaRouteDeps, batchId: number): Promise<DeliveryDocumentData> {
  const b = await findBatch(deps.ctx.db, batchId);
  return {
    batchNo: b.batch_no,
    destination: b.lra_id == null ? { code: RA_DESK.code, name: RA_DESK.name } : { code: b.lra_code, name: b.lra_name },
    createdAt: new Date(b.created_at),
    items: await batchItems(deps, batchId),
  };
}

function sendPdf(res: Response, bytes: Buffer, filename: string): void {
  res.type("application/pdf");
  res.set("Content-Disposition", `inline; filename="${filename.replace(/[^\w.-]/g, "_")}"`);
  res.set("Content-Length", String(bytes.length));
  res.end(bytes);
}

/** Registers the delivery routes. */
export function mountDeliveryRoutes(router: Router, kit: ConsoleKit, deps: IaRouteDeps, guard: IaGuards): void {
  const { db } = deps.ctx;

  router.get("/deliveries", guard.read, async (req, res) => {
    const groups = (await db("applications as a")
      .leftJoin("lras as l", "l.id", "a.lra_id")
      .where("a.state", "issued")
      .whereNull("a.delivery_batch_id")
      .groupBy("a.lra_id", "l.code", "l.name")
      .select("a.lra_id", "l.code", "l.name")
      .count({ n: "*" })
      .orderByRaw("l.code NULLS LAST")) as Record<string, any>[];
    const cards = await db("applications as a")
      .leftJoin("issuance_requests as ir", "ir.application_id", "a.id")
      .where("a.state", "issued")
      .whereNull("a.delivery_batch_id")
      .orderBy("a.id")
      .limit(WAITING_SHOWN)
      .select("a.lra_id", "a.application_no", "a.name_kanji", "a.name_kana", "ir.card_label", "ir.issued_at");
    const waiting = groups.map((g) => {
      const lraId = g.lra_id == null ? null : Number(g.lra_id);
      return {
        lraId,
        lraCode: lraId === null ? null : (g.code as string),
        lraName: lraId === null ? RA_DESK.name : (g.name as string),
        count: Number(g.n),
        formValue: lraId === null ? "" : String(lraId),
        cards: cards.filter((c) => (c.lra_id == null ? null : Number(c.lra_id)) === lraId).map((c) => ({
          applicationNo: c.application_no, nameKanji: c.name_kanji, nameKana: c.name_kana, cardLabel: c.card_label, issuedAt: c.issued_at,
        })),
      };
    });
    // Delivery batches newest first, keyset-paginated with the true total (issue 12 §3).
    const page = await keysetPage(batchQuery(db), "b.id", "desc", pageCursor(req), { key: "id", selected: true });
    const batches = page.rows.map((r) => batchJson(kit, r));
    if (kit.wantsJson(req)) {
      kit.render(res, "deliveries", { waiting: waiting.map(({ cards: _c, formValue: _f, ...w }) => w), batches, page: pageJson(page) });
      return;
    }
    kit.render(res, "deliveries", { waiting, batches, pager: pagerView(req, kit.url("/deliveries"), page), canPrepare: req.operator?.role === "ia_operator" }, { title: { en: "Deliveries", ja: "配送" } });
  });

  router.post("/deliveries", guard.write, async (req, res) => {
    const lraId = parseDeliveryDestination(req.body);
    const { batch, receipts } = await createDeliveryBatch(db, kit.operator(req), lraId);
    const id = Number(batch.id);
    const items = await batchItems(deps, id);
    const byApp = new Map(items.map((i) => [i.applicationId, i]));
    res.location(kit.url(`/deliveries/${id}`));
    if (kit.wantsJson(req)) {
      sendJson(res, 201, {
        batch: batchJson(kit, await findBatch(db, id)),
        receipts: receipts.map((r: Row) => ({
          id: Number(r.id),
          receiptNo: r.receipt_no as string,
          applicationId: Number(r.application_id),
          applicationNo: byApp.get(Number(r.application_id))?.applicationNo ?? null,
          cardLabel: byApp.get(Number(r.application_id))?.cardLabel ?? null,
          state: r.state,
        })),
      });
      return;
    }
    kit.flash(req, "success", `Delivery batch ${batch.batch_no} prepared with ${receipts.length} card(s). Print the packing list and the receipt forms, then ship.`,
      `配送バッチ ${batch.batch_no} を作成しました（${receipts.length}枚）。梱包リストと受領書を印刷してから発送してください。`);
    res.redirect(303, kit.url(`/deliveries/${id}`));
  });

  router.get("/deliveries/:id", guard.read, async (req, res) => {
    const id = idParam(req.params.id);
    const batch = batchJson(kit, await findBatch(db, id));
    const items = await batchItems(deps, id);
    kit.render(res, "delivery", { batch, items, canShip: batch.state === "prepared" && req.operator?.role === "ia_operator" }, { title: { en: `Delivery batch ${batch.batchNo}`, ja: `配送バッチ ${batch.batchNo}` } });
  });

  router.post("/deliveries/:id/ship", guard.write, async (req, res) => {
    const id = idParam(req.params.id);
    if (confirmationPending(kit, req, res, {
      message: "Mark this delivery as shipped? The cards leave the issuing office; this cannot be undone.",
      messageJa: "この配送バッチを発送済みにします。カードは発行局から発送され、取り消せません。よろしいですか。",
      action: "Ship", actionJa: "発送する", cancelPath: `/deliveries/${id}`,
    })) return;
    await shipDeliveryBatch(db, kit.operator(req), id);
    const batch = batchJson(kit, await findBatch(db, id));
    if (kit.wantsJson(req)) {
      sendJson(res, 200, { batch });
      return;
    }
    kit.flash(req, "success", `Delivery batch ${batch.batchNo} shipped to ${batch.lraName}.`, `配送バッチ ${batch.batchNo} を ${batch.lraName} へ発送済みにしました。`);
    res.redirect(303, kit.url(`/deliveries/${id}`));
  });

  router.get("/deliveries/:id/packing-list.pdf", guard.read, async (req, res) => {
    const data = await documentData(deps, idParam(req.params.id));
    sendPdf(res, await packingListPdf(data, { fontPath: deps.ctx.cfg.pdfFont }), `packing-list-${data.batchNo}.pdf`);
  });

  router.get("/deliveries/:id/receipts.pdf", guard.read, async (req, res) => {
    const data = await documentData(deps, idParam(req.params.id));
    sendPdf(res, await receiptFormsPdf(data, { fontPath: deps.ctx.cfg.pdfFont }), `receipts-${data.batchNo}.pdf`);
  });
}
