/**
 * Card workflows at the LRA and RA desks (issue 13 §2, §6), mounted by both consoles:
 *
 *   POST <console>/cards/:label/pin-unblock-requests   LRA: {identityCheck, reason?}; RA (mail): {documentsNote, reason?} → 201 {request}
 *   GET  <console>/pin-unblock-requests?state=         → {requests}
 *   POST /ra/pin-unblock-requests/:id/decision         {decision: approve|reject, note?} → {request} (RA approver, not the requester)
 *   POST <console>/cards/:label/return                 {reason?} → {card, revocationRequest} (cessationOfOperation filed)
 */
import type { Router } from "express";
import { z } from "zod";
import { returnCard } from "../pipeline/card-return.ts";
import { NotFoundError, parseInput } from "../pipeline/errors.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import { createPinUnblockRequest, decidePinUnblockRequest, listPinUnblockRequests, PIN_UNBLOCK_STATES } from "../pipeline/pin-unblock.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { done, queryText } from "./application-routes.ts";
import { cardLabelParam } from "./card-routes.ts";

const decisionSchema = z.object({ decision: z.enum(["approve", "reject"]), note: z.string().max(500).optional() });

function numericId(v: unknown): number {
  const n = typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new NotFoundError();
  return n;
}

/** Registers the desk's PIN unblock and card return routes; `decide` also mounts the RA decision. */
export function mountCardDeskRoutes(router: Router, kit: ConsoleKit, o: { readers: OperatorRole[]; desk: OperatorRole[]; decide?: OperatorRole[] }): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...o.readers);
  const desk = kit.requireRole(...o.desk);
  kit.addNav({ path: "/pin-unblock-requests", label: "PIN unblock", labelJa: "PINロック解除", roles: o.readers });

  router.post("/cards/:label/pin-unblock-requests", desk, async (req, res) => {
    const row = await createPinUnblockRequest(db, kit.operator(req), cardLabelParam(req), req.body);
    const request = { id: Number(row.id), requestNo: row.request_no, state: row.state, channel: row.channel };
    done(kit, req, res, { request }, kit.url(`/cards/${cardLabelParam(req)}`), {
      message: `PIN unblock request ${row.request_no} filed.`, messageJa: `PINロック解除申請 ${row.request_no} を受け付けました。`,
    }, 201);
  });

  router.get("/pin-unblock-requests", read, async (req, res) => {
    const s = queryText(req, "state");
    const requests = await listPinUnblockRequests(db, kit.operator(req), (PIN_UNBLOCK_STATES as readonly string[]).includes(s) ? s : undefined);
    kit.render(res, "pin-unblock-requests", { requests, canDecide: !!o.decide?.includes(kit.operator(req).role) }, { title: { en: "PIN unblock", ja: "PINロック解除" } });
  });

  if (o.decide) {
    router.post("/pin-unblock-requests/:id/decision", kit.requireRole(...o.decide), async (req, res) => {
      const v = parseInput(decisionSchema, req.body);
      const row = await decidePinUnblockRequest(db, kit.operator(req), numericId(req.params.id), v.decision, v.note);
      done(kit, req, res, { request: { id: Number(row.id), requestNo: row.request_no, state: row.state } }, kit.url("/pin-unblock-requests"), {
        message: `PIN unblock request ${row.request_no}: ${row.state}.`, messageJa: `PINロック解除申請 ${row.request_no} を処理しました。`,
      });
    });
  }

  router.post("/cards/:label/return", desk, async (req, res) => {
    const label = cardLabelParam(req);
    const r = await returnCard(db, kit.operator(req), label, req.body);
    done(kit, req, res, {
      card: { label, state: "returned" },
      revocationRequest: r.revocationRequest ? { id: Number(r.revocationRequest.id), requestNo: r.revocationRequest.request_no, state: r.revocationRequest.state } : null,
    }, kit.url(`/cards/${label}`), { message: `Card ${label} recorded as returned.`, messageJa: `カード ${label} の返却を記録しました。` });
  });
}
