/**
 * IA console — card PINs (issue 13 §2, §8):
 *
 *   GET  /pin-unblock-requests               approved requests waiting for the card at the IA
 *   POST /pin-unblock-requests/:id/execute   SO login + C_InitPIN on the card present → {unblock} (never a PIN)
 *   GET  /pin-mailers?state=                 PIN mailers: pending, printed, sent (with the card's shipping day)
 *   POST /pin-mailers/:no/print              the mailer as a PDF (once: the PIN is erased)
 *   POST /pin-mailers/:no/sent               {sentOn?} → {mailer} (warning when sent on the card's shipping day)
 */
import type { Router } from "express";
import { listPinUnblockRequests } from "../../pipeline/pin-unblock.ts";
import type { ConsoleKit } from "../../web/console/kit.ts";
import { executePinUnblock } from "../card-pins.ts";
import { listPinMailers, printPinMailer, recordPinMailerSent } from "../pin-mailers.ts";
import { idParam, sendJson, type IaGuards, type IaRouteDeps } from "./common.ts";

const MAILER_NO = /^PM-[A-Z2-9]{12}$/;

function mailerParam(v: unknown): string {
  const s = String(v ?? "");
  return MAILER_NO.test(s) ? s : "PM-?";
}

/** Registers the PIN unblock and PIN mailer routes of the IA console. */
export function mountPinRoutes(router: Router, kit: ConsoleKit, deps: IaRouteDeps, guard: IaGuards): void {
  const { ctx } = deps;
  const roles = ["ia_operator", "auditor"] as const;
  kit.addNav({ path: "/pin-unblock-requests", label: "PIN unblock", labelJa: "PINロック解除", roles });
  kit.addNav({ path: "/pin-mailers", label: "PIN mailers", labelJa: "PIN通知書", roles });

  router.get("/pin-unblock-requests", guard.read, async (req, res) => {
    const requests = await listPinUnblockRequests(ctx.db, kit.operator(req), "approved");
    kit.render(res, "pin-unblock-requests", { requests, canExecute: req.operator?.role === "ia_operator" }, { title: { en: "PIN unblock", ja: "PINロック解除" } });
  });

  router.post("/pin-unblock-requests/:id/execute", guard.write, async (req, res) => {
    const unblock = await executePinUnblock(ctx, kit.operator(req), idParam(req.params.id));
    if (kit.wantsJson(req)) {
      sendJson(res, 200, { unblock });
      return;
    }
    kit.flash(req, "success", `PIN of card ${unblock.cardLabel} unblocked; print PIN mailer ${unblock.pinMailerNo}.`,
      `カード ${unblock.cardLabel} のPINロックを解除しました。PIN通知書 ${unblock.pinMailerNo} を印刷してください。`);
    res.redirect(303, kit.url("/pin-mailers"));
  });

  router.get("/pin-mailers", guard.read, async (req, res) => {
    const state = typeof req.query.state === "string" && ["pending", "printed", "sent"].includes(req.query.state) ? req.query.state : undefined;
    const mailers = await listPinMailers(ctx.db, { state });
    kit.render(res, "pin-mailers", { mailers, canPrint: req.operator?.role === "ia_operator" }, { title: { en: "PIN mailers", ja: "PIN通知書" } });
  });

  router.post("/pin-mailers/:no/print", guard.write, async (req, res) => {
    const no = mailerParam(req.params.no);
    const pdf = await printPinMailer(ctx, kit.operator(req), no);
    res.status(200).type("application/pdf").set("Content-Disposition", `attachment; filename="${no}.pdf"`).set("Cache-Control", "no-store").send(pdf);
  });

  router.post("/pin-mailers/:no/sent", guard.write, async (req, res) => {
    const mailer = await recordPinMailerSent(ctx.db, kit.operator(req), mailerParam(req.params.no), req.body);
    if (kit.wantsJson(req)) {
      sendJson(res, 200, { mailer });
      return;
    }
    if (mailer.sameDayAsCard) kit.flash(req, "error", "Sent on the day the card was shipped: send PIN mailers on another day.", "カードの発送日と同じ日に発送しました。PIN通知書はカードと別の日に発送してください。");
    else kit.flash(req, "success", `PIN mailer ${mailer.mailerNo} recorded as sent.`, `PIN通知書 ${mailer.mailerNo} の発送を記録しました。`);
    res.redirect(303, kit.url("/pin-mailers"));
  });
}
