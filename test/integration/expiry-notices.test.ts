/**
 * Expiry notices and renewal (issue 4 item 4) on a real database, SoftHSM cards issued through the
 * pipeline, and a real SMTP server started here (smtp-server): one mail per card at 90/30/7 days,
 * never twice, Japanese with English, none for a revoked card or once a renewal is under way; a
 * refused mail is retried; the embedded default writes .eml files; the renewal form is prefilled
 * from the completed application and keeps the subscriber identifier.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { expiryNoticeMail, listExpiringCertificates, sendExpiryNotices, startExpiryNoticeLoop, thresholdFor, type NoticeRun } from "../../src/notices/expiry.ts";
import { createMailer, type Mailer } from "../../src/notices/mailer.ts";
import { prefillRenewal, submitRenewalApplication } from "../../src/notices/renewal.ts";
import { ConflictError, ForbiddenError } from "../../src/pipeline/errors.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { startTestSmtp, type ReceivedMail, type TestSmtp } from "../helpers/smtp.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "./revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let subs: IssuedSubscriber[];
let smtp: TestSmtp;
const inbox: ReceivedMail[] = [];
/** Recipients the server refuses (once each). */
const refuseOnce = new Set<string>();
let mailer: Mailer;
let notAfter: Date;
const DAY = 86_400_000;

beforeAll(async () => {
  t = await openTestIa("expiry-notices");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 3, { complete: true });
  smtp = await startTestSmtp({ onMessage: (m) => inbox.push(m), refuse: (address) => refuseOnce.delete(address) });
  mailer = createMailer({ ...t.ctx.cfg, mail: { smtpUrl: smtp.url, from: "HPKI テスト認証局 <ca@example.jp>" } });
  const min = (await t.ctx.db("certificates").where({ card_label: subs[0].cardLabel }).min({ n: "not_after" }))[0];
  notAfter = new Date(min.n as string);
});
afterAll(async () => {
  mailer?.close();
  await smtp?.close();
  await t?.cleanup();
});

const db = () => t.ctx.db;
const at = (daysBefore: number) => new Date(notAfter.getTime() - daysBefore * DAY);

/** Decodes RFC 2047 encoded words (B and Q) of a header value. */
function decodeWords(v: string): string {
  return v.replace(/\s*\r?\n\s+/g, " ").replace(/=\?UTF-8\?([BQ])\?([^?]*)\?=\s*(?==\?)?/gi, (_m, enc: string, data: string) =>
    enc.toUpperCase() === "B"
      ? Buffer.from(data, "base64").toString("utf8")
      : Buffer.from(data.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8"));
}

/** Subject, To and decoded text body of a raw single-part message. */
function parseMail(raw: string): { subject: string; to: string; body: string; headers: string } {
  const split = raw.indexOf("\n\n") >= 0 ? raw.indexOf("\n\n") : raw.indexOf("\r\n\r\n");
  const headers = raw.slice(0, split).replace(/\r\n/g, "\n");
  const header = (name: string) => decodeWords(new RegExp(`^${name}: (.*(?:\\n[ \\t].*)*)`, "mi").exec(headers)?.[1] ?? "");
  const cte = header("Content-Transfer-Encoding").toLowerCase();
  const rawBody = raw.slice(split).trim();
  const body = cte === "base64"
    ? Buffer.from(rawBody.replace(/\s+/g, ""), "base64").toString("utf8")
    : cte === "quoted-printable"
      ? Buffer.from(rawBody.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8")
      : rawBody;
  return { subject: header("Subject"), to: header("To"), body, headers };
}

describe("expiry notices", () => {
  it("picks the most urgent threshold reached", () => {
    expect([120, 91, 90, 31, 30, 20, 8, 7, 1].map(thresholdFor)).toEqual([null, null, 90, 90, 30, 30, 30, 7, 7]);
  });

  it("sends one mail per card 90 days before expiry over SMTP, in Japanese with English, and nothing twice", async () => {
    refuseOnce.add(subs[2].email);
    const run = await sendExpiryNotices(db(), mailer, { now: at(89.5) });
    expect(run.sent.map((n) => n.subjectKey).sort()).toEqual([`card:${subs[0].cardLabel}`, `card:${subs[1].cardLabel}`].sort());
    expect(run.failed).toEqual([expect.objectContaining({ subjectKey: `card:${subs[2].cardLabel}`, threshold: 90 })]);
    expect(inbox).toHaveLength(2);
    const mail = parseMail(inbox.find((m) => m.to.includes(subs[0].email))!.raw);
    expect(mail.subject).toBe("HPKI 証明書の有効期限のお知らせ（90日前） / HPKI certificate expiry notice (90 days)");
    expect(mail.to).toContain(subs[0].email);
    expect(mail.headers).toMatch(/^From: .*ca@example\.jp/m);
    expect(mail.body).toContain(`カード番号 ${subs[0].cardLabel}`);
    expect(mail.body).toContain("あと90日");
    expect(mail.body).toContain("署名用証明書");
    expect(mail.body).toContain("認証用（人）証明書");
    for (const c of subs[0].certificates) expect(mail.body).toContain(c.serialHex);
    expect(mail.body).toContain("The certificates on your HPKI card");
    expect(mail.body).not.toMatch(/PIN: \d/);
    expect(inbox[0].from).toBe("ca@example.jp");

    // Again the same day, and the next day: nothing new, except the retry of the refused one.
    const again = await sendExpiryNotices(db(), mailer, { now: at(89.4) });
    expect(again.sent.map((n) => n.subjectKey)).toEqual([`card:${subs[2].cardLabel}`]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(88) })).sent).toEqual([]);
    expect(inbox).toHaveLength(3);
    const rows = await db()("expiry_notices").orderBy("id");
    expect(rows.map((r) => [r.threshold_days, r.state])).toEqual([[90, "sent"], [90, "sent"], [90, "sent"]]);
    expect(rows.find((r) => r.subject_key === `card:${subs[2].cardLabel}`).attempts).toBe(2);
    const audit = await db()("audit_log").whereIn("action", ["expiry_notice.sent", "expiry_notice.failed"]).orderBy("seq").pluck("action");
    expect(audit).toEqual(["expiry_notice.sent", "expiry_notice.sent", "expiry_notice.failed", "expiry_notice.sent"]);
  });

  it("sends the 30-day notice once; none for a revoked card or once a renewal application exists", async () => {
    // subs[1]'s card is lost and revoked; subs[2] applies for renewal.
    for (const c of subs[1].certificates) await revokeCertificate(db(), { caName: c.caName, serialHex: c.serialHex, reason: "keyCompromise" }, { actor: "test", role: "ia" });
    const prefill = await prefillRenewal(db(), s.officer.operator, subs[2].applicationId);
    await submitRenewalApplication(db(), s.officer.operator, t.ctx.policies.hcRoles, subs[2].applicationId, { ...prefill.values, address: "東京都港区芝公園一丁目1番" });
    inbox.length = 0;
    const run = await sendExpiryNotices(db(), mailer, { now: at(25) });
    expect(run.sent.map((n) => [n.subjectKey, n.threshold])).toEqual([[`card:${subs[0].cardLabel}`, 30]]);
    expect(run.skipped).toBe(1); // the renewal in progress
    expect(inbox.map((m) => parseMail(m.raw).subject)).toEqual(["HPKI 証明書の有効期限のお知らせ（30日前） / HPKI certificate expiry notice (30 days)"]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(24) })).sent).toEqual([]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(6) })).sent.map((n) => n.threshold)).toEqual([7]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(1) })).sent).toEqual([]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(-1) })).due).toBe(0); // expired: nothing
  });

  it("lists expiring cards with the notices sent, for RA officers; LRA operators see their own association's only", async () => {
    const list = await listExpiringCertificates(db(), s.officer.operator, { now: at(6) });
    const mine = list.find((e) => e.cardLabel === subs[0].cardLabel)!;
    expect(mine.notices.map((n) => [n.threshold, n.state])).toEqual([[90, "sent"], [30, "sent"], [7, "sent"]]);
    expect(list.find((e) => e.cardLabel === subs[1].cardLabel)).toBeUndefined(); // revoked
    expect(list.find((e) => e.cardLabel === subs[2].cardLabel)!.renewalApplicationNo).toMatch(/^A\d{4}-/);
    expect(await listExpiringCertificates(db(), s.reviewer.operator, { now: at(6) })).toEqual([]);
    await expect(listExpiringCertificates(db(), s.ia.operator)).rejects.toBeInstanceOf(ForbiddenError);
  });

  it("writes .eml files under $HPKI_HOME/mail without SMTP", async () => {
    const files = createMailer({ ...t.ctx.cfg, mail: { smtpUrl: undefined, from: undefined } });
    const sub = subs[0];
    const list = await listExpiringCertificates(db(), s.officer.operator, { now: at(29) });
    const entry = list.find((e) => e.cardLabel === sub.cardLabel)!;
    const sent = await files.send({ to: sub.email, ...expiryNoticeMail(entry, 30) });
    expect(path.dirname(sent.file!)).toBe(path.join(t.home, "mail", "notices"));
    const mail = parseMail(fs.readFileSync(sent.file!, "utf8"));
    expect(mail.subject).toContain("HPKI 証明書の有効期限のお知らせ（30日前）");
    expect(mail.body).toContain(`${entry.nameKanji} 様`);
    expect(fs.statSync(sent.file!).mode & 0o777).toBe(0o640);
  });
});

describe("notice loop", () => {
  it("runs now and again after its interval until stopped", async () => {
    const runs: NoticeRun[] = [];
    const loop = startExpiryNoticeLoop(db(), mailer, { intervalMs: 50, onRun: (r) => runs.push(r) });
    while (runs.length < 2) await new Promise((r) => setTimeout(r, 20));
    await loop.stop();
    const after = runs.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(runs.length).toBe(after);
    expect(runs[0]).toMatchObject({ sent: [], failed: [] }); // nothing due today: the demo certificates run five years
  });
});

describe("renewal", () => {
  it("prefills the form from the completed application and keeps the subscriber identifier", async () => {
    const prev = await db()("applications").where({ id: subs[0].applicationId }).first();
    const p = await prefillRenewal(db(), s.officer2.operator, subs[0].applicationId);
    expect(p).toMatchObject({ renewalOf: subs[0].applicationId, previousApplicationNo: prev.application_no, subscriberId: prev.subscriber_id });
    expect(p.values).toMatchObject({ nameKanji: prev.name_kanji, email: prev.email, licenceNumber: prev.licence_number, requestSign: "on", requestAuth: "on" });
    expect(p.values.birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    await expect(prefillRenewal(db(), s.reviewer.operator, subs[0].applicationId)).rejects.toBeInstanceOf(ForbiddenError); // RA-desk subscriber
    await expect(prefillRenewal(db(), s.officer.operator, subs[2].applicationId)).rejects.toBeInstanceOf(ConflictError); // already renewing
    const renewal = await db()("applications").where({ renewal_of: subs[2].applicationId }).first();
    expect(renewal).toMatchObject({ state: "received", address: "東京都港区芝公園一丁目1番" });
    expect(renewal.licence_check.result).toBe("match");
  });
});
