/**
 * `npm run bench -- faults [--requests 6] [--kills 5] [--lease 2]`: fault injection on the IA
 * issuance worker (issue 10 §1, §2, figure). Needs DATABASE_URL (Postgres: the workers are separate
 * processes on one database).
 *
 * `requests` approved issuance requests (sign + auth-person each) are worked by real IA worker
 * processes; `kills` of them are killed with SIGKILL by the fault hook, cycling through the steps
 * after-bind, after-keygen, after-sign, after-write (the n-th occurrence varying), each restarted
 * once the dead worker's lease (`lease` seconds) has lapsed; a last worker runs without fault.
 * Then: requests completed exactly once, correctably failed, duplicated, orphaned keys (private
 * keys on a card without their certificate), certificates on no card, cards set aside, and the
 * longest time from a worker's death until no request is held under its lease (≤ the lease).
 *
 * Baseline in the same run: as many other requests worked by one worker without faults (the time
 * per request without crashes), against the fault run's time per request including restarts and
 * lease waits.
 */
import { parseArgs } from "node:util";
import { faultOutcome, runWorker, waitForLeasesToLapse } from "../helpers/ia-faults.ts";
import { openTestIa } from "../helpers/ia.ts";
import { approvedIssuanceRequests, setUpRegistration } from "../integration/revocation-workflow-fixture.ts";

const POINTS = ["after-bind", "after-keygen", "after-sign", "after-write"];

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const { values } = parseArgs({ args, options: { requests: { type: "string", default: "6" }, kills: { type: "string", default: "5" }, lease: { type: "string", default: "2" } } });
  const requests = Number(values.requests);
  const kills = Number(values.kills);
  if (!process.env.DATABASE_URL) throw new Error("bench faults needs DATABASE_URL (Postgres): the IA workers are separate processes");
  if (!(requests >= 1 && requests <= 12)) throw new Error("--requests: 1–12 (the demo licence register has 24 people: baseline + fault run)");
  const env = { HPKI_IA_LEASE_SECONDS: values.lease, HPKI_IA_HEARTBEAT_SECONDS: String(Number(values.lease) / 5) };
  const t = await openTestIa("bench-faults");
  try {
    const s = await setUpRegistration(t);
    const site = { home: t.home, databaseUrl: t.databaseUrl! };
    const idsOf = async (appIds: number[]) => (await t.ctx.db("issuance_requests").whereIn("application_id", appIds).orderBy("id").select("id")).map((r) => Number(r.id));

    // Baseline: the same work, one worker, no fault.
    const baseIds = await idsOf(await approvedIssuanceRequests(t, s, requests));
    const b0 = performance.now();
    const base = await runWorker(site, s.ia.operator, requests, env);
    const baseSeconds = (performance.now() - b0) / 1000;
    if (base.code !== 0) throw new Error(`baseline worker failed: ${base.stderr}`);

    // Fault run.
    const ids = await idsOf(await approvedIssuanceRequests(t, s, requests));
    let injected = 0;
    let notReached = 0;
    let releaseMax = 0;
    let diedAt = 0;
    const f0 = performance.now();
    for (let k = 0; k < kills; k++) {
      const fault = `${POINTS[k % POINTS.length]}:${1 + (Math.floor(k / POINTS.length) % 2)}`;
      await waitForLeasesToLapse(t.ctx.db);
      if (diedAt) releaseMax = Math.max(releaseMax, (performance.now() - diedAt) / 1000);
      const r = await runWorker(site, s.ia.operator, requests, { ...env, HPKI_FAULT: fault });
      diedAt = performance.now();
      if (r.signal === "SIGKILL") injected++;
      else if (r.code === 0) notReached++; // the work ran out before that step came round
      else throw new Error(`worker with ${fault} failed: ${r.stderr}`);
    }
    await waitForLeasesToLapse(t.ctx.db);
    if (diedAt) releaseMax = Math.max(releaseMax, (performance.now() - diedAt) / 1000);
    const last = await runWorker(site, s.ia.operator, requests, env);
    const faultSeconds = (performance.now() - f0) / 1000;
    if (last.code !== 0) throw new Error(`last worker failed: ${last.stderr}`);
    const o = await faultOutcome(t.ctx.db, site, ids);
    const baseOutcome = await faultOutcome(t.ctx.db, site, baseIds);

    const rows: [string, string | number][] = [
      ["kills injected (SIGKILL)", injected],
      ["fault runs that finished first", notReached],
      ["requests", o.requests],
      ["completed exactly once", o.issuedExactlyOnce],
      ["correctably failed", o.correctablyFailed],
      ["duplicated", o.duplicated],
      ["orphaned keys (all cards)", o.orphanedKeys],
      ["certificates on no card", o.certificatesNotOnCard],
      ["cards set aside for inspection", o.cardsForInspection],
      ["unfinished", o.unfinished],
      ["lease (s)", Number(values.lease)],
      ["dead worker's requests free again after (s, max)", releaseMax.toFixed(1)],
      ["fault run (s)", faultSeconds.toFixed(1)],
      [`baseline: ${requests} requests, no fault (s)`, baseSeconds.toFixed(1)],
      ["baseline completed exactly once", baseOutcome.issuedExactlyOnce],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`IA issuance under injected faults (${requests} requests × sign + auth-person, real processes, PostgreSQL)\n`);
    for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
    const summary = {
      bench: "faults-issuance", requests, killsInjected: injected, completedExactlyOnce: o.issuedExactlyOnce, correctablyFailed: o.correctablyFailed,
      duplicated: o.duplicated, orphanedKeys: o.orphanedKeys, certificatesNotOnCard: o.certificatesNotOnCard,
      cardsForInspection: o.cardsForInspection, unfinished: o.unfinished, leaseSeconds: Number(values.lease), releasedAfterKillMaxSeconds: Number(releaseMax.toFixed(2)),
      faultRunSeconds: Number(faultSeconds.toFixed(2)), baselineSeconds: Number(baseSeconds.toFixed(2)),
      baselineCompletedExactlyOnce: baseOutcome.issuedExactlyOnce,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary;
  } finally {
    await t.cleanup();
  }
}
