/**
 * The card pages (issue 13 §1), mounted by the RA, LRA and IA consoles: the card list, one card
 * with its lifecycle history and its certificates, and the plain lifecycle events a console may
 * record on it (a reported PIN lock, a spoiled card, a destruction) — each a card transition
 * checked for role, scope and state and audited. Workflows with side effects (return, PIN
 * unblock, reissue) have their own routes.
 *
 *   GET  <console>/cards?q=&state=          → {cards: [...]}
 *   GET  <console>/cards/:label             → {card, history, certificates, application, transitions}
 *   POST <console>/cards/:label/events      {transition, reason?, version?} → {card}
 */
import type { Request, Router } from "express";
import { z } from "zod";
import { applyCardTransition, CARD_STATES, cardLifecycle, type CardTransition } from "../pipeline/card-lifecycle.ts";
import { cardPage, listCards } from "../pipeline/card-records.ts";
import { ConflictError, parseInput } from "../pipeline/errors.ts";
import { lifecycleActorOf } from "../pipeline/lifecycle.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { done, queryText, respond } from "./application-routes.ts";

/** Card transitions a console records with nothing else to do: no HSM, no revocation. */
export const PLAIN_CARD_EVENTS = ["pin_lock", "spoil", "destroy"] as const satisfies readonly CardTransition[];

const eventSchema = z.object({
  transition: z.enum(PLAIN_CARD_EVENTS),
  reason: z.string().max(500).optional(),
  version: z.coerce.number().int().positive().optional(),
});

const LABEL = /^card-[0-9A-F]{12}$|^card-[A-Za-z0-9_-]{1,27}$/;

/** The :label route parameter; anything else is "not found". */
export function cardLabelParam(req: Request): string {
  const v = String(req.params.label ?? "");
  return LABEL.test(v) ? v : "card-?";
}

export interface CardRouteOptions {
  /** Roles that may read the card pages. */
  readers: OperatorRole[];
  /** Roles that may post plain card events (the lifecycle then checks each transition's roles). */
  writers: OperatorRole[];
  /** Extra page data per card page (console-specific actions: return, PIN unblock…). */
  extras?: (req: Request, label: string, state: string) => Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** Registers the card list, the card page and the plain card events on `router`. */
export function mountCardRoutes(router: Router, kit: ConsoleKit, o: CardRouteOptions): void {
  const db = kit.deps.db;
  const read = kit.requireRole(...o.readers);
  const write = kit.requireRole(...o.writers);
  kit.addNav({ path: "/cards", label: "Cards", labelJa: "カード", roles: o.readers });

  router.get("/cards", read, async (req, res) => {
    const state = queryText(req, "state");
    const cards = await listCards(db, lifecycleActorOf(kit.operator(req)), { q: queryText(req, "q"), state: (CARD_STATES as readonly string[]).includes(state) ? state : undefined });
    await respond(kit, req, res, "cards", { cards }, () => ({
      q: queryText(req, "q"), state,
      states: CARD_STATES.map((s) => ({ value: s, ja: cardLifecycle.stateJa[s], en: cardLifecycle.stateEn[s], selected: s === state })),
    }), { title: { en: "Cards", ja: "カード" } });
  });

  router.get("/cards/:label", read, async (req, res) => {
    const op = kit.operator(req);
    const label = cardLabelParam(req);
    const page = await cardPage(db, label, lifecycleActorOf(op));
    const writer = o.writers.includes(op.role);
    await respond(kit, req, res, "card", { ...page }, async () => ({
      events: writer ? PLAIN_CARD_EVENTS.filter((t) => page.transitions.includes(t)).map((t) => ({
        transition: t, labelJa: cardLifecycle.transitions[t].labelJa, labelEn: cardLifecycle.transitions[t].labelEn,
      })) : [],
      ...(o.extras ? await o.extras(req, label, page.card.state) : {}),
    }), { title: { en: `Card ${page.card.cardSerial}`, ja: `カード ${page.card.cardSerial}` } });
  });

  router.post("/cards/:label/events", write, async (req, res) => {
    const op = kit.operator(req);
    const label = cardLabelParam(req);
    const input = parseInput(eventSchema, req.body);
    const step = await db.transaction(async (trx) => {
      if (input.version !== undefined) {
        const cur = await trx("cards").where({ label }).forUpdate().first("version");
        if (cur && Number(cur.version) !== input.version) {
          throw new ConflictError(`card ${label} changed since it was shown`, `カード ${label} は表示後に更新されています。再読み込みしてください`);
        }
      }
      return applyCardTransition(trx, input.transition, label, lifecycleActorOf(op), { details: input.reason ? { reason: input.reason } : {} });
    });
    const t = cardLifecycle.transitions[input.transition];
    done(kit, req, res, { card: { label, state: step.to, from: step.from } }, kit.url(`/cards/${label}`), {
      message: `Card ${label}: ${t.labelEn} recorded.`, messageJa: `カード ${label}：${t.labelJa}を記録しました。`,
    });
  });
}
