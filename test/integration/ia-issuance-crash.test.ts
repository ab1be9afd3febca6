/**
 * Issuance that survives crashes, one worker per request (issue 10 §1, §2), with real processes:
 * IA workers (test/integration/helpers/ia-worker-child.ts) on one SoftHSM home and one Postgres
 * database, killed with SIGKILL by the fault hook at chosen steps of personalisation and restarted;
 * two workers side by side on a batch longer than the lease. Also, in process: a write under a
 * lease that was taken is refused; a job counts only what it can take; a planted key puts the card
 * aside for inspection; the application of a failed request can be withdrawn and applied for again.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { personaliseApprovedRequests, readPinMailer } from "../../src/ia/card-personalisation.ts";
import { pinMailerPath, provisionCards } from "../../src/ia/cards.ts";
import { IssuanceJobRunner } from "../../src/ia/issuance-jobs.ts";
import { decideApplication, submitApplication } from "../../src/pipeline/applications.ts";
import { LeaseLostError } from "../../src/pipeline/issuance-lease.ts";
import { claimIssuanceRequests, completeIssuanceRequest, retryIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { faultOutcome, runWorker, waitForLeasesToLapse, type WorkerSite } from "../helpers/ia-faults.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { applicationInputFor, demoRegisterRows } from "../helpers/pipeline.ts";
import { waitFor } from "../helpers/wait.ts";
import { approvedIssuanceRequests, setUpRegistration, type Staff } from "./revocation-workflow-fixture.ts";

const repo = path.resolve(import.meta.dirname, "../..");
/** Short leases so a killed worker's requests come back within seconds. */
const LEASE = { HPKI_IA_LEASE_SECONDS: "2", HPKI_IA_HEARTBEAT_SECONDS: "0.4" };

describe("IA issuance under faults (real processes)", { timeout: 900_000 }, () => {
  let t: TestIa;
  let s: Staff;
  let site: WorkerSite;
  const db = () => t.ctx.db;
  const requestIdsOf = async (appIds: number[]) =>
    (await db()("issuance_requests").whereIn("application_id", appIds).orderBy("id").select("id")).map((r) => Number(r.id));

  beforeAll(async () => {
    t = await openTestIa("ia-crash");
    s = await setUpRegistration(t);
    site = { home: t.home, databaseUrl: t.databaseUrl! };
  });
  afterAll(async () => t?.cleanup());

  it("a worker killed after each step, then restarted: every request issued exactly once, no orphan key, audit intact", async () => {
    const ids = await requestIdsOf(await approvedIssuanceRequests(t, s, 3));
    const faults = ["after-keygen", "after-sign", "after-write", "after-bind:2", "after-keygen:2"];
    for (const fault of faults) {
      await waitForLeasesToLapse(db());
      const run = await runWorker(site, s.ia.operator, 10, { ...LEASE, HPKI_FAULT: fault });
      expect(run.signal, `${fault}: ${run.stderr}`).toBe("SIGKILL");
      expect(run.stderr).toContain(`fault injected: SIGKILL ${fault.split(":")[0]}`);
    }
    await waitForLeasesToLapse(db());
    const last = await runWorker(site, s.ia.operator, 10, LEASE);
    expect(last.code, last.stderr).toBe(0);
    expect(last.result!.failed).toEqual([]);

    const outcome = await faultOutcome(db(), site, ids);
    expect(outcome).toEqual({
      requests: 3, issuedExactlyOnce: 3, correctablyFailed: 0, duplicated: 0, orphanedKeys: 0,
      certificatesNotOnCard: 0, cardsForInspection: 0, unfinished: 0,
    });
    // The key pair a killed worker made was reused from the record, not made again.
    const reused = await db()("audit_log").where({ action: "card.key_generated" }).whereRaw("details->>'resumed' = 'true'").count({ n: "*" }).first();
    expect(Number(reused?.n)).toBeGreaterThanOrEqual(1);
    // Killed workers' requests were taken over after their leases expired, and resumed from the record.
    expect(Number((await db()("audit_log").where({ action: "issuance_request.resumed" }).count({ n: "*" }).first())?.n)).toBeGreaterThanOrEqual(faults.length);
    const verify = spawnSync(process.execPath, [path.join(repo, "bin/hpki.js"), "audit", "verify", "--json"], {
      cwd: repo, encoding: "utf8", env: { ...process.env, HPKI_HOME: t.home, DATABASE_URL: t.databaseUrl },
    });
    expect(verify.status, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout.trim().split("\n").at(-1)!).ok).toBe(true);
  });

  it("two IA processes on a batch longer than the lease: no request is worked twice", async () => {
    const ids = await requestIdsOf(await approvedIssuanceRequests(t, s, 5));
    // Each step 400 ms slower: worker A's 3 requests take far longer than its 2-second lease,
    // which only its heartbeat keeps alive.
    const slow = { ...LEASE, HPKI_FAULT_DELAY_MS: "400" };
    const a = runWorker(site, s.ia.operator, 3, slow);
    await waitFor(async () => Number((await db()("issuance_requests").whereIn("id", ids).where({ state: "issuing" }).count({ n: "*" }).first())?.n) === 3, "worker A's claims");
    const b = runWorker(site, s.ia.operator, 10, slow);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(ra.result!.claimed).toHaveLength(3);
    // B counted only what it could take: A's requests were under a live lease the whole time.
    expect(rb.result!.claimed.filter((id) => ra.result!.claimed.includes(id))).toEqual([]);
    expect([...ra.result!.issued, ...rb.result!.issued].sort((x, y) => x - y)).toEqual(ids);
    expect([...ra.result!.lost, ...rb.result!.lost]).toEqual([]);
    const resumed = await db()("audit_log").where({ action: "issuance_request.resumed" }).whereIn("object_id", ids.map(String)).count({ n: "*" }).first();
    expect(Number(resumed?.n)).toBe(0);
    // Each request claimed once: A's heartbeat kept its leases for the whole batch.
    expect((await db()("issuance_requests").whereIn("id", ids).select("attempts")).map((r) => r.attempts)).toEqual(ids.map(() => 1));
    expect(await faultOutcome(db(), site, ids)).toMatchObject({ requests: 5, issuedExactlyOnce: 5, duplicated: 0, orphanedKeys: 0 });
  });

  it("removes the key pair it made when no certificate can be issued for it; the retry then issues once", async () => {
    const [id] = await requestIdsOf(await approvedIssuanceRequests(t, s, 1));
    // The signature CA is unavailable to a fresh worker: the failure comes after the key pair is made.
    await db()("certificate_authorities").where({ purpose: "sign" }).update({ purpose: "sign-suspended" });
    let failedRun;
    try {
      failedRun = await runWorker(site, s.ia.operator, 10, LEASE);
    } finally {
      await db()("certificate_authorities").where({ purpose: "sign-suspended" }).update({ purpose: "sign" });
    }
    expect(failedRun.code, failedRun.stderr).toBe(0);
    expect(failedRun.result!.failed.map((f) => f.requestId)).toEqual([id]);
    expect(failedRun.result!.failed[0].error).toMatch(/no issuing CA for profile "sign"/);
    expect(await db()("issuance_card_keys").where({ request_id: id }).select("profile", "step")).toEqual([{ profile: "sign", step: "removed" }]);
    expect(await db()("audit_log").where({ action: "card.key_removed" }).whereRaw("details->>'request' = ?", [String(id)]).first()).toBeTruthy();
    expect((await faultOutcome(db(), site, [id])).orphanedKeys).toBe(0);
    // Retried (as the IA console's retry does), it resumes on the same card and issues once.
    const card = (await db()("issuance_requests").where({ id }).first()).card_label;
    await retryIssuanceRequest(db(), s.ia.operator, id);
    const retry = await runWorker(site, s.ia.operator, 10, LEASE);
    expect(retry.result!.issued).toEqual([id]);
    expect((await db()("issuance_requests").where({ id }).first()).card_label).toBe(card);
    expect(await faultOutcome(db(), site, [id])).toMatchObject({ issuedExactlyOnce: 1, duplicated: 0, orphanedKeys: 0, certificatesNotOnCard: 0 });
  });

  it("a job started while a dead worker's leases run counts only what it can take, and takes them once they lapse", async () => {
    const ids = await requestIdsOf(await approvedIssuanceRequests(t, s, 2));
    // A worker claims both under a 1.5-second lease and dies (its heartbeat never runs).
    expect(await claimIssuanceRequests(db(), s.ia.operator, 5, { leaseMs: 1500 })).toHaveLength(2);
    const runner = new IssuanceJobRunner(t.ctx, { lease: { leaseMs: 60_000, heartbeatMs: 20_000 } });
    const early = await runner.start(s.ia.operator, 50);
    await runner.idle();
    expect(runner.get(early.id)).toMatchObject({ state: "finished", total: 0, done: 0 });
    await waitForLeasesToLapse(db());
    const late = await runner.start(s.ia.operator, 50);
    expect(late.total).toBe(2);
    await runner.idle();
    expect(runner.get(late.id)!.issued.map((c) => c.requestId).sort((a, b) => a - b)).toEqual(ids);
    expect(runner.get(late.id)).toMatchObject({ done: 2, total: 2, failed: [] });
  });

  it("refuses a write under a lease another worker has taken", async () => {
    const [appId] = await approvedIssuanceRequests(t, s, 1);
    const [old] = await claimIssuanceRequests(db(), s.ia.operator, 1, { leaseMs: 300 });
    expect(Number(old.application.id)).toBe(appId);
    await waitForLeasesToLapse(db());
    const [taken] = await claimIssuanceRequests(db(), s.ia.operator, 1, { leaseMs: 60_000 });
    expect(taken.lease.requestId).toBe(old.lease.requestId);
    expect(taken.lease.token).toBeGreaterThan(old.lease.token);
    await expect(completeIssuanceRequest(db(), s.ia.operator, old.lease, { cardLabel: "card-STALE", certificates: [] })).rejects.toBeInstanceOf(LeaseLostError);
    const row = await db()("issuance_requests").where({ id: old.lease.requestId }).first();
    expect(row).toMatchObject({ state: "issuing", card_label: null });
    // The worker holding the lease finishes it.
    const run = await personaliseApprovedRequests(t.ctx, s.ia.operator, { lease: { leaseMs: 60_000, heartbeatMs: 20_000 } });
    expect(run.issued).toEqual([]); // under a live lease of `taken`: not this run's to take
    await db()("issuance_requests").where({ id: taken.lease.requestId }).update({ lease_expires_at: db().raw("now() - interval '1 second'") });
    const again = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(again.issued.map((c) => c.requestId)).toEqual([taken.lease.requestId]);
  });

  it("sets a card with a key it did not make aside for inspection and goes on with a new card", async () => {
    const [appId] = await approvedIssuanceRequests(t, s, 1);
    const [claim] = await claimIssuanceRequests(db(), s.ia.operator, 1, { leaseMs: 60_000 });
    // The request is bound to a card that someone planted a "sign" key on.
    const [card] = await provisionCards(db(), t.ctx.cards, t.ctx.cfg.mailDir, 1, { actor: "test", role: "ia" });
    await db()("issuance_requests").where({ id: claim.lease.requestId }).update({ card_label: card.label, lease_expires_at: db().raw("now() - interval '1 second'") });
    const session = await t.ctx.cards.openCard(card.label, readPinMailer(pinMailerPath(t.ctx.cfg.mailDir, card.label)));
    await session.generateKeyPair("sign", "RSA-2048");
    session.close();
    const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    const done = run.issued.find((c) => c.requestId === claim.lease.requestId)!;
    expect(done.cardLabel).not.toBe(card.label);
    expect((await db()("cards").where({ label: card.label }).first()).status).toBe("spoiled");
    const set = await db()("audit_log").where({ action: "card.marked_for_inspection", object_id: card.label }).first();
    expect(set.details.reason).toMatch(/did not make/);
    // The new card's certificates carry the request's second-card request keys.
    const keys = (await db()("certificates").where("request_key", "like", `ir:${claim.lease.requestId}:%`).select("request_key")).map((r) => r.request_key).sort();
    expect(keys).toEqual([`ir:${claim.lease.requestId}:auth-person:g1`, `ir:${claim.lease.requestId}:sign:g1`]);
    expect((await db()("applications").where({ id: appId }).first()).state).toBe("issued");
  });

  it("lets the application of a failed request be withdrawn and applied for again", async () => {
    const [appId] = await approvedIssuanceRequests(t, s, 1);
    // A name the certificate lint refuses (bidi override) makes the IA fail the request.
    await db()("applications").where({ id: appId }).update({ name_latin: "Taro \u202EYamada" });
    const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(run.failed.map((f) => f.lost ?? false)).toEqual([false]);
    const ir = await db()("issuance_requests").where({ application_id: appId }).first();
    expect(ir.state).toBe("failed");
    await decideApplication(db(), s.officer.operator, appId, "withdraw", { reason: "氏名の訂正のため再申込" });
    expect((await db()("applications").where({ id: appId }).first()).state).toBe("withdrawn");
    expect((await db()("issuance_requests").where({ id: ir.id }).first()).state).toBe("withdrawn");
    if (ir.card_label) expect(["blank", "spoiled"]).toContain((await db()("cards").where({ label: ir.card_label }).first()).status);
    // The same licence can be applied for again (no "duplicate application").
    const app = await db()("applications").where({ id: appId }).first();
    const row = demoRegisterRows().find((r) => r.registration_number === app.licence_number)!;
    const again = await submitApplication(db(), s.officer.operator, t.ctx.policies.hcRoles, applicationInputFor(row, 90));
    expect(again.state).toBe("received");
  });
});
