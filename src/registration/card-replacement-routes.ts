/**
 * Console routes of card replacement after handover (issue 13 §3, §5; DESIGN §3): the reissue of
 * a lost or stolen card and the change of registered particulars (name change, manager role
 * gained or lost), for the RA and LRA consoles (an LRA operator acts for its own association's
 * subscribers). The records they create then follow the application pages (identity check,
 * documents, approval, issuance request, handover). Renewal: ./expiry-routes.ts.
 *
 * JSON (Accept: application/json), relative to the console base:
 *   GET  /cards/:label/replace          → {cardLabel, application, values, certificates, reasons, changes}
 *   POST /cards/:label/reissue          → 201 {application, revocationRequest}   ({reason: loss|theft, grounds})
 *   POST /cards/:label/change           → 201 {application}   ({change: name_change|role_gained|role_lost, …form fields})
 */
import type { Request, Router } from "express";
import { CHANGE_REASONS } from "../pipeline/card-replacement-rules.ts";
import { prefillChange, startChange, startLossReissue } from "../pipeline/card-replacement.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import { resolveRevocationTarget } from "../pipeline/revocation-requests.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import type { Lang } from "../web/i18n.ts";
import { applicationJson } from "./application-format.ts";
import { done, respond } from "./application-routes.ts";
import { revocationRequestJson } from "./revocation-routes.ts";

const TAKERS: OperatorRole[] = ["ra_officer", "ra_approver", "lra_reviewer", "lra_manager"];

function labelParam(req: Request): string {
  return String(req.params.label ?? "").trim();
}

/** Registers the card replacement routes on a console router. */
export function mountCardReplacementRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode>): void {
  const db = kit.deps.db;
  const take = kit.requireRole(...TAKERS);
  const lang = (req: Request): Lang => req.lang ?? "ja";

  const page = async (req: Request, values?: Record<string, unknown>) => {
    const p = await prefillChange(db, kit.operator(req), labelParam(req));
    const target = await resolveRevocationTarget(db, { targetKind: "card", cardLabel: p.cardLabel });
    const l = lang(req);
    const option = (k: keyof typeof CHANGE_REASONS) => ({ value: k, label: `${CHANGE_REASONS[k].ja} / ${CHANGE_REASONS[k].en}` });
    return {
      cardLabel: p.cardLabel,
      application: applicationJson(p.replaces),
      values: { ...p.values, ...values },
      certificates: target.certificates.map((c) => ({ caName: c.caName, serialHex: c.serialHex, profile: c.profile, revokedReason: c.revokedReason })),
      reasons: (["loss", "theft"] as const).map(option),
      changes: (["name_change", "role_gained", "role_lost"] as const).map(option),
      managerRoles: [...hcRoles.values()].filter((r) => r.kind === "manager").map((r) => ({ value: r.code, label: l === "ja" ? `${r.ja}（${r.code}）` : r.code })),
      reissueAction: kit.url(`/cards/${encodeURIComponent(p.cardLabel)}/reissue`),
      changeAction: kit.url(`/cards/${encodeURIComponent(p.cardLabel)}/change`),
    };
  };

  router.get("/cards/:label/replace", take, async (req, res) => {
    const p = await page(req);
    const { reissueAction: _r, changeAction: _c, managerRoles: _m, ...json } = p;
    await respond(kit, req, res, "ra/card-replacement", json, () => p, { title: { en: `Reissue or change: card ${p.cardLabel}`, ja: `再発行・記載事項変更 カード ${p.cardLabel}` } });
  });

  router.post("/cards/:label/reissue", take, async (req, res) => {
    if (!kit.wantsJson(req)) kit.formView(res, "ra/card-replacement", await page(req));
    const r = await startLossReissue(db, kit.operator(req), hcRoles, { ...(req.body ?? {}), cardLabel: labelParam(req) });
    done(kit, req, res, {
      application: applicationJson(r.application),
      revocationRequest: r.revocationRequest ? revocationRequestJson(r.revocationRequest) : null,
    }, kit.url(`/applications/${Number(r.application.id)}`), {
      message: `Reissue ${r.application.application_no} recorded; revocation request ${r.revocationRequest?.request_no ?? "—"} (keyCompromise) waits for a second officer. Record the identity check at the desk.`,
      messageJa: `再発行 ${r.application.application_no} を受け付けました。失効申請 ${r.revocationRequest?.request_no ?? "—"}（鍵の危殆化）は別の担当者の承認待ちです。窓口で本人確認を記録してください。`,
    }, 201);
  });

  router.post("/cards/:label/change", take, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!kit.wantsJson(req)) kit.formView(res, "ra/card-replacement", await page(req, body));
    const row = await startChange(db, kit.operator(req), hcRoles, labelParam(req), body);
    done(kit, req, res, { application: applicationJson(row) }, kit.url(`/applications/${Number(row.id)}`), {
      message: `Change ${row.application_no} received. Upload its document and record the identity check.`,
      messageJa: `記載事項変更 ${row.application_no} を受け付けました。変更を証する書類の登録と本人確認を行ってください。`,
    }, 201);
  });
}
