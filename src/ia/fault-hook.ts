/**
 * Fault injection for crash tests (issue 10 §1): the issuance worker calls `faultPoint` after each
 * step of personalising a card, and IssuanceService after recording its intents (before signing). With HPKI_FAULT=<point>[:<n>] the process kills itself with
 * SIGKILL (as `kill -9` would: no cleanup, no finally) the n-th time (default 1st) it reaches that
 * point; HPKI_FAULT_DELAY_MS=<ms> makes every step take that much longer (a slow card station, to
 * run a batch past its lease). HPKI_FAULT=<point>:<n>:throw throws an Error there instead of
 * killing the process — a failure the worker records (the request becomes "failed"), for the
 * RA's correction and retry tests (issue 12 §1). Never honoured when NODE_ENV=production.
 */

/** The steps a fault can be injected after. */
export const FAULT_POINTS = ["after-bind", "after-keygen", "after-intent", "after-sign", "after-write"] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

const reached = new Map<FaultPoint, number>();

/**
 * Called by the worker after step `point`: sleeps HPKI_FAULT_DELAY_MS, then kills this process if
 * HPKI_FAULT names this point and occurrence. No effect in production or without the variables.
 */
export async function faultPoint(point: FaultPoint, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (env.NODE_ENV === "production") return;
  const delay = Number(env.HPKI_FAULT_DELAY_MS ?? 0);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  const spec = env.HPKI_FAULT;
  if (!spec) return;
  const [name, nth, mode] = spec.split(":");
  if (name !== point) return;
  const n = (reached.get(point) ?? 0) + 1;
  reached.set(point, n);
  if (n === Number(nth || 1) && mode === "throw") {
    throw new Error(`fault injected: error after ${point} (#${n})`);
  }
  if (n === Number(nth || 1)) {
    process.stderr.write(`hpki: fault injected: SIGKILL ${point} (#${n}) / 障害注入: ${point} で強制終了\n`);
    process.kill(process.pid, "SIGKILL");
    await new Promise(() => {}); // the signal is delivered asynchronously: do not go on meanwhile
  }
}
