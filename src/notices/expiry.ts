/**
 * Expiry notices (有効期限のお知らせ; issue 4 item 4, HPKI-PROFILE §9.4): an e-mail 90, 30 and 7
 * days before notAfter for every issued, unrevoked certificate whose application has an e-mail
 * address, so the subscriber renews in time (a renewal is a new application, prefilled from the
 * previous one: ./renewal.ts).
 *
 * - Certificates reach their application through the issuance request that made them
 *   (certificates.request_key "ir:<id>:<profile>" → issuance_requests → applications.email).
 * - The certificates on one card expire together and get one mail per card ("card:<label>");
 *   a certificate not on a card gets its own ("certificate:<ca>:<serial>").
 * - A notice goes out for the most urgent threshold reached (a certificate first seen 20 days
 *   before expiry gets the 30-day notice, not also the 90-day one), once: expiry_notices is unique
 *   per (subject, threshold), claimed before the mail is handed to the transport (so two runs or
 *   two processes never both send it); a failed send is retried by the next run.
 * - No notice once a renewal application is in progress, or for a certificate revoked or on hold.
 *
 * A run that stops between its claim and recording the outcome (crash, kill, lost database) leaves
 * the notice in "sending". The claim is a lease: claimed_at (database clock) + NOTICE_LEASE_MS
 * (10 min). Once the lease has run out a later run takes the notice again (audited
 * "expiry_notice.retaken") and sends it. The lease is far longer than one send may take (the
 * mailer's SMTP timeouts end a send within about two minutes), so a notice a live run is sending
 * is never taken twice. The trade-off — at least once rather than at most once: if the stopped run
 * had already handed the mail to the SMTP server, the subscriber gets it twice. Never getting a
 * notice is the worse outcome (a card expires unrenewed); a second identical mail is a nuisance.
 * Both copies carry the same Message-ID, fixed when the notice is first claimed
 * (`<expiry-<days>d-<hash of the subject and threshold>@<sender's domain>>`), so mail systems and
 * clients that de-duplicate by Message-ID show one, and a duplicate can be recognised as such.
 * Outcomes are recorded only by the run holding the current claim (its attempt number is the
 * fence), so a run that outlived its lease cannot mark "failed" a notice another run has sent.
 *
 * sendExpiryNotices is what a daily scheduler (or `hpki notices send`) calls.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit, type AuditEvent } from "../audit/log.ts";
import { ForbiddenError } from "../pipeline/errors.ts";
import { isLraRole, type Operator } from "../pipeline/operator.ts";
import { startPollLoop } from "../pipeline/poll-loop.ts";
import type { Mailer, SentMail } from "./mailer.ts";

/** Days before notAfter at which a notice is sent, most distant first. */
export const EXPIRY_THRESHOLDS = [90, 30, 7] as const;
/** How long a claimed notice may stay "sending" before another run takes it again (see the module comment). */
export const NOTICE_LEASE_MS = 10 * 60_000;
const DAY_MS = 86_400_000;
/** Application states that end an application without a certificate (a renewal in them does not count). */
const DEAD_STATES = ["lra_rejected", "ra_rejected", "withdrawn"];

/** Names of the certificate profiles for subscribers and operators (policies/profiles). */
export const CERTIFICATE_PROFILE_NAMES: Record<string, { ja: string; en: string }> = {
  sign: { ja: "署名用証明書", en: "signature certificate" },
  "auth-person": { ja: "認証用（人）証明書", en: "authentication certificate" },
  "auth-org": { ja: "認証用（組織）証明書", en: "organization authentication certificate" },
};

/** One certificate a notice is about. */
export interface NoticeCertificate {
  caName: string;
  serialHex: string;
  profile: string;
  notAfter: Date;
}

/** The certificates of one card (or one certificate) nearing expiry, with their subscriber. */
export interface ExpiringSubject {
  subjectKey: string;
  cardLabel: string | null;
  /** The earliest notAfter of the certificates. */
  notAfter: Date;
  /** Whole days left (rounded up) at `now`. */
  daysLeft: number;
  /** The threshold reached (90, 30 or 7), or null when more than 90 days are left. */
  threshold: number | null;
  certificates: NoticeCertificate[];
  applicationId: number;
  applicationNo: string;
  applicationState: string;
  email: string;
  nameKanji: string;
  nameLatin: string;
  lraId: number | null;
  /** Where the subscriber applied: the regional association's name, or null for the RA desk. */
  lraName: string | null;
  /** The renewal application in progress or done, if any. */
  renewalApplicationNo: string | null;
}

/**
 * Certificates expiring after `now` and within `withinDays`, grouped per card, soonest first.
 * Only issued certificates with no active revocation (a hold counts), linked to an application.
 */
export async function findExpiringSubjects(db: Knex, now: Date, withinDays: number = EXPIRY_THRESHOLDS[0], lraId?: number): Promise<ExpiringSubject[]> {
  const q = db("certificates as c")
    .join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .joinRaw(`JOIN issuance_requests AS ir ON c.request_key = 'ir:' || ir.id::text || ':' || c.profile`)
    .join("applications as a", "a.id", "ir.application_id")
    .leftJoin("lras as l", "l.id", "a.lra_id")
    .where("c.status", "issued")
    .where("c.not_after", ">", now)
    .where("c.not_after", "<=", new Date(now.getTime() + withinDays * DAY_MS))
    .whereNotExists(db("revocations as r").whereRaw("r.certificate_id = c.id").whereNull("r.released_at").select(db.raw("1")))
    .orderBy([{ column: "c.not_after" }, { column: "c.id" }])
    .select(
      "c.serial_hex", "c.profile", "c.not_after", "c.card_label", "ca.name as ca_name",
      "a.id as application_id", "a.application_no", "a.state as application_state", "a.email", "a.name_kanji", "a.name_latin", "a.lra_id", "l.name as lra_name",
      db("applications as n").whereRaw("n.renewal_of = a.id").whereNotIn("n.state", DEAD_STATES).orderBy("n.id", "desc").limit(1).select("n.application_no").as("renewal_no"),
    );
  if (lraId !== undefined) q.where("a.lra_id", lraId);
  const groups = new Map<string, ExpiringSubject>();
  for (const r of await q) {
    const key = r.card_label ? `card:${r.card_label}` : `certificate:${r.ca_name}:${r.serial_hex}`;
    const cert: NoticeCertificate = { caName: r.ca_name, serialHex: r.serial_hex, profile: r.profile, notAfter: new Date(r.not_after) };
    const g = groups.get(key);
    if (g) {
      g.certificates.push(cert);
      continue;
    }
    const daysLeft = Math.ceil((cert.notAfter.getTime() - now.getTime()) / DAY_MS);
    groups.set(key, {
      subjectKey: key, cardLabel: r.card_label ?? null, notAfter: cert.notAfter, daysLeft, threshold: thresholdFor(daysLeft),
      certificates: [cert], applicationId: Number(r.application_id), applicationNo: r.application_no, applicationState: r.application_state,
      email: r.email, nameKanji: r.name_kanji, nameLatin: r.name_latin, lraId: r.lra_id == null ? null : Number(r.lra_id),
      lraName: r.lra_name ?? null, renewalApplicationNo: r.renewal_no ?? null,
    });
  }
  return [...groups.values()];
}

/** The most urgent threshold reached with `daysLeft` days to go (30 for 20 days), or null. */
export function thresholdFor(daysLeft: number): number | null {
  const reached = EXPIRY_THRESHOLDS.filter((t) => daysLeft <= t);
  return reached.length ? reached[reached.length - 1] : null;
}

function jstDate(d: Date, lang: "ja" | "en"): string {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(d).map((x) => [x.type, x.value]));
  return lang === "ja" ? `${p.year}年${Number(p.month)}月${Number(p.day)}日` : `${p.year}-${p.month}-${p.day}`;
}

/**
 * The notice mail of `s` at threshold `threshold` days: Japanese first, then English. Names the
 * card, the certificates (kind, CA, serial) and the expiry date; tells where to apply for renewal.
 * Carries no secret (no PIN, no link with a token).
 */
export function expiryNoticeMail(s: ExpiringSubject, threshold: number): { subject: string; text: string } {
  const desk = s.lraName ?? "HPKI 認証局 登録局";
  const deskEn = s.lraName ? `${s.lraName} (your regional association)` : "the HPKI Registration Authority";
  const lines = (lang: "ja" | "en") => s.certificates.map((c) => {
    const kind = CERTIFICATE_PROFILE_NAMES[c.profile]?.[lang] ?? c.profile;
    return lang === "ja" ? `  ・${kind}（発行CA: ${c.caName}、シリアル番号: ${c.serialHex}）` : `  - ${kind} (issuer ${c.caName}, serial ${c.serialHex})`;
  });
  const subject = `HPKI 証明書の有効期限のお知らせ（${threshold}日前） / HPKI certificate expiry notice (${threshold} days)`;
  const text = [
    `${s.nameKanji} 様`,
    "",
    s.cardLabel
      ? `お使いの HPKI カード（カード番号 ${s.cardLabel}）の証明書の有効期限が近づいています。`
      : "お使いの HPKI 証明書の有効期限が近づいています。",
    "",
    `  有効期限: ${jstDate(s.notAfter, "ja")}（あと${s.daysLeft}日）`,
    ...lines("ja"),
    "",
    "有効期限を過ぎると、この証明書による電子署名やログインはできなくなります。",
    `引き続きご利用になる場合は、お申込みいただいた窓口（${desk}）で更新のお申込みをしてください。`,
    "更新では新しい鍵と証明書を発行します。本人確認書類と医療資格を確認しますので、必要な書類をご用意ください。",
    "",
    "このメールは送信専用です。PIN やパスワードをメールでお尋ねすることはありません。",
    `（申込番号: ${s.applicationNo}）`,
    "",
    "------------------------------------------------------------",
    "",
    `Dear ${s.nameLatin},`,
    "",
    s.cardLabel
      ? `The certificates on your HPKI card (card ${s.cardLabel}) expire on ${jstDate(s.notAfter, "en")} (in ${s.daysLeft} days):`
      : `Your HPKI certificate expires on ${jstDate(s.notAfter, "en")} (in ${s.daysLeft} days):`,
    ...lines("en"),
    "",
    "After that date they can no longer be used to sign or to log in.",
    `To keep using HPKI, apply for renewal at ${deskEn}. A renewal issues a new key and certificate`,
    "after your identity and licence are checked again.",
    "",
    "This message is sent automatically; we never ask for your PIN or password by e-mail.",
    `(application ${s.applicationNo})`,
    "",
  ].join("\n");
  return { subject, text };
}

export interface SentNotice {
  subjectKey: string;
  threshold: number;
  applicationNo: string;
  to: string;
  messageId: string;
  file?: string;
  /** Taken again from a run that stopped while sending it: the subscriber may get it twice (same Message-ID). */
  retaken: boolean;
}

export interface NoticeRun {
  /** Subjects with a threshold reached this run looked at. */
  due: number;
  sent: SentNotice[];
  failed: { subjectKey: string; threshold: number; error: string }[];
  /** Already sent (or being sent by another run), or skipped because a renewal is in progress. */
  skipped: number;
}

/** The stable Message-ID of the notice of `subjectKey` at `threshold` days, in the sender's `domain`. */
export function noticeMessageId(subjectKey: string, threshold: number, domain: string): string {
  const h = createHash("sha256").update(`${subjectKey}\n${threshold}`).digest("hex").slice(0, 32);
  return `<expiry-${threshold}d-${h}@${domain}>`;
}

interface Claim {
  id: number;
  /** The attempt number this claim made: the fence for recording the outcome. */
  attempt: number;
  messageId: string;
  retaken: boolean;
}

/**
 * Claims the notice of `s` at its threshold in one transaction: a new row, or an existing one that
 * failed or whose "sending" lease (`leaseMs`, database clock) has run out — the latter audited as
 * "expiry_notice.retaken". Null when it is sent, or being sent under a live lease.
 */
async function claimNotice(
  db: Knex,
  s: ExpiringSubject & { threshold: number },
  certificates: { caName: string; serialHex: string; profile: string }[],
  o: { domain: string; leaseMs: number; audit: Omit<AuditEvent, "action"> },
): Promise<Claim | null> {
  const { leaseMs, audit } = o;
  return db.transaction(async (trx) => {
    const key = { subject_key: s.subjectKey, threshold_days: s.threshold };
    const messageId = noticeMessageId(s.subjectKey, s.threshold, o.domain);
    const [created] = await trx("expiry_notices")
      .insert({
        ...key, not_after: s.notAfter, application_id: s.applicationId, email: s.email, certificates: JSON.stringify(certificates),
        state: "sending", attempts: 1, claimed_at: trx.fn.now(), message_id: messageId,
      })
      .onConflict(["subject_key", "threshold_days"]).ignore()
      .returning(["id"]);
    if (created) return { id: Number(created.id), attempt: 1, messageId, retaken: false };
    // Another run's claim, committed (an insert racing ours waited for its commit above).
    const row = await trx("expiry_notices").where(key).forUpdate()
      .first("id", "state", "attempts", "message_id", "claimed_at", trx.raw("claimed_at < now() - make_interval(secs => ?) AS lease_over", [leaseMs / 1000]));
    if (!row || row.state === "sent" || (row.state === "sending" && !row.lease_over)) return null;
    const attempt = Number(row.attempts) + 1;
    const id = Number(row.id);
    const kept = (row.message_id as string | null) ?? messageId;
    await trx("expiry_notices").where({ id }).update({ state: "sending", attempts: attempt, last_error: null, email: s.email, claimed_at: trx.fn.now(), message_id: kept });
    const retaken = row.state === "sending";
    if (retaken) {
      await appendAudit(trx, [{
        ...audit, action: "expiry_notice.retaken",
        details: { ...audit.details, claimedAt: new Date(row.claimed_at).toISOString(), attempt, messageId: kept, leaseMinutes: leaseMs / 60_000 },
      }]);
    }
    return { id, attempt, messageId: kept, retaken };
  });
}

/**
 * Sends the expiry notices due at `now` (default: the current time) through `mailer`: one per
 * (card or certificate, threshold), never twice while its claim is alive (see the module comment:
 * a notice left "sending" by a stopped run is taken again after `leaseMs`, default
 * NOTICE_LEASE_MS). Each sent notice is audited ("expiry_notice.sent", with its Message-ID) by `by`
 * (default system:expiry-notices). A failed send is recorded (state failed, audited
 * "expiry_notice.failed") and retried by the next run; the other notices go on.
 */
export async function sendExpiryNotices(
  db: Knex,
  mailer: Mailer,
  opts: { now?: Date; by?: Pick<AuditEvent, "actor" | "role">; leaseMs?: number } = {},
): Promise<NoticeRun> {
  const now = opts.now ?? new Date();
  const by = opts.by ?? { actor: "system:expiry-notices", role: "ra" };
  const run: NoticeRun = { due: 0, sent: [], failed: [], skipped: 0 };
  for (const s of await findExpiringSubjects(db, now)) {
    if (s.threshold === null) continue;
    const threshold = s.threshold;
    run.due++;
    if (s.renewalApplicationNo || !s.email) {
      run.skipped++;
      continue;
    }
    const certificates = s.certificates.map((c) => ({ caName: c.caName, serialHex: c.serialHex, profile: c.profile }));
    const audit = { ...by, objectType: "expiry_notice", objectId: `${s.subjectKey}:${threshold}`, details: { application: s.applicationNo, threshold, certificates } };
    const claim = await claimNotice(db, { ...s, threshold }, certificates, { domain: mailer.domain, leaseMs: opts.leaseMs ?? NOTICE_LEASE_MS, audit });
    if (!claim) {
      run.skipped++;
      continue;
    }
    // Only the holder of the current claim records the outcome (a run that outlived its lease does not).
    const mine = (trx: Knex.Transaction) => trx("expiry_notices").where({ id: claim.id, attempts: claim.attempt, state: "sending" });
    let sent: SentMail;
    try {
      sent = await mailer.send({ to: s.email, ...expiryNoticeMail(s, threshold), messageId: claim.messageId });
    } catch (e) {
      const error = (e as Error).message.slice(0, 500);
      await db.transaction(async (trx) => {
        await mine(trx).update({ state: "failed", last_error: error });
        await appendAudit(trx, [{ ...audit, action: "expiry_notice.failed", details: { ...audit.details, error, attempt: claim.attempt } }]);
      });
      run.failed.push({ subjectKey: s.subjectKey, threshold, error });
      continue;
    }
    // Handed over: should recording it fail, the run stops here and the notice stays "sending"
    // until its lease runs out — never "failed", which would send it again at once.
    await db.transaction(async (trx) => {
      await mine(trx).update({ state: "sent", message_id: sent.messageId, sent_at: trx.fn.now() });
      await appendAudit(trx, [{ ...audit, action: "expiry_notice.sent", details: { ...audit.details, messageId: sent.messageId, attempt: claim.attempt, retaken: claim.retaken || undefined } }]);
    });
    run.sent.push({ subjectKey: s.subjectKey, threshold, applicationNo: s.applicationNo, to: s.email, messageId: sent.messageId, file: sent.file, retaken: claim.retaken });
  }
  return run;
}

/** A row of the consoles' expiry list: an expiring card/certificate and the notices sent for it. */
export interface ExpiryListEntry extends ExpiringSubject {
  notices: { threshold: number; state: string; sentAt: Date | null }[];
}

const EXPIRY_READERS = new Set(["lra_reviewer", "lra_manager", "ra_officer", "ra_approver", "auditor", "admin"]);

/**
 * What the LRA and RA consoles list: certificates expiring within `withinDays` (default 90) of
 * `now`, soonest first, each with the notices sent; an LRA operator sees its own association's.
 * @throws ForbiddenError for other roles.
 */
export async function listExpiringCertificates(db: Knex, op: Operator, opts: { now?: Date; withinDays?: number } = {}): Promise<ExpiryListEntry[]> {
  if (!EXPIRY_READERS.has(op.role)) throw new ForbiddenError(`role ${op.role} may not list expiring certificates`, "有効期限の一覧を閲覧する権限がありません");
  const subjects = await findExpiringSubjects(db, opts.now ?? new Date(), opts.withinDays ?? EXPIRY_THRESHOLDS[0], isLraRole(op.role) ? (op.lraId ?? -1) : undefined);
  const notices = subjects.length
    ? await db("expiry_notices").whereIn("subject_key", subjects.map((s) => s.subjectKey)).orderBy("threshold_days", "desc").select("subject_key", "threshold_days", "state", "sent_at")
    : [];
  return subjects.map((s) => ({
    ...s,
    notices: notices.filter((n) => n.subject_key === s.subjectKey)
      .map((n) => ({ threshold: Number(n.threshold_days), state: String(n.state), sentAt: n.sent_at ? new Date(n.sent_at) : null })),
  }));
}

/**
 * Starts the in-process notice loop a role server (RA or IA) can run: sendExpiryNotices now and
 * then every `intervalMs` (default 6 h — each notice goes out once whatever the frequency, so a
 * restart or a missed day only delays a notice until the next run). `stop()` ends the loop and
 * resolves after a run in progress.
 */
export function startExpiryNoticeLoop(
  db: Knex,
  mailer: Mailer,
  opts: { intervalMs?: number; onRun?: (r: NoticeRun) => void; onError?: (e: unknown) => void } = {},
): { stop(): Promise<void> } {
  return startPollLoop(async () => opts.onRun?.(await sendExpiryNotices(db, mailer)), opts.intervalMs ?? 6 * 3600_000, opts.onError);
}
