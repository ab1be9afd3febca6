/**
 * Console routes of the revocation workflow (失効申請; issue 4 items 1 and 5): the RA's request
 * form (one certificate or a whole card), the list and detail, approval by a second officer,
 * rejection, the emergency form (phone call, lost card: hold or revoke at once, flagged) and the
 * after-the-fact review of emergency requests, the retry of a request the IA failed to execute
 * (its error shown on the page), and the auditor's view of revocations. Every write
 * goes through src/pipeline/revocation-requests.ts, which checks role, scope, state and the
 * two-person rule again; execution is the IA worker's (src/ia/revocation-worker.ts), which picks
 * approved requests up within its poll interval (5 s by default).
 *
 * Mount with mountRevocationRoutes(router, kit) in the RA console (the LRA console may mount it
 * too: LRA operators then file requests for their own association's subscribers). Views are
 * views/ra/revocation-*.hbs, texts views/locales/revocation.{ja,en}.json.
 *
 * JSON (Accept: application/json), relative to the console base (/ra):
 *   GET  /revocations?state=requested|approved|executed|rejected|failed|all&review=pending&q=  (q: request/card/application/licence number or name)
 *                                        → {requests: [request…]}
 *   GET  /revocations/new?q=             → {targets: [hit…], channels, reasons, cas}   (q: card, serial, application no, name
 *                                          (異体字/width/spaces ignored), birth date (Western or 和暦), licence number)
 *   POST /revocations                    → 201 {request}  ({targetKind, caName, serialHex | cardLabel, channel, reason, invalidityDate?, grounds})
 *   GET  /revocations/emergency?q=       → {targets, reasons, cas}   (the caller's card found as above: a caller never knows the label)
 *   POST /revocations/emergency          → 201 {request}  (as above without channel, + callerVerification)
 *   GET  /revocations/:id                → {request, target: {certificates…} | null, actions}
 *   POST /revocations/:id/approve        → {request}      ({version?})
 *   POST /revocations/:id/reject         → {request}      ({reason})
 *   POST /revocations/:id/review         → {request}      ({outcome: confirmed|questioned, note?})
 *   POST /revocations/:id/retry          → {request}      ({note?, version?}; ra_approver: a failed request back in the IA's queue)
 *   GET  /audit/revocations              → {revocations: [entry…], emergencies: [request…]}  (auditor)
 */
import { keysetPage, pageCursor, pageJson, pagerView } from "./keyset.ts";
import type { Request, Router } from "express";
import { z } from "zod";
import { CERTIFICATE_PROFILE_NAMES } from "../notices/expiry.ts";
import { parseInput } from "../pipeline/errors.ts";
import type { Row } from "../pipeline/machine.ts";
import { availableTransitions } from "../pipeline/machine.ts";
import { isLraRole, type Operator, type OperatorRole } from "../pipeline/operator.ts";
import {
  EMERGENCY_REASONS, REVIEW_OUTCOMES, REVOCATION_CHANNELS, REVOCATION_REQUEST_REASONS, REVOCATION_REQUEST_STATES, revocationRequestMachine,
  type RevocationChannel,
} from "../pipeline/revocation-request.ts";
import {
  approveRevocationRequest, createEmergencyRevocation, createRevocationRequest, getRevocationRequest, listRecentRevocations,
  listRevocationRequests, rejectRevocationRequest, revocationRequestQuery, retryRevocationRequest, reviewEmergencyRevocation, searchRevocationTargets, type ResolvedTarget,
} from "../pipeline/revocation-requests.ts";
import { displayDateTime, displayDateWithEra, isoTime, jsonColumn, stateBadge } from "./application-format.ts";
import { isoDate } from "../pipeline/applications.ts";
import { done, idParam, queryText, respond } from "./application-routes.ts";
import { confirmationPending } from "../web/console/confirm.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import type { Lang } from "../web/i18n.ts";

const RA: OperatorRole[] = ["ra_officer", "ra_approver"];
const LRA: OperatorRole[] = ["lra_reviewer", "lra_manager"];
const FILERS: OperatorRole[] = [...RA, ...LRA];
// Administrators manage operators, not subscribers: no revocation data (CP separation of duties).
const READERS: OperatorRole[] = [...FILERS, "auditor"];
const AUDITORS: OperatorRole[] = ["auditor"];

const versionField = z.union([z.number(), z.string().regex(/^\d*$/)]).optional()
  .transform((v) => (v === undefined || v === "" ? undefined : Number(v)));
const approveSchema = z.object({ version: versionField });
const rejectSchema = z.object({ reason: z.string().max(1000).default(""), version: versionField });
const reviewSchema = z.object({ outcome: z.string().default(""), note: z.string().max(1000).optional() });
const retrySchema = z.object({ note: z.string().max(1000).optional(), version: versionField });

/** A revocation_requests row (with the names listRevocationRequests adds) in the JSON shape of the API. */
export function revocationRequestJson(r: Row): Record<string, unknown> {
  return {
    id: Number(r.id),
    requestNo: r.request_no,
    state: r.state,
    stateJa: revocationRequestMachine.stateJa[r.state as keyof typeof revocationRequestMachine.stateJa] ?? r.state,
    version: Number(r.version),
    targetKind: r.target_kind,
    caName: r.ca_name ?? null,
    serialHex: r.serial_hex ?? null,
    cardLabel: r.card_label ?? null,
    applicationNo: r.application_no ?? null,
    nameKanji: r.name_kanji ?? null,
    subscriberId: r.subscriber_id ?? null,
    channel: r.channel,
    reason: r.reason,
    invalidityDate: isoTime(r.invalidity_date),
    grounds: r.grounds,
    emergency: Boolean(r.emergency),
    callerVerification: r.caller_verification ?? null,
    reviewState: r.review_state ?? null,
    reviewNote: r.review_note ?? null,
    createdBy: r.created_by_name ?? null,
    approvedBy: r.approved_by_name ?? null,
    reviewedBy: r.reviewed_by_name ?? null,
    createdAt: isoTime(r.created_at),
    approvedAt: isoTime(r.approved_at),
    executedAt: isoTime(r.executed_at),
    reviewedAt: isoTime(r.reviewed_at),
    decisionReason: r.decision_reason ?? null,
    results: jsonColumn<unknown[]>(r.results),
    lastError: r.last_error ?? null,
    attempts: Number(r.attempts ?? 0),
  };
}

function targetJson(t: ResolvedTarget | null): Record<string, unknown> | null {
  return t && {
    kind: t.kind, applicationNo: t.applicationNo, subscriberId: t.subscriberId, nameKanji: t.nameKanji,
    certificates: t.certificates.map((c) => ({ caName: c.caName, serialHex: c.serialHex, profile: c.profile, notAfter: c.notAfter.toISOString(), cardLabel: c.cardLabel, revokedReason: c.revokedReason })),
  };
}

/** What the IA did to a certificate (revokeCertificate's action), for the pages. */
const ACTION_NAMES: Record<string, { ja: string; en: string }> = {
  revoked: { ja: "失効", en: "revoked" },
  held: { ja: "一時停止", en: "put on hold" },
  "hold-converted": { ja: "一時停止から失効", en: "hold made permanent" },
  "hold-released": { ja: "一時停止の解除", en: "hold released" },
};

/**
 * Page labels of a certificate: its kind and, when revoked, the reason, in the page language. A
 * certificate on hold (RFC 5280 §5.3.1 certificateHold) is 一時停止中, never 失効 (issue 12 §7).
 */
function certificateLabels(l: Lang, c: { profile: string; revokedReason?: string | null }) {
  const reason = c.revokedReason ? REVOCATION_REQUEST_REASONS[c.revokedReason as keyof typeof REVOCATION_REQUEST_REASONS] : undefined;
  const onHold = c.revokedReason === "certificateHold";
  const reasonText = l === "ja" ? (reason?.ja ?? c.revokedReason) : c.revokedReason;
  return {
    profileText: CERTIFICATE_PROFILE_NAMES[c.profile]?.[l] ?? c.profile,
    onHold,
    revokedText: !c.revokedReason ? null : onHold ? (l === "ja" ? "一時停止中" : "on hold") : l === "ja" ? `失効（${reasonText}）` : `revoked (${reasonText})`,
  };
}

/**
 * The state badge of a revocation request: an executed hold is 一時停止中 and an executed
 * release 一時停止解除済, distinct from 失効済 (issue 12 §7); other states as the machine names them.
 */
export function revocationRequestBadge(l: Lang, r: Row): { state: string; label: string; tone: string } {
  if (r.state === "executed" && r.reason === "certificateHold") return { state: "held", label: l === "ja" ? "一時停止中" : "on hold", tone: "hold" };
  if (r.state === "executed" && r.reason === "removeFromCRL") return { state: "released", label: l === "ja" ? "一時停止解除済" : "hold released", tone: "ok" };
  return stateBadge(revocationRequestMachine, String(r.state), l);
}

/** `s` cut to `max` characters with an ellipsis (the page links to the whole). */
const shorten = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** Registers the revocation routes and their navigation entries on a console router. */
export function mountRevocationRoutes(router: Router, kit: ConsoleKit): void {
  const db = kit.deps.db;
  const lang = (req: Request): Lang => req.lang ?? "ja";
  const read = kit.requireRole(...READERS);
  const file = kit.requireRole(...FILERS);
  const ra = kit.requireRole(...RA);
  const approver = kit.requireRole("ra_approver");
  const audit = kit.requireRole(...AUDITORS);

  kit.addNav({ path: "/revocations", label: "Revocation requests", labelJa: "失効申請", roles: READERS });
  kit.addNav({ path: "/revocations/new", label: "New revocation request", labelJa: "失効申請の登録", roles: FILERS });
  kit.addNav({ path: "/revocations/emergency", label: "Emergency revocation (phone)", labelJa: "緊急失効（電話受付）", roles: RA });
  kit.addNav({ path: "/revocations?review=pending", label: "Emergency reviews", labelJa: "緊急失効の事後確認", roles: ["ra_approver", "auditor"] });
  kit.addNav({ path: "/audit/revocations", label: "Revocation audit", labelJa: "失効の監査", roles: AUDITORS });

  /** The request as the API shows it after a write (re-read with the names of the people involved). */
  const fresh = async (req: Request, row: Row) => revocationRequestJson((await getRevocationRequest(db, kit.operator(req), Number(row.id))).request);

  const channelsFor = (op: Operator): RevocationChannel[] => (isLraRole(op.role) ? ["subscriber_lra"] : ["subscriber_ra", "ra_initiative"]);
  const issuingCas = async () => (await db("certificate_authorities").whereNotNull("parent_id").orderBy("name").pluck("name")) as string[];
  const option = (l: Lang, labels: Record<string, { ja: string; en: string }>, selected: unknown) => (value: string) =>
    ({ value, label: l === "ja" ? labels[value].ja : labels[value].en, selected: value === selected });

  /** Page data of the request and emergency forms (also their form views after a ValidationError). */
  const formPage = async (req: Request, emergency: boolean, values: Record<string, unknown> = {}) => {
    const l = lang(req);
    const op = kit.operator(req);
    const q = queryText(req, "q");
    const targets = q ? await searchRevocationTargets(db, op, q) : [];
    const formPath = emergency ? "/revocations/emergency" : "/revocations/new";
    const reasons = emergency ? EMERGENCY_REASONS : (Object.keys(REVOCATION_REQUEST_REASONS) as (keyof typeof REVOCATION_REQUEST_REASONS)[]);
    const targetKind = String(values.targetKind ?? queryText(req, "targetKind") ?? "") || "card";
    return {
      q,
      values: { targetKind, cardLabel: queryText(req, "cardLabel"), caName: queryText(req, "caName"), serialHex: queryText(req, "serialHex"), ...values },
      targetCard: targetKind === "card",
      targets: targets.map((h) => ({
        ...h,
        birthDateText: displayDateWithEra(h.birthDate, l),
        prefillCard: h.cardLabel ? kit.url(`${formPath}?targetKind=card&cardLabel=${encodeURIComponent(h.cardLabel)}`) : null,
        certificates: h.certificates.map((c) => ({
          ...c, ...certificateLabels(l, c), notAfterText: displayDateTime(c.notAfter, l),
          prefill: kit.url(`${formPath}?targetKind=certificate&caName=${encodeURIComponent(c.caName)}&serialHex=${c.serialHex}`),
        })),
      })),
      casOptions: (await issuingCas()).map((name) => ({ value: name, label: name, selected: name === (values.caName ?? queryText(req, "caName")) })),
      channelOptions: channelsFor(op).map(option(l, REVOCATION_CHANNELS, values.channel)),
      // No default: the reason is a required, deliberate choice (issue 12 §7).
      reasonOptions: reasons.map(option(l, REVOCATION_REQUEST_REASONS, values.reason)),
      emergency,
    };
  };

  /** The search hits of a form page in the JSON shape (no page-only fields). */
  const targetsJson = (targets: Awaited<ReturnType<typeof formPage>>["targets"]) =>
    targets.map(({ prefillCard: _p, birthDateText: _b, ...h }) => ({
      ...h, birthDate: h.birthDate == null ? null : isoDate(h.birthDate),
      certificates: h.certificates.map(({ prefill: _x, notAfterText: _n, profileText: _t, revokedText: _r, ...c }) => c),
    }));

  const listPage = (req: Request, rows: Row[]) => {
    const l = lang(req);
    const op = kit.operator(req);
    return rows.map((r) => ({
      ...revocationRequestJson(r),
      href: kit.url(`/revocations/${Number(r.id)}`),
      badge: revocationRequestBadge(l, r),
      target: r.card_label ? `${l === "ja" ? "カード" : "card"} ${r.card_label}` : `${r.ca_name} / ${r.serial_hex}`,
      reasonText: l === "ja" ? REVOCATION_REQUEST_REASONS[r.reason as keyof typeof REVOCATION_REQUEST_REASONS]?.ja : r.reason,
      channelText: REVOCATION_CHANNELS[r.channel as RevocationChannel]?.[l] ?? r.channel,
      createdText: displayDateTime(r.created_at, l),
      reviewText: r.review_state ? (REVIEW_OUTCOMES[r.review_state as keyof typeof REVIEW_OUTCOMES]?.[l] ?? (l === "ja" ? "事後確認待ち" : "review pending")) : "",
      own: Number(r.created_by) === op.id,
      canApprove: r.state === "requested" && op.role === "ra_approver" && Number(r.created_by) !== op.id,
      canReview: r.review_state === "pending" && r.state === "executed" && op.role === "ra_approver" && Number(r.created_by) !== op.id,
      canRetry: r.state === "failed" && availableTransitions(revocationRequestMachine, "failed", op).includes("retry"),
      // A request back in the queue after a failure keeps the error until it is executed.
      previousError: r.state === "approved" && r.last_error ? String(r.last_error) : null,
      errorText: r.state === "failed" && r.last_error ? shorten(String(r.last_error), 160) : null,
    }));
  };

  router.get("/revocations", read, async (req, res) => {
    const op = kit.operator(req);
    const reviewPending = queryText(req, "review") === "pending";
    const q = queryText(req, "state");
    const state = reviewPending || q === "all" ? undefined : (REVOCATION_REQUEST_STATES as readonly string[]).includes(q) ? q : q === "" ? undefined : "requested";
    const text = queryText(req, "q");
    const page = await keysetPage(revocationRequestQuery(db, op, { state, reviewPending, text }), "rr.id", "desc", pageCursor(req), { key: "id", selected: true });
    const rows = page.rows;
    await respond(kit, req, res, "ra/revocation-list", { requests: rows.map(revocationRequestJson), page: pageJson(page) }, () => {
      const l = lang(req);
      const filters = [
        { key: "all", href: kit.url("/revocations"), current: !state && !reviewPending },
        ...REVOCATION_REQUEST_STATES.map((s) => ({ key: s, href: kit.url(`/revocations?state=${s}`), current: state === s })),
        { key: "reviewPending", href: kit.url("/revocations?review=pending"), current: reviewPending },
      ].map((f) => ({ ...f, label: f.key === "all" ? (l === "ja" ? "すべて" : "all") : f.key === "reviewPending" ? (l === "ja" ? "事後確認待ち" : "review pending") : stateBadge(revocationRequestMachine, f.key, l).label }));
      return { rows: listPage(req, rows), filters, reviewPending, canFile: FILERS.includes(op.role), q: text, stateParam: state ?? "", pager: pagerView(req, kit.url("/revocations"), page) };
    }, { title: { en: "Revocation requests", ja: "失効申請" } });
  });

  router.get("/revocations/new", file, async (req, res) => {
    const page = await formPage(req, false);
    await respond(kit, req, res, "ra/revocation-new", {
      targets: targetsJson(page.targets),
      channels: channelsFor(kit.operator(req)), reasons: Object.keys(REVOCATION_REQUEST_REASONS), cas: page.casOptions.map((c) => c.value),
    }, () => page, { title: { en: "New revocation request", ja: "失効申請の登録" } });
  });

  router.post("/revocations", file, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!kit.wantsJson(req)) kit.formView(res, "ra/revocation-new", await formPage(req, false, body));
    const row = await createRevocationRequest(db, kit.operator(req), body);
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${Number(row.id)}`), {
      message: `Revocation request ${row.request_no} filed. Another RA officer approves it.`,
      messageJa: `失効申請 ${row.request_no} を登録しました。別の登録局担当者（承認者）の承認後に失効処理されます。`,
    }, 201);
  });

  router.get("/revocations/emergency", ra, async (req, res) => {
    const page = await formPage(req, true);
    await respond(kit, req, res, "ra/revocation-emergency", { targets: targetsJson(page.targets), reasons: EMERGENCY_REASONS, cas: page.casOptions.map((c) => c.value) }, () => page,
      { title: { en: "Emergency revocation", ja: "緊急失効（電話受付）" } });
  });

  router.post("/revocations/emergency", ra, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (confirmationPending(kit, req, res, {
      message: "Revoke or hold the certificate(s) NOW, before any second officer approves? The IA executes it within seconds.",
      messageJa: "承認を待たずに直ちに失効（または一時停止）します。発行局が数秒以内に処理します。よろしいですか。",
      action: "Revoke / hold now", actionJa: "直ちに失効・一時停止する", cancelPath: "/revocations/emergency",
    })) return;
    if (!kit.wantsJson(req)) kit.formView(res, "ra/revocation-emergency", await formPage(req, true, body));
    const row = await createEmergencyRevocation(db, kit.operator(req), body);
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${Number(row.id)}`), {
      message: `Emergency request ${row.request_no} recorded: the IA executes it within seconds. A second officer reviews it afterwards.`,
      messageJa: `緊急失効 ${row.request_no} を登録しました。発行局が数秒以内に処理します。後ほど別の承認者が事後確認します。`,
    }, 201);
  });

  const detailPage = async (req: Request, id: number) => {
    const op = kit.operator(req);
    const l = lang(req);
    const { request, target } = await getRevocationRequest(db, op, id);
    const actions = availableTransitions(revocationRequestMachine, String(request.state), op)
      .filter((a) => a === "approve" || a === "reject" || a === "retry" || (a === "review" && request.review_state === "pending"));
    const [row] = listPage(req, [request]);
    return {
      json: { request: revocationRequestJson(request), target: targetJson(target), actions },
      page: {
        row,
        target: target && { ...targetJson(target), certificates: target.certificates.map((c) => ({ ...c, ...certificateLabels(l, c), notAfterText: displayDateTime(c.notAfter, l) })) },
        results: (jsonColumn<{ action?: string }[]>(request.results) ?? []).map((r) => ({ ...r, actionText: r.action ? (ACTION_NAMES[r.action]?.[l] ?? r.action) : null })),
        canApprove: actions.includes("approve") && Number(request.created_by) !== op.id,
        canReject: actions.includes("reject"),
        canReview: actions.includes("review") && Number(request.created_by) !== op.id,
        canRetry: actions.includes("retry"),
        failed: request.state === "failed",
        ownPending: Number(request.created_by) === op.id && request.state === "requested",
        reviewOptions: (Object.keys(REVIEW_OUTCOMES) as (keyof typeof REVIEW_OUTCOMES)[]).map(option(l, REVIEW_OUTCOMES, undefined)),
        approveUrl: kit.url(`/revocations/${id}/approve`),
        rejectUrl: kit.url(`/revocations/${id}/reject`),
        reviewUrl: kit.url(`/revocations/${id}/review`),
        retryUrl: kit.url(`/revocations/${id}/retry`),
        approvedText: displayDateTime(request.approved_at, l),
        executedText: displayDateTime(request.executed_at, l),
        reviewedText: displayDateTime(request.reviewed_at, l),
        invalidityText: displayDateTime(request.invalidity_date, l),
      },
    };
  };

  router.get("/revocations/:id", read, async (req, res) => {
    const d = await detailPage(req, idParam(req));
    await respond(kit, req, res, "ra/revocation-detail", d.json, () => d.page, { title: { en: "Revocation request", ja: "失効申請" } });
  });

  const detailForm = async (req: Request, res: Parameters<typeof kit.formView>[0], id: number) => {
    if (!kit.wantsJson(req)) {
      const d = await detailPage(req, id);
      kit.formView(res, "ra/revocation-detail", { ...d.json, ...d.page });
    }
  };

  router.post("/revocations/:id/approve", ra, async (req, res) => {
    const id = idParam(req);
    if (confirmationPending(kit, req, res, {
      message: "Approve this revocation request? The IA revokes the certificate(s) within seconds; a revocation cannot be undone.",
      messageJa: "この失効申請を承認します。発行局が数秒以内に失効処理し、失効は取り消せません。よろしいですか。",
      action: "Approve and revoke", actionJa: "承認して失効する", cancelPath: `/revocations/${id}`,
    })) return;
    const { version } = parseInput(approveSchema, req.body ?? {});
    const row = await approveRevocationRequest(db, kit.operator(req), id, { expectedVersion: version });
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${id}`), {
      message: `Approved ${row.request_no}: the IA executes it within seconds.`, messageJa: `失効申請 ${row.request_no} を承認しました。発行局が数秒以内に失効処理します。`,
    });
  });

  router.post("/revocations/:id/reject", ra, async (req, res) => {
    const id = idParam(req);
    await detailForm(req, res, id);
    const { reason, version } = parseInput(rejectSchema, req.body ?? {});
    const row = await rejectRevocationRequest(db, kit.operator(req), id, reason, { expectedVersion: version });
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${id}`), {
      message: `Rejected ${row.request_no}.`, messageJa: `失効申請 ${row.request_no} を却下しました。`,
    });
  });

  router.post("/revocations/:id/review", ra, async (req, res) => {
    const id = idParam(req);
    await detailForm(req, res, id);
    const input = parseInput(reviewSchema, req.body ?? {});
    const row = await reviewEmergencyRevocation(db, kit.operator(req), id, input);
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${id}`), {
      message: `Review of ${row.request_no} recorded.`, messageJa: `緊急失効 ${row.request_no} の事後確認を記録しました。`,
    });
  });

  router.post("/revocations/:id/retry", approver, async (req, res) => {
    const id = idParam(req);
    await detailForm(req, res, id);
    const { note, version } = parseInput(retrySchema, req.body ?? {});
    const row = await retryRevocationRequest(db, kit.operator(req), id, { note, expectedVersion: version });
    done(kit, req, res, { request: await fresh(req, row) }, kit.url(`/revocations/${id}`), {
      message: `${row.request_no} is back in the IA's queue: it is executed within seconds.`,
      messageJa: `失効申請 ${row.request_no} を再処理に回しました。発行局が数秒以内に失効処理します。`,
    });
  });

  router.get("/audit/revocations", audit, async (req, res) => {
    const op = kit.operator(req);
    const [revocations, emergencies] = await Promise.all([listRecentRevocations(db, op), listRevocationRequests(db, op, { emergency: true })]);
    const entries = revocations.map((r) => ({
      caName: r.ca_name, serialHex: r.serial_hex, reason: r.reason, revokedAt: isoTime(r.revoked_at), invalidityDate: isoTime(r.invalidity_date),
      releasedAt: isoTime(r.released_at), actor: r.actor, cardLabel: r.card_label ?? null, profile: r.profile ?? null, caCertificate: r.subject_ca_id != null,
    }));
    await respond(kit, req, res, "ra/revocation-audit", { revocations: entries, emergencies: emergencies.map(revocationRequestJson) }, () => {
      const l = lang(req);
      return {
        entryRows: entries.map((e) => ({ ...e, revokedText: displayDateTime(e.revokedAt, l), invalidityText: displayDateTime(e.invalidityDate, l), releasedText: displayDateTime(e.releasedAt, l) })),
        emergencyRows: listPage(req, emergencies).map((r, i) => ({ ...r, reviewedText: displayDateTime(emergencies[i].reviewed_at, l) })),
      };
    }, { title: { en: "Revocation audit", ja: "失効の監査" } });
  });
}
