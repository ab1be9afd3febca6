/**
 * Expiry notices left "sending" by a run that stopped, on a real database, SoftHSM cards issued
 * through the pipeline and a real SMTP server (smtp-server) behind the real mailer: the notice is
 * not taken again while its 10-minute lease runs (database clock — the test moves the claim back
 * in time instead of waiting), then it is, once, audited; a mail the stopped run had already handed
 * to the server arrives twice with the same Message-ID; a run that outlived its lease cannot undo
 * the notice another run sent. On Postgres also with `hpki notices send` killed (SIGKILL) while
 * the SMTP server takes its mail.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NOTICE_LEASE_MS, noticeMessageId, sendExpiryNotices } from "../../src/notices/expiry.ts";
import { createMailer, type Mailer, type OutgoingMail, type SentMail } from "../../src/notices/mailer.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { startTestSmtp, type TestSmtp } from "../helpers/smtp.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber } from "./revocation-workflow-fixture.ts";

interface Received {
  to: string[];
  messageId: string;
  subject: string;
}

let t: TestIa;
let subs: IssuedSubscriber[];
let smtp: TestSmtp;
let smtpUrl: string;
const inbox: Received[] = [];
/** Runs once when the server has taken the next message, before it answers (a crash there). */
let onMessage: (() => void) | undefined;
let mailer: Mailer;
let notAfter: Date;
const DAY = 86_400_000;
const FROM = "HPKI テスト認証局 <ca@example.jp>";

beforeAll(async () => {
  t = await openTestIa("expiry-lease");
  const s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 3);
  smtp = await startTestSmtp({
    onMessage(m) {
      const headers = m.raw.split(/\r?\n\r?\n/)[0];
      inbox.push({ to: m.to, messageId: /^Message-ID: *(<[^>]+>)/im.exec(headers)?.[1] ?? "", subject: /^Subject: *(.*)$/im.exec(headers)?.[1] ?? "" });
      const hook = onMessage;
      onMessage = undefined;
      hook?.();
    },
  });
  smtpUrl = smtp.url;
  mailer = createMailer({ ...t.ctx.cfg, mail: { smtpUrl, from: FROM } });
  const min = (await t.ctx.db("certificates").where({ card_label: subs[0].cardLabel }).min({ n: "not_after" }))[0];
  notAfter = new Date(min.n as string);
}, 240_000);
afterAll(async () => {
  mailer?.close();
  await smtp?.close();
  await t?.cleanup();
});

const db = () => t.ctx.db;
const at = (daysBefore: number) => new Date(notAfter.getTime() - daysBefore * DAY);
const emailOf = (subjectKey: string) => subs.find((x) => `card:${x.cardLabel}` === subjectKey)!.email;

/** The notice a stopped run left "sending" at `threshold` days (there is exactly one). */
async function stuck(threshold: number): Promise<{ id: number; subject_key: string; message_id: string; attempts: number; state: string }> {
  const rows = await db()("expiry_notices").where({ threshold_days: threshold, state: "sending" }).select("id", "subject_key", "message_id", "attempts", "state");
  expect(rows).toHaveLength(1);
  return rows[0];
}

/** Moves the claim of notice `id` `minutes` back: as if the database clock had run on. */
const ageClaim = (id: number, minutes: number) => db()("expiry_notices").where({ id }).update({ claimed_at: db().raw(`claimed_at - make_interval(mins => ?)`, [minutes]) });

/**
 * A mailer whose process stops: `send` first waits for `go` (resolved: goes on; rejected: fails
 * with that error) — until then the run hangs, as one whose process died — and hands the mail to
 * the real SMTP mailer only when `afterHandover`; `reached` resolves when a send started (or the
 * mail was handed over, with afterHandover: the point where the process dies).
 */
function stoppingMailer(o: { afterHandover?: boolean; go?: Promise<void> }): { mailer: Mailer; reached: Promise<void> } {
  let reach!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  return {
    reached,
    mailer: {
      describe: mailer.describe,
      domain: mailer.domain,
      close() {},
      async send(m: OutgoingMail): Promise<SentMail> {
        if (o.afterHandover) {
          await mailer.send(m);
          reach();
          return new Promise<never>(() => {}); // the process is gone: its run records nothing
        }
        reach();
        await (o.go ?? new Promise<never>(() => {}));
        return mailer.send(m);
      },
    },
  };
}

describe("expiry notices left sending", () => {
  it("a run that stopped after the SMTP server took the mail: not taken again within the lease, then sent again with the same Message-ID, audited", async () => {
    expect(NOTICE_LEASE_MS).toBe(10 * 60_000);
    const stopping = stoppingMailer({ afterHandover: true });
    void sendExpiryNotices(db(), stopping.mailer, { now: at(89.5) });
    await stopping.reached;
    const row = await stuck(90);
    const to = emailOf(row.subject_key);
    expect(row.message_id).toBe(noticeMessageId(row.subject_key, 90, "example.jp"));
    expect(inbox.map((m) => [m.to[0], m.messageId])).toEqual([[to, row.message_id]]);

    // The next run sends the other cards' notices and leaves this one alone: its lease runs.
    const next = await sendExpiryNotices(db(), mailer, { now: at(89.4) });
    expect(next.sent.map((n) => n.subjectKey).sort()).toEqual(subs.map((x) => `card:${x.cardLabel}`).filter((k) => k !== row.subject_key).sort());
    expect(next.skipped).toBe(1);
    await ageClaim(row.id, 9);
    expect((await sendExpiryNotices(db(), mailer, { now: at(89.3) })).sent).toEqual([]);
    expect(await stuck(90)).toMatchObject({ id: row.id, attempts: 1 });

    await ageClaim(row.id, 2); // 11 minutes: the lease has run out
    const retaken = await sendExpiryNotices(db(), mailer, { now: at(89.2) });
    expect(retaken.sent).toEqual([expect.objectContaining({ subjectKey: row.subject_key, threshold: 90, retaken: true, messageId: row.message_id })]);
    expect((await sendExpiryNotices(db(), mailer, { now: at(89) })).sent).toEqual([]);

    const mine = inbox.filter((m) => m.to.includes(to));
    expect(mine).toHaveLength(2); // the duplicate the trade-off accepts …
    expect(new Set(mine.map((m) => m.messageId))).toEqual(new Set([row.message_id])); // … recognisable as one message
    expect(new Set(inbox.map((m) => m.messageId)).size).toBe(3); // the other cards' notices have their own
    expect(await db()("expiry_notices").where({ id: row.id }).first("state", "attempts", "message_id")).toMatchObject({ state: "sent", attempts: 2, message_id: row.message_id });
    const audit = await db()("audit_log").where({ object_id: `${row.subject_key}:90` }).orderBy("seq").select("action", "details");
    expect(audit.map((a) => a.action)).toEqual(["expiry_notice.retaken", "expiry_notice.sent"]);
    const details = typeof audit[0].details === "string" ? JSON.parse(audit[0].details) : audit[0].details;
    expect(details).toMatchObject({ attempt: 2, messageId: row.message_id, leaseMinutes: 10, claimedAt: expect.any(String) });
  });

  it("a run that stopped before sending loses no notice; when it comes back after its lease it cannot undo the notice another run sent", async () => {
    inbox.length = 0;
    let fail!: (e: Error) => void;
    const go = new Promise<void>((_resolve, reject) => (fail = reject));
    go.catch(() => {});
    const slow = stoppingMailer({ go });
    const slowRun = sendExpiryNotices(db(), slow.mailer, { now: at(25) });
    await slow.reached;
    const row = await stuck(30);
    expect((await sendExpiryNotices(db(), mailer, { now: at(25) })).sent).toHaveLength(2);
    expect(inbox.some((m) => m.to.includes(emailOf(row.subject_key)))).toBe(false);

    await ageClaim(row.id, 11);
    const retaken = await sendExpiryNotices(db(), mailer, { now: at(24) });
    expect(retaken.sent).toEqual([expect.objectContaining({ subjectKey: row.subject_key, threshold: 30, retaken: true })]);
    expect(inbox.filter((m) => m.to.includes(emailOf(row.subject_key)))).toHaveLength(1);

    // The first run wakes up and its send fails: recorded in the audit log, but the notice stays sent.
    fail(new Error("connection timed out"));
    const late = await slowRun;
    expect(late.failed).toEqual([expect.objectContaining({ subjectKey: row.subject_key, threshold: 30 })]);
    expect(await db()("expiry_notices").where({ id: row.id }).first("state", "attempts")).toMatchObject({ state: "sent", attempts: 2 });
    expect((await sendExpiryNotices(db(), mailer, { now: at(23) })).sent).toEqual([]);
    expect(inbox.filter((m) => m.to.includes(emailOf(row.subject_key)))).toHaveLength(1);
    const actions = await db()("audit_log").where({ object_id: `${row.subject_key}:30` }).orderBy("seq").pluck("action");
    expect(actions).toEqual(["expiry_notice.retaken", "expiry_notice.sent", "expiry_notice.failed"]);
  });

  it.runIf(!!process.env.DATABASE_URL)("hpki notices send killed while the SMTP server takes its mail: the next runs skip it, then send it again once, same Message-ID (Postgres)", async () => {
    inbox.length = 0;
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: t.home, DATABASE_URL: t.databaseUrl, HPKI_SMTP_URL: smtpUrl, HPKI_MAIL_FROM: FROM };
    const bin = path.resolve(import.meta.dirname, "../../bin/hpki.js");
    const args = (days: number) => [bin, "notices", "send", "--now", at(days).toISOString(), "--json"];
    const child = spawn(process.execPath, args(6), { env, stdio: "ignore" });
    onMessage = () => child.kill("SIGKILL");
    const exit = await new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    expect(exit).toBe("SIGKILL");
    const row = await stuck(7);
    expect(inbox.map((m) => m.messageId)).toEqual([row.message_id]);

    // Not spawnSync: the SMTP server answering the child lives in this process's event loop.
    const hpki = async (days: number) => {
      const c = spawn(process.execPath, args(days), { env });
      let out = "";
      let err = "";
      c.stdout.on("data", (d: Buffer) => (out += d.toString()));
      c.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => c.on("close", resolve));
      expect(code, err + out).toBe(0);
      return JSON.parse(out.trim().split("\n").at(-1)!);
    };
    const next = await hpki(6);
    expect(next.sent.map((n: { subjectKey: string }) => n.subjectKey)).not.toContain(row.subject_key);
    expect(next.sent).toHaveLength(2);
    await ageClaim(row.id, 11);
    const again = await hpki(5);
    expect(again.sent).toEqual([expect.objectContaining({ subjectKey: row.subject_key, threshold: 7, retaken: true, messageId: row.message_id })]);
    expect((await hpki(4)).sent).toEqual([]);
    const mine = inbox.filter((m) => m.to.includes(emailOf(row.subject_key)));
    expect(mine.map((m) => m.messageId)).toEqual([row.message_id, row.message_id]);
  });
});
