/**
 * The confirmation step of irreversible desk actions (issue 12 §7: forward, ship, revoke). A form
 * POST without confirmed=1 is answered with a page that restates the action and posts the same
 * fields again with confirmed=1 (works without JavaScript); views/static/desk.js asks in the
 * browser first (data-confirm) and sends confirmed=1 itself, so the page is not shown then.
 * JSON clients are API callers and are not asked.
 */
import type { Request, Response } from "express";
import type { ConsoleKit } from "./kit.ts";

export interface ConfirmPrompt {
  /** What will happen, in both languages. */
  message: string;
  messageJa: string;
  /** The label of the confirming button. */
  action: string;
  actionJa: string;
  /** Where "cancel" goes (below the console base, e.g. "/batches"). */
  cancelPath: string;
}

/**
 * True when the confirmation page was sent (the handler must return); false when the request is
 * confirmed (or from an API client) and the action may go on.
 */
export function confirmationPending(kit: ConsoleKit, req: Request, res: Response, prompt: ConfirmPrompt): boolean {
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (kit.wantsJson(req) || body.confirmed === "1") return false;
  const fields = Object.entries(body)
    .filter(([k]) => k !== "_csrf" && k !== "confirmed")
    .flatMap(([name, v]) => (Array.isArray(v) ? v : [v]).map((value) => ({ name, value: String(value ?? "") })));
  const ja = (req.lang ?? "ja") === "ja";
  kit.render(res, "desk/confirm", {
    actionUrl: req.originalUrl,
    fields,
    message: ja ? prompt.messageJa : prompt.message,
    actionLabel: ja ? prompt.actionJa : prompt.action,
    cancelHref: kit.url(prompt.cancelPath),
  }, { title: { en: "Confirm", ja: "確認" } });
  return true;
}
