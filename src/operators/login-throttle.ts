/**
 * Sign-in throttling without denial of service (issue 10 §9). Replaces the hard lock (5 failures
 * → account locked 15 minutes for everyone), which anyone knowing a user name could trigger.
 *
 * Policy (LOGIN_THROTTLE):
 * - Failures are counted per (account, source) and per source over all accounts (row "*").
 *   A source is the client address (IPv6: its /64; "local" for the CLI). Unknown user names are
 *   counted like known ones, so throttling reveals nothing about which accounts exist.
 * - The first `freeFailures` failures of a pair cost nothing; each further one delays the next
 *   attempt of that pair by baseDelayMs · 2^(n − freeFailures − 1), capped at maxDelayMs
 *   (1 s, 2 s, 4 s … 5 min). A source failing on many accounts (password spraying) is delayed the
 *   same way after sourceFreeFailures failures.
 * - During a delay the attempt is refused with 429 and Retry-After before any password is
 *   checked (no guessing while delayed); such refusals are not counted.
 * - Counts older than windowMs (15 min after the last failure) start again from zero; a success
 *   clears the pair's count.
 * - Failures from one source never delay another source: the operator at her own desk signs in
 *   while someone elsewhere hammers her user name. Per-account totals are still kept
 *   (operators.failed_logins) and audited for the security officer.
 * The per-address request limit of POST /login (express-rate-limit, login.ts) stays in front.
 */
import { isIP } from "node:net";
import type { Knex } from "knex";
import { HpkiError } from "../pipeline/errors.ts";

/** The throttling parameters (see the module comment). */
export const LOGIN_THROTTLE = {
  freeFailures: 3,
  sourceFreeFailures: 20,
  baseDelayMs: 1000,
  maxDelayMs: 5 * 60_000,
  windowMs: 15 * 60_000,
} as const;

/** The per-source row's user name: not a valid operator name. */
const ANY_ACCOUNT = "*";

/** 429: this account (or any account) from this source is delayed after repeated failures. */
export class LoginThrottledError extends HpkiError {
  override name = "LoginThrottledError";
  constructor(readonly retryAfterSeconds: number) {
    super(
      `Too many failed sign-ins from this address. Wait ${retryAfterSeconds} seconds and try again.`,
      `このアドレスからのログイン失敗が続いています。${retryAfterSeconds}秒待ってから再度お試しください。`,
      429,
      "login_throttled",
    );
  }
}

/**
 * Delay (ms) imposed after the `failures`-th failure when `free` failures are free: 0 up to
 * `free`, then baseDelayMs · 2^(failures − free − 1), at most maxDelayMs.
 */
export function throttleDelayMs(failures: number, free: number): number {
  if (failures <= free) return 0;
  const exp = Math.min(failures - free - 1, 30);
  return Math.min(LOGIN_THROTTLE.baseDelayMs * 2 ** exp, LOGIN_THROTTLE.maxDelayMs);
}

/** The source key of a client address: IPv4 as is, IPv6 by /64, "local" when absent (CLI). */
export function sourceKey(ip: string | undefined): string {
  if (!ip) return "local";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  if (isIP(ip) !== 6) return ip;
  // Expand "::" and keep the first four groups (the /64 a single host or customer gets).
  const [head, tail = ""] = ip.toLowerCase().split("%")[0].split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/**
 * Refuses the attempt when `username` from `source` (or the source as a whole) is delayed.
 * @throws LoginThrottledError with the seconds left.
 */
export async function assertNotThrottled(db: Knex | Knex.Transaction, username: string, source: string, now: Date): Promise<void> {
  const row = await db("login_failures").whereIn("username", [username, ANY_ACCOUNT]).andWhere({ source }).max({ until: "delayed_until" }).first();
  const until = row?.until ? new Date(row.until) : null;
  if (until && until > now) throw new LoginThrottledError(Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000)));
}

async function bump(trx: Knex.Transaction, username: string, source: string, free: number, now: Date): Promise<number> {
  const prev = await trx("login_failures").where({ username, source }).forUpdate().first("failures", "last_failure_at");
  const fresh = !prev || new Date(prev.last_failure_at).getTime() < now.getTime() - LOGIN_THROTTLE.windowMs;
  const failures = fresh ? 1 : Number(prev.failures) + 1;
  const delay = throttleDelayMs(failures, free);
  const row = { username, source, failures, last_failure_at: now, delayed_until: delay ? new Date(now.getTime() + delay) : null };
  await trx("login_failures").insert(row).onConflict(["username", "source"]).merge();
  return failures;
}

/**
 * Counts a failed sign-in of `username` from `source` (the pair and the source as a whole) and
 * drops counts older than the window. Returns the pair's failure count and the delay now imposed.
 */
export async function recordLoginFailure(trx: Knex.Transaction, username: string, source: string, now: Date): Promise<{ failures: number; delayMs: number }> {
  await trx("login_failures").where("last_failure_at", "<", new Date(now.getTime() - LOGIN_THROTTLE.windowMs)).delete();
  const failures = await bump(trx, username, source, LOGIN_THROTTLE.freeFailures, now);
  await bump(trx, ANY_ACCOUNT, source, LOGIN_THROTTLE.sourceFreeFailures, now);
  return { failures, delayMs: throttleDelayMs(failures, LOGIN_THROTTLE.freeFailures) };
}

/** Clears the failure count of `username` from `source` after a successful sign-in. */
export async function clearLoginFailures(trx: Knex.Transaction, username: string, source: string): Promise<void> {
  await trx("login_failures").where({ username, source }).delete();
}
