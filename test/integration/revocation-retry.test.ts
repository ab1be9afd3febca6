/**
 * Retrying a revocation request the IA failed to execute, on real parts: subscribers' cards issued
 * through the pipeline onto SoftHSM cards, the RA and LRA consoles over HTTP, the IA worker
 * (executeApprovedRevocationRequests, what the IA server's loop and `hpki revocation-requests
 * execute` run) — and a real failure: the IA's database account lacks write access to the
 * revocations table (a least-privilege grant gone wrong), so the worker's revocation is refused by
 * the database, nothing is revoked and the request is failed with the database's error. The RA
 * console shows the error; only an RA approver may retry (officer, auditor, LRA refused); a retry
 * while the cause remains fails again; once the privilege is granted, the retry is executed and the
 * certificates are revoked. A request filed since for the same target blocks the retry (409).
 * `hpki revocation-requests retry` (a child process signing the approver in) needs a database two
 * processes share: Postgres (DATABASE_URL) only.
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeApprovedRevocationRequests } from "../../src/ia/revocation-worker.ts";
import { approveRevocationRequest, createRevocationRequest, retryRevocationRequest } from "../../src/pipeline/revocation-requests.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "./revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let subs: IssuedSubscriber[];
let server: StartedServer;
const clients = {} as Record<"officer" | "approver" | "approver2" | "auditor" | "reviewer", ConsoleClient>;
/** The IA's database account in this test: every table but revocations writable until granted. */
const IA_ROLE = `hpki_ia_${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  t = await openTestIa("revocation-retry");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 4);
  server = await startServer({ cfg: t.ctx.cfg, db: t.ctx.db, roles: ["ra", "lra"], port: 0 });
  for (const [k, op, base] of [["officer", s.officer, "/ra"], ["approver", s.approver, "/ra"], ["approver2", s.approver2, "/ra"], ["auditor", s.auditor, "/ra"], ["reviewer", s.reviewer, "/lra"]] as const) {
    clients[k] = new ConsoleClient(server.url, base);
    await clients[k].login(op);
  }
  const db = t.ctx.db;
  await db.raw(`CREATE ROLE ${IA_ROLE} NOLOGIN`);
  await db.raw(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${IA_ROLE}`);
  await db.raw(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${IA_ROLE}`);
  await db.raw(`REVOKE INSERT, UPDATE ON revocations FROM ${IA_ROLE}`);
}, 240_000);

afterAll(async () => {
  await server?.close();
  if (t) {
    // Roles are the cluster's: drop ours (its grants first) before the database goes.
    await t.ctx.db.raw(`DROP OWNED BY ${IA_ROLE}`).catch(() => {});
    await t.ctx.db.raw(`DROP ROLE IF EXISTS ${IA_ROLE}`).catch(() => {});
  }
  await t?.cleanup();
});

/**
 * One run of the IA revocation worker connected as the IA's database account: its own
 * connections SET ROLE (as a login of that account would be).
 */
async function runIaWorker(): Promise<Awaited<ReturnType<typeof executeApprovedRevocationRequests>>> {
  const iaDb: Knex = knexFactory({
    client: "pg",
    connection: t.databaseUrl,
    pool: { min: 0, max: 2, afterCreate: (conn: { query(sql: string, cb: (e: Error | null) => void): void }, done: (e: Error | null, c: unknown) => void) => conn.query(`SET ROLE ${IA_ROLE}`, (e) => done(e, conn)) },
  });
  try {
    return await executeApprovedRevocationRequests({ db: iaDb });
  } finally {
    await iaDb.destroy();
  }
}

const grantRevocations = () => t.ctx.db.raw(`GRANT INSERT, UPDATE ON revocations TO ${IA_ROLE}`);
const revokeRevocations = () => t.ctx.db.raw(`REVOKE INSERT, UPDATE ON revocations FROM ${IA_ROLE}`);
const activeRevocations = (sub: IssuedSubscriber) =>
  t.ctx.db("revocations").whereIn("serial_hex", sub.certificates.map((c) => c.serialHex)).whereNull("released_at").select("serial_hex", "reason");
const auditOf = (requestNo: string) => t.ctx.db("audit_log").where({ object_type: "revocation_request", object_id: requestNo }).orderBy("seq").select("action", "actor", "details")
  .then((rows) => rows.map((r) => ({ ...r, details: typeof r.details === "string" ? JSON.parse(r.details) : r.details })));

/** A card-wide request filed by the officer and approved by the approver, over the RA console. */
async function approvedRequest(sub: IssuedSubscriber): Promise<{ id: number; requestNo: string }> {
  const created = await clients.officer.postJson("/revocations", {
    targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "keyCompromise", grounds: "カード紛失の届出を受領",
  });
  expect(created.status, created.text).toBe(201);
  const { id, requestNo } = created.json().request;
  const approved = await clients.approver.postJson(`/revocations/${id}/approve`, {});
  expect(approved.status, approved.text).toBe(200);
  return { id, requestNo };
}

describe("retrying a failed revocation request", () => {
  it("a request the IA cannot execute is failed with the database's error, nothing revoked, and the RA console shows why", async () => {
    const { id, requestNo } = await approvedRequest(subs[0]);
    const run = await runIaWorker();
    expect(run.executed).toEqual([]);
    expect(run.failed).toEqual([expect.objectContaining({ requestId: id, requestNo, error: expect.stringContaining("permission denied for table revocations") })]);
    expect(await activeRevocations(subs[0])).toEqual([]);

    const json = (await clients.approver.getJson(`/revocations/${id}`)).json();
    expect(json.request).toMatchObject({ state: "failed", stateJa: "処理失敗", attempts: 1, lastError: expect.stringContaining("permission denied for table revocations") });
    expect(json.actions).toContain("retry");
    expect((await clients.officer.getJson(`/revocations/${id}`)).json().actions).not.toContain("retry");

    const page = await clients.approver.get(`/revocations/${id}`, { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("発行局での失効処理が失敗しました");
    expect(page.text).toContain("permission denied for table revocations");
    expect(page.text).toMatch(/action="\/ra\/revocations\/\d+\/retry"/);
    // The officer reads the reason too, with no retry form.
    const officerPage = await clients.officer.get(`/revocations/${id}`, { accept: "html" });
    expect(officerPage.text).toContain("permission denied for table revocations");
    expect(officerPage.text).not.toContain("/retry");
    const list = await clients.approver.get("/revocations?state=failed", { accept: "html" });
    expect(list.text).toContain(requestNo);
    expect(list.text).toContain("permission denied for table revocations");
    expect(list.text).toContain("再処理");
  });

  it("only an RA approver may retry; a retry while the cause remains fails again", async () => {
    const { id, requestNo } = (await clients.approver.getJson("/revocations?state=failed")).json().requests[0];
    for (const [who, c] of [["officer", clients.officer], ["auditor", clients.auditor]] as const) {
      const r = await c.postJson(`/revocations/${id}/retry`, {});
      expect(r.status, who).toBe(403);
      expect(r.json().errorJa).toBeTruthy();
    }
    expect((await clients.reviewer.postJson(`/revocations/${id}/retry`, {})).status).toBe(403);
    // The IA operator executes what the RA approved; putting a request back is not the IA's.
    await expect(retryRevocationRequest(t.ctx.db, s.ia.operator, id)).rejects.toMatchObject({ status: 403 });
    expect((await t.ctx.db("revocation_requests").where({ id }).first("state")).state).toBe("failed");

    const retried = await clients.approver.postJson(`/revocations/${id}/retry`, { note: "権限設定を確認中" });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json().request).toMatchObject({ state: "approved", lastError: expect.stringContaining("permission denied") });
    // Taken once: a second retry finds it approved.
    const twice = await clients.approver2.postJson(`/revocations/${id}/retry`, {});
    expect(twice.status).toBe(409);
    expect(twice.json().errorJa).toContain("失効処理待ち");
    const page = await clients.approver.get(`/revocations/${id}`, { accept: "html" });
    expect(page.text).toContain("前回の処理エラー");

    const run = await runIaWorker();
    expect(run.failed.map((f) => f.requestNo)).toEqual([requestNo]);
    expect(await t.ctx.db("revocation_requests").where({ id }).first("state", "attempts")).toMatchObject({ state: "failed", attempts: 2 });
  });

  it("once the cause is fixed, the approver's retry (the console form) is executed and the card's certificates are revoked", async () => {
    const { id, requestNo } = (await clients.approver.getJson("/revocations?state=failed")).json().requests[0];
    await grantRevocations(); // the DBA fixes the IA account's privileges
    const form = await clients.approver2.get(`/revocations/${id}`, { accept: "html" });
    const version = /name="version" value="(\d+)"/.exec(form.text)![1];
    const posted = await clients.approver2.post(`/revocations/${id}/retry`, { accept: "html", form: { version, note: "IA のデータベース権限を修正" } });
    expect(posted.status, posted.text.slice(0, 300)).toBe(303);
    expect(posted.headers.get("location")).toBe(`/ra/revocations/${id}`);

    const run = await runIaWorker();
    expect(run.failed).toEqual([]);
    expect(run.executed).toEqual([expect.objectContaining({ requestNo, results: expect.arrayContaining([expect.objectContaining({ action: "revoked" })]) })]);
    expect((await activeRevocations(subs[0])).map((r) => r.reason)).toEqual(["keyCompromise", "keyCompromise"]);
    const done = (await clients.approver.getJson(`/revocations/${id}`)).json();
    expect(done.request).toMatchObject({ state: "executed", lastError: null, attempts: 3 });
    expect(done.actions).not.toContain("retry");

    const audit = await auditOf(requestNo);
    expect(audit.map((a) => a.action)).toEqual([
      "revocation_request.created", "revocation_request.approved", "revocation_request.failed", "revocation_request.retried",
      "revocation_request.failed", "revocation_request.retried", "revocation_request.executed",
    ]);
    const retries = audit.filter((a) => a.action === "revocation_request.retried");
    expect(retries.map((r) => r.actor)).toEqual([s.approver.username, s.approver2.username]);
    expect(retries[1].details).toMatchObject({ from: "failed", to: "approved", attempts: 2, note: "IA のデータベース権限を修正", previousError: expect.stringContaining("permission denied") });
  });

  it("refuses a retry when a request filed since for the same target is in progress (409 naming it)", async () => {
    await revokeRevocations();
    const first = await approvedRequest(subs[1]);
    expect((await runIaWorker()).failed.map((f) => f.requestNo)).toEqual([first.requestNo]);
    await grantRevocations();
    // Meanwhile a new request for the same card was filed (a failed one does not block filing).
    const second = await createRevocationRequest(t.ctx.db, s.officer.operator, {
      targetKind: "card", cardLabel: subs[1].cardLabel, channel: "ra_initiative", reason: "privilegeWithdrawn", grounds: "資格喪失の通知",
    });
    const r = await clients.approver.postJson(`/revocations/${first.id}/retry`, {});
    expect(r.status).toBe(409);
    expect(r.json().errorJa).toContain(String(second.request_no));
    expect((await t.ctx.db("revocation_requests").where({ id: first.id }).first("state")).state).toBe("failed");
    await approveRevocationRequest(t.ctx.db, s.approver.operator, Number(second.id));
    expect((await runIaWorker()).executed.map((e) => e.requestNo)).toEqual([second.request_no]);
    // With the second one done, the first may go again: its certificates are already revoked.
    const again = await clients.approver.postJson(`/revocations/${first.id}/retry`, {});
    expect(again.status, again.text).toBe(200);
    const run = await runIaWorker();
    expect(run.executed).toEqual([expect.objectContaining({ requestNo: first.requestNo, results: [expect.objectContaining({ skipped: "ALREADY_REVOKED" }), expect.objectContaining({ skipped: "ALREADY_REVOKED" })] })]);
  });

  it("an invalidityDate less than a minute ahead (the operator's clock) is taken as now, so the IA does not fail it", async () => {
    const ahead = new Date(Date.now() + 45_000);
    const req = await createRevocationRequest(t.ctx.db, s.officer.operator, {
      targetKind: "card", cardLabel: subs[3].cardLabel, channel: "subscriber_ra", reason: "keyCompromise", grounds: "紛失の届出", invalidityDate: ahead.toISOString(),
    });
    expect(new Date(req.invalidity_date as string).getTime()).toBeLessThan(ahead.getTime());
    await approveRevocationRequest(t.ctx.db, s.approver.operator, Number(req.id));
    const run = await executeApprovedRevocationRequests(t.ctx);
    expect(run.failed).toEqual([]);
    expect(run.executed.map((e) => e.requestNo)).toEqual([req.request_no]);
  });

  it("hpki revocation-requests retry signs the approver in and retries; hpki revocation-requests execute executes it", async () => {
    await revokeRevocations();
    const { requestNo } = await approvedRequest(subs[2]);
    expect((await runIaWorker()).failed.map((f) => f.requestNo)).toEqual([requestNo]);
    await grantRevocations();

    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: t.home, DATABASE_URL: t.databaseUrl };
    delete env.PKCS11_MODULE;
    delete env.HPKI_HSM_PIN;
    const hpki = (...args: string[]) => {
      const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../bin/hpki.js"), ...args], { env, encoding: "utf8" });
      return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout.trim().split("\n").at(-1)!) };
    };
    const listed = hpki("revocation-requests", "list", "--state", "failed", "--json");
    expect(listed.code, listed.err).toBe(0);
    expect(listed.json().requests).toEqual([expect.objectContaining({ requestNo, lastError: expect.stringContaining("permission denied"), attempts: 1 })]);
    expect(hpki("revocation-requests", "list", "--state", "failed").out).toContain(`${requestNo} failed after 1 attempt(s): `);

    const pw = (op: { password: string }) => {
      const file = path.join(t.work, `pw-${randomBytes(4).toString("hex")}`);
      fs.writeFileSync(file, `${op.password}\n`, { mode: 0o600 });
      return file;
    };
    // An officer's credentials are right but the role is not: refused, nothing changed.
    const officer = hpki("revocation-requests", "retry", "--id", requestNo, "--username", s.officer2.username, "--password-file", pw(s.officer2), "--totp", await s.officer2.nextCode(), "--json");
    expect(officer.code).toBe(1);
    expect(officer.json().code).toBe("forbidden");
    // A wrong code: refused as a failed sign-in.
    const wrong = hpki("revocation-requests", "retry", "--id", requestNo, "--username", s.approver2.username, "--password-file", pw(s.approver2), "--totp", "000000");
    expect(wrong.code).toBe(1);
    expect((await t.ctx.db("revocation_requests").where({ request_no: requestNo }).first("state")).state).toBe("failed");

    const ok = hpki("revocation-requests", "retry", "--id", requestNo.toLowerCase(), "--username", s.approver2.username, "--password-file", pw(s.approver2),
      "--totp", await s.approver2.nextCode(), "--note", "grant fixed", "--json");
    expect(ok.code, ok.err + ok.out).toBe(0);
    expect(ok.json()).toMatchObject({ requestNo, state: "approved", retriedBy: s.approver2.username, previousError: expect.stringContaining("permission denied") });
    const exec = hpki("revocation-requests", "execute", "--json");
    expect(exec.code, exec.err).toBe(0);
    expect(exec.json().executed).toEqual([expect.objectContaining({ requestNo })]);
    expect(await activeRevocations(subs[2])).toHaveLength(2);

    const audit = await auditOf(requestNo);
    expect(audit.find((a) => a.action === "revocation_request.retried")).toMatchObject({ actor: s.approver2.username, details: { note: "grant fixed" } });
    const login = await t.ctx.db("audit_log").where({ action: "operator.login", actor: s.approver2.username }).orderBy("seq", "desc").first("details");
    expect(typeof login.details === "string" ? JSON.parse(login.details) : login.details).toMatchObject({ console: "cli" });
  }, 300_000); // six CLI processes: headroom on a loaded 2-core machine
});
