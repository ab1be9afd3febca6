/**
 * Routes of the RA console (登録局): the shared application pages (search, direct intake by desk
 * or mail, review: approve / return to the LRA / reject), incoming LRA batches, issuance requests
 * (created by one person, approved by another: the service enforces it) and the review of signed
 * receipts, which completes an application.
 *
 * JSON (Accept: application/json), besides the shared application routes:
 *   GET  /ra/batches                           → {batches: [{…, lraCode, lraName, applications}]}
 *   POST /ra/batches/:id/receive               → {batch}
 *   POST /ra/applications/:id/issuance-request → 201 {issuanceRequest}
 *   GET  /ra/issuance-requests?state=requested → {issuanceRequests: [{…, application, creator, approver}]}
 *   POST /ra/issuance-requests/:id/approve     → {issuanceRequest}
 *   GET  /ra/receipts?state=recorded           → {receipts: [{…, application, recorder}]}
 *   POST /ra/receipts/:id/review               → {receipt}  ({decision: "accept"|"return", note?})
 * The list filters default to requested / recorded; state=all lists every state.
 * Deliveries and handover of directly taken applications (the RA desk's):
 * src/registration/application-handover.ts.
 */
import type { Request, Router } from "express";
import { z } from "zod";
import { applicationMachine } from "../pipeline/application.ts";
import { reviewReceipt } from "../pipeline/delivery.ts";
import { parseInput } from "../pipeline/errors.ts";
import { approveIssuanceRequest, createIssuanceRequest } from "../pipeline/issuance-requests.ts";
import { receiveLraBatch } from "../pipeline/lra-batches.ts";
import type { Row } from "../pipeline/machine.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import { ISSUANCE_REQUEST_STATES, issuanceRequestMachine, lraBatchMachine, RECEIPT_STATES, receiptMachine } from "../pipeline/records.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import {
  applicationSummaryJson, displayDate, displayDateTime, issuanceRequestJson, jsonColumn, lraBatchJson, receiptJson, stateBadge,
} from "../registration/application-format.ts";
import { handoverExtras, mountHandoverRoutes } from "../registration/application-handover.ts";
import { mountCardRoutes } from "../registration/card-routes.ts";
import { listLraBatches, lraNames, operatorNames } from "../registration/application-queries.ts";
import { done, idParam, mountApplicationRoutes, queryText, respond } from "../registration/application-routes.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import type { Lang } from "../web/i18n.ts";
import { issuanceRequestForApplication, listIssuanceRequests, listReceipts } from "./queries.ts";

const OFFICERS: OperatorRole[] = ["ra_officer", "ra_approver"];
const READERS: OperatorRole[] = [...OFFICERS, "auditor"];

const reviewSchema = z.object({ decision: z.enum(["accept", "return"]), note: z.string().max(1000).optional() });

/** A list filter: one of `states`, "all" (undefined: no filter), or the default. */
function stateFilter(req: Request, states: readonly string[], fallback: string): { state: string | undefined; selected: string } {
  const q = queryText(req, "state");
  if (q === "all") return { state: undefined, selected: "all" };
  const s = states.includes(q) ? q : fallback;
  return { state: s, selected: s };
}

/** Registers every RA console route and its navigation on `router`. */
export function mountRaRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode>): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...READERS);
  const officer = kit.requireRole(...OFFICERS);
  const lang = (req: Request): Lang => req.lang ?? "ja";
  const hcJa = (code: unknown) => (code == null ? "" : (hcRoles.get(String(code))?.ja ?? String(code)));

  kit.addNav({ path: "/applications", label: "Search applications", labelJa: "申込検索", roles: READERS });
  kit.addNav({ path: "/batches", label: "Incoming LRA batches", labelJa: "受付バッチの受領", roles: READERS });
  kit.addNav({ path: "/applications/new", label: "Direct application (desk / mail)", labelJa: "直接受付（窓口・郵送）", roles: OFFICERS });
  kit.addNav({ path: "/issuance-requests", label: "Issuance requests", labelJa: "発行依頼", roles: READERS });
  kit.addNav({ path: "/receipts", label: "Receipts to review", labelJa: "受領書の確認", roles: READERS });

  mountApplicationRoutes(router, kit, {
    hcRoles,
    readers: READERS,
    writers: OFFICERS,
    directIntake: true,
    detailExtras: async (req, app) => {
      const l = lang(req);
      const handover = await handoverExtras(kit, req, app);
      const ir = await issuanceRequestForApplication(db, Number(app.id));
      const names = await operatorNames(db, [ir?.created_by, ir?.approved_by]);
      return {
        ...handover,
        canRequestIssuance: OFFICERS.includes(kit.operator(req).role) && app.state === "ra_approved",
        issuanceRequestUrl: kit.url(`/applications/${Number(app.id)}/issuance-request`),
        issuance: ir && {
          ...issuanceRequestJson(ir),
          badge: stateBadge(issuanceRequestMachine, String(ir.state), l),
          creator: names.get(Number(ir.created_by))?.displayName,
          approver: ir.approved_by == null ? null : names.get(Number(ir.approved_by))?.displayName,
          createdText: displayDateTime(ir.created_at, l),
        },
      };
    },
  });

  // Cards of the applications taken directly (desk or mail) are handed over at the RA desk.
  mountHandoverRoutes(router, kit, { readers: READERS, desk: OFFICERS, deliveriesTo: "ra" });
  mountCardRoutes(router, kit, { readers: READERS, writers: OFFICERS });

  const appCells = (l: Lang, a: Row) => ({
    href: kit.url(`/applications/${Number(a.id)}`),
    applicationNo: a.application_no,
    nameKanji: a.name_kanji,
    nameKana: a.name_kana,
    qualification: hcJa(a.qualification),
    badge: stateBadge(applicationMachine, String(a.state), l),
  });

  router.get("/batches", read, async (req, res) => {
    const list = await listLraBatches(db, { states: ["forwarded", "received"] });
    const lras = await lraNames(db);
    const batches = list.map(({ batch, applications }) => lraBatchJson(batch, applications, lras.get(Number(batch.lra_id))));
    await respond(kit, req, res, "batches", { batches }, () => {
      const l = lang(req);
      const canReceive = OFFICERS.includes(kit.operator(req).role);
      return {
        rows: list.map(({ batch, applications }) => ({
          id: Number(batch.id),
          batchNo: batch.batch_no,
          lraName: lras.get(Number(batch.lra_id))?.name,
          badge: stateBadge(lraBatchMachine, String(batch.state), l),
          canReceive: canReceive && batch.state === "forwarded",
          receiveUrl: kit.url(`/batches/${Number(batch.id)}/receive`),
          forwardedText: displayDateTime(batch.forwarded_at, l),
          receivedText: displayDateTime(batch.received_at, l),
          applications: applications.map((a) => appCells(l, a)),
        })),
      };
    }, { title: { en: "Incoming LRA batches", ja: "受付バッチの受領" } });
  });

  router.post("/batches/:id/receive", officer, async (req, res) => {
    const row = await receiveLraBatch(db, kit.operator(req), idParam(req));
    done(kit, req, res, { batch: lraBatchJson(row) }, kit.url("/batches"), {
      message: `Batch ${row.batch_no} received. Review each application.`,
      messageJa: `受付バッチ ${row.batch_no} を受領しました。各申込を審査してください。`,
    });
  });

  router.post("/applications/:id/issuance-request", officer, async (req, res) => {
    const id = idParam(req);
    const ir = await createIssuanceRequest(db, kit.operator(req), id);
    done(kit, req, res, { issuanceRequest: issuanceRequestJson(ir) }, kit.url(`/applications/${id}`), {
      message: "Issuance request created. Another person (an RA approver) must approve it.",
      messageJa: "発行依頼を作成しました。作成者以外の承認者の承認が必要です。",
    }, 201);
  });

  router.get("/issuance-requests", read, async (req, res) => {
    const op = kit.operator(req);
    const { state, selected } = stateFilter(req, ISSUANCE_REQUEST_STATES, "requested");
    const list = await listIssuanceRequests(db, state);
    const names = await operatorNames(db, list.flatMap(({ request }) => [request.created_by, request.approved_by]));
    const person = (id: unknown) => (id == null ? null : { id: Number(id), ...names.get(Number(id)) });
    const issuanceRequests = list.map(({ request, application }) => ({
      ...issuanceRequestJson(request),
      application: applicationSummaryJson(application),
      creator: person(request.created_by),
      approver: person(request.approved_by),
    }));
    await respond(kit, req, res, "issuance-requests", { issuanceRequests }, () => {
      const l = lang(req);
      return {
        filters: ["requested", "approved", "issuing", "issued", "failed", "all"].map((s) => ({
          value: s, href: kit.url(`/issuance-requests?state=${s}`), current: s === selected,
          label: s === "all" ? (l === "ja" ? "すべて" : "all") : stateBadge(issuanceRequestMachine, s, l).label,
        })),
        isApprover: op.role === "ra_approver",
        rows: list.map(({ request, application }) => {
          const own = Number(request.created_by) === op.id;
          return {
            id: Number(request.id),
            ...appCells(l, application),
            badge: stateBadge(issuanceRequestMachine, String(request.state), l),
            profiles: (jsonColumn<string[]>(request.profiles) ?? []).map((p) => ({ key: `ra.profile.${p}` })),
            creator: names.get(Number(request.created_by))?.displayName,
            approver: request.approved_by == null ? null : names.get(Number(request.approved_by))?.displayName,
            createdText: displayDateTime(request.created_at, l),
            own,
            canApprove: op.role === "ra_approver" && request.state === "requested" && !own,
            ownPending: op.role === "ra_approver" && request.state === "requested" && own,
            approveUrl: kit.url(`/issuance-requests/${Number(request.id)}/approve`),
            lastError: request.last_error,
          };
        }),
      };
    }, { title: { en: "Issuance requests", ja: "発行依頼" } });
  });

  router.post("/issuance-requests/:id/approve", kit.requireRole("ra_approver"), async (req, res) => {
    const row = await approveIssuanceRequest(db, kit.operator(req), idParam(req));
    done(kit, req, res, { issuanceRequest: issuanceRequestJson(row) }, kit.url("/issuance-requests?state=requested"), {
      message: `Issuance request ${row.id} approved; it is now in the issuing office's queue.`,
      messageJa: `発行依頼 ${row.id} を承認しました。発行局の発行待ちに入りました。`,
    });
  });

  router.get("/receipts", read, async (req, res) => {
    const op = kit.operator(req);
    const { state, selected } = stateFilter(req, RECEIPT_STATES, "recorded");
    const list = await listReceipts(db, state);
    const names = await operatorNames(db, list.map(({ receipt }) => receipt.recorded_by));
    const receipts = list.map(({ receipt, application }) => ({
      ...receiptJson(receipt, kit.base),
      application: applicationSummaryJson(application),
      recorder: receipt.recorded_by == null ? null : { id: Number(receipt.recorded_by), ...names.get(Number(receipt.recorded_by)) },
    }));
    await respond(kit, req, res, "receipts", { receipts }, async () => {
      const l = lang(req);
      const lras = await lraNames(db);
      return {
        filters: ["recorded", "returned", "accepted", "issued", "all"].map((s) => ({
          value: s, href: kit.url(`/receipts?state=${s}`), current: s === selected,
          label: s === "all" ? (l === "ja" ? "すべて" : "all") : stateBadge(receiptMachine, s, l).label,
        })),
        rows: list.map(({ receipt, application }) => {
          const check = jsonColumn<Record<string, unknown>>(receipt.handover_check);
          return {
            id: Number(receipt.id),
            receiptNo: receipt.receipt_no,
            ...appCells(l, application),
            lraName: application.lra_id == null ? null : lras.get(Number(application.lra_id))?.name,
            receiptBadge: stateBadge(receiptMachine, String(receipt.state), l),
            check: check && { ...check, documentTypeKey: `app.idType.${check.documentType}`, checkedText: displayDateTime(check.checkedAt, l) },
            documentUrl: receipt.signed_document_id == null ? null : kit.url(`/documents/${Number(receipt.signed_document_id)}`),
            recorder: receipt.recorded_by == null ? null : names.get(Number(receipt.recorded_by))?.displayName,
            recordedText: displayDateTime(receipt.recorded_at, l),
            birthDateText: displayDate(application.birth_date, l),
            reviewNote: receipt.review_note,
            canReview: OFFICERS.includes(op.role) && receipt.state === "recorded",
            reviewUrl: kit.url(`/receipts/${Number(receipt.id)}/review`),
          };
        }),
      };
    }, { title: { en: "Receipts", ja: "受領書の確認" } });
  });

  router.post("/receipts/:id/review", officer, async (req, res) => {
    const r = parseInput(reviewSchema, req.body ?? {});
    const row = await reviewReceipt(db, kit.operator(req), idParam(req), r.decision, r.note);
    done(kit, req, res, { receipt: receiptJson(row, kit.base) }, kit.url("/receipts"), r.decision === "accept"
      ? { message: `Receipt ${row.receipt_no} accepted: the application is complete.`, messageJa: `受領書 ${row.receipt_no} を確認しました。申込は完了です。` }
      : { message: `Receipt ${row.receipt_no} returned to the desk.`, messageJa: `受領書 ${row.receipt_no} の再提出を依頼しました。` });
  });
}
