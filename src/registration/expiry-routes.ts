/**
 * Console routes of expiry and renewal (issue 4 item 4): the cards and certificates expiring
 * within 90 days with the notices sent for them (src/notices/expiry.ts), and the renewal
 * application prefilled from the previous, completed application (src/notices/renewal.ts). For the
 * RA console; the LRA console may mount it too (its operators see their own association's
 * subscribers and take renewals for them).
 *
 * JSON (Accept: application/json), relative to the console base (/ra):
 *   GET  /expiry?days=90                  → {now, withinDays, entries: [{cardLabel, notAfter, daysLeft, certificates, applicationNo,
 *                                            renewalApplicationNo, notices: [{threshold, state, sentAt}], renewalUrl}]}
 *   GET  /expiry/renewal/:applicationId   → {renewalOf, previousApplicationNo, subscriberId, values}
 *   POST /expiry/renewal/:applicationId   → 201 {application: {id, applicationNo, state, renewalOf}}  (the reviewed form fields [+ channel])
 */
import type { Request, Router } from "express";
import { CERTIFICATE_PROFILE_NAMES, listExpiringCertificates } from "../notices/expiry.ts";
import { prefillRenewal, submitRenewalApplication } from "../notices/renewal.ts";
import { isLraRole, type OperatorRole } from "../pipeline/operator.ts";
import { loadPolicies } from "../policies.ts";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { displayDate, displayDateTime } from "./application-format.ts";
import { done, idParam, queryText, respond } from "./application-routes.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import type { Lang } from "../web/i18n.ts";

const TAKERS: OperatorRole[] = ["ra_officer", "ra_approver", "lra_reviewer", "lra_manager"];
// Administrators manage operators, not subscribers (CP separation of duties).
const READERS: OperatorRole[] = [...TAKERS, "auditor"];

/**
 * Registers the expiry list and renewal routes on a console router. `hcRoles` (the hcRole code
 * table, for validating the renewal form) defaults to loadPolicies().hcRoles.
 */
export function mountExpiryRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode> = loadPolicies().hcRoles): void {
  const db = kit.deps.db;
  const lang = (req: Request): Lang => req.lang ?? "ja";
  const read = kit.requireRole(...READERS);
  const take = kit.requireRole(...TAKERS);

  kit.addNav({ path: "/expiry", label: "Expiring certificates", labelJa: "有効期限が近い証明書", roles: READERS });

  router.get("/expiry", read, async (req, res) => {
    const op = kit.operator(req);
    const days = Math.min(Math.max(Number(queryText(req, "days")) || 90, 1), 366);
    const now = new Date();
    const list = await listExpiringCertificates(db, op, { now, withinDays: days });
    const canRenew = TAKERS.includes(op.role);
    const entries = list.map((e) => ({
      cardLabel: e.cardLabel, notAfter: e.notAfter.toISOString(), daysLeft: e.daysLeft, threshold: e.threshold,
      certificates: e.certificates.map((c) => ({ caName: c.caName, serialHex: c.serialHex, profile: c.profile, notAfter: c.notAfter.toISOString() })),
      applicationId: e.applicationId, applicationNo: e.applicationNo, applicationState: e.applicationState, nameKanji: e.nameKanji, lraName: e.lraName,
      renewalApplicationNo: e.renewalApplicationNo,
      notices: e.notices.map((n) => ({ threshold: n.threshold, state: n.state, sentAt: n.sentAt?.toISOString() ?? null })),
      renewalUrl: canRenew && !e.renewalApplicationNo && e.applicationState === "completed" ? kit.url(`/expiry/renewal/${e.applicationId}`) : null,
    }));
    await respond(kit, req, res, "ra/expiry-list", { now: now.toISOString(), withinDays: days, entries }, () => {
      const l = lang(req);
      return {
        rows: entries.map((e) => ({
          ...e,
          notAfterText: displayDate(e.notAfter, l),
          urgent: e.daysLeft <= 30,
          certificates: e.certificates.map((c) => ({ ...c, profileText: CERTIFICATE_PROFILE_NAMES[c.profile]?.[l] ?? c.profile })),
          noticeRows: e.notices.map((n) => ({ ...n, sentText: displayDateTime(n.sentAt, l), sent: n.state === "sent" })),
          applicationHref: kit.url(`/applications/${e.applicationId}`),
        })),
      };
    }, { title: { en: "Expiring certificates", ja: "有効期限が近い証明書" } });
  });

  const renewalPage = async (req: Request, values?: Record<string, unknown>) => {
    const p = await prefillRenewal(db, kit.operator(req), idParam(req, "applicationId"));
    const l = lang(req);
    const v = { ...p.values, ...values };
    return {
      ...p,
      values: v,
      qualificationText: hcRoles.get(p.values.qualification)?.[l === "ja" ? "ja" : "code"] ?? p.values.qualification,
      managerRoleText: p.values.managerRole ? (hcRoles.get(p.values.managerRole)?.[l === "ja" ? "ja" : "code"] ?? p.values.managerRole) : "",
      directIntake: !isLraRole(kit.operator(req).role),
      channelMail: v.channel === "ra_mail",
      action: kit.url(`/expiry/renewal/${p.renewalOf}`),
    };
  };

  router.get("/expiry/renewal/:applicationId", take, async (req, res) => {
    const page = await renewalPage(req);
    const { renewalOf, previousApplicationNo, subscriberId, values } = page;
    await respond(kit, req, res, "ra/expiry-renewal", { renewalOf, previousApplicationNo, subscriberId, values }, () => page,
      { title: { en: "Renewal application", ja: "更新の申込" } });
  });

  router.post("/expiry/renewal/:applicationId", take, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!kit.wantsJson(req)) kit.formView(res, "ra/expiry-renewal", await renewalPage(req, body));
    const op = kit.operator(req);
    const channel = isLraRole(op.role) ? undefined : body.channel === "ra_mail" ? "ra_mail" as const : "ra_desk" as const;
    const row = await submitRenewalApplication(db, op, hcRoles, idParam(req, "applicationId"), body, { channel });
    done(kit, req, res, { application: { id: Number(row.id), applicationNo: row.application_no, state: row.state, renewalOf: Number(row.renewal_of) } },
      kit.url(`/applications/${Number(row.id)}`), {
        message: `Renewal application ${row.application_no} received. Upload the documents and record the identity check.`,
        messageJa: `更新の申込 ${row.application_no} を受け付けました。書類の登録と本人確認を行ってください。`,
      }, 201);
  });
}
