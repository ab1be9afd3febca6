/**
 * Leases on issuance requests (issue 10 §2): one IA worker per request, by lease, not by age.
 *
 * A claim sets lease_token (a fresh number from issuance_lease_token_seq: the fencing token),
 * lease_holder and lease_expires_at = now() + leaseMs on the database clock. While the worker
 * runs, a heartbeat (LeaseKeeper) pushes lease_expires_at forward every heartbeatMs. Every write
 * the worker makes for the request goes through `fenced`, which locks the row and refuses
 * (LeaseLostError) unless the row still carries the worker's token, is "issuing" and its lease has
 * not run out. Another worker takes an "issuing" request only once its lease has expired, and
 * takes it under a new token — so from then on the first worker's writes are refused, and while
 * the first worker's lease is live nobody else can take it. A process that died simply stops
 * renewing: its requests are taken again leaseMs later (seconds), not after a fixed idle time.
 *
 * Card operations between two writes are not fenced by the database; each is preceded by a fenced
 * write and lasts far less than a lease (one key generation or certificate write), which is what
 * keeps two workers off one card.
 */
import os from "node:os";
import type { Knex } from "knex";
import { ConflictError } from "./errors.ts";

/** Default lease: 30 s, renewed every 10 s (HPKI_IA_LEASE_SECONDS, HPKI_IA_HEARTBEAT_SECONDS). */
export const ISSUANCE_LEASE_MS = 30_000;
export const ISSUANCE_HEARTBEAT_MS = 10_000;

/** Lease length and heartbeat interval in milliseconds. */
export interface LeaseSettings {
  leaseMs: number;
  heartbeatMs: number;
}

/**
 * Lease settings from the environment: HPKI_IA_LEASE_SECONDS (default 30) and
 * HPKI_IA_HEARTBEAT_SECONDS (default a third of the lease). Fractions allowed (tests).
 * @throws Error when a value is not a positive number or the heartbeat is not shorter than the lease.
 */
export function leaseSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): LeaseSettings {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of seconds / ${name} には正の秒数を指定してください`);
    return n * 1000;
  };
  const leaseMs = num("HPKI_IA_LEASE_SECONDS") ?? ISSUANCE_LEASE_MS;
  const heartbeatMs = num("HPKI_IA_HEARTBEAT_SECONDS") ?? Math.min(ISSUANCE_HEARTBEAT_MS, leaseMs / 3);
  if (heartbeatMs >= leaseMs) throw new Error("HPKI_IA_HEARTBEAT_SECONDS must be shorter than HPKI_IA_LEASE_SECONDS / ハートビート間隔はリース期間より短くしてください");
  return { leaseMs, heartbeatMs };
}

/** This process, as written to lease_holder: "host:pid". */
export function leaseHolder(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** A worker's hold on one request: its id and the fencing token of the claim. */
export interface IssuanceLease {
  requestId: number;
  token: number;
  leaseMs: number;
}

/** A write refused because the worker's lease on the request is gone (expired or taken). */
export class LeaseLostError extends ConflictError {
  constructor(readonly requestId: number) {
    super(
      `issuance request ${requestId}: this worker's lease has expired or was taken by another worker; nothing was written`,
      `発行依頼 ${requestId} の処理権（リース）が失効したか他の発行処理に引き継がれたため、書き込みませんでした`,
    );
  }
}

/** SQL setting a fresh lease (new token) on claimed rows; bind leaseMs / 1000 and the holder. */
export const NEW_LEASE_SQL = "lease_token = nextval('issuance_lease_token_seq'), lease_expires_at = now() + make_interval(secs => ?), lease_holder = ?";

/**
 * Runs `write` in a transaction only while `lease` holds: locks the request row, checks token,
 * state "issuing" and an unexpired lease, renews the lease, then calls `write`.
 * @throws LeaseLostError (nothing written) when the lease is gone.
 */
export async function fenced<T>(db: Knex, lease: IssuanceLease, write: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    const held = await trx("issuance_requests")
      .where({ id: lease.requestId, lease_token: lease.token, state: "issuing" })
      .whereRaw("lease_expires_at > now()")
      .forUpdate()
      .first("id");
    if (!held) throw new LeaseLostError(lease.requestId);
    await trx("issuance_requests").where({ id: lease.requestId })
      .update({ lease_expires_at: trx.raw("now() + make_interval(secs => ?)", [lease.leaseMs / 1000]) });
    return write(trx);
  });
}

/**
 * Heartbeat of one worker's leases: every `heartbeatMs` renews the live leases it holds in one
 * UPDATE. A lease found gone (taken, expired) is remembered as lost and never renewed again.
 * The timer does not keep the process alive.
 */
export class LeaseKeeper {
  private readonly held = new Map<number, IssuanceLease>();
  private readonly lostIds = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Knex,
    private readonly settings: LeaseSettings,
    private readonly onError?: (e: unknown) => void,
  ) {}

  /** Starts renewing `leases` (and any added later). */
  start(leases: readonly IssuanceLease[]): void {
    for (const l of leases) this.held.set(l.requestId, l);
    this.timer ??= setInterval(() => {
      this.beating = this.beating.then(() => this.beat()).catch((e) => this.onError?.(e));
    }, this.settings.heartbeatMs);
    this.timer.unref();
  }

  /** Stops renewing one request (done with it: its lease ends with the state change). */
  release(requestId: number): void {
    this.held.delete(requestId);
  }

  /** True when the heartbeat found this request's lease gone. */
  lost(requestId: number): boolean {
    return this.lostIds.has(requestId);
  }

  /** Stops the heartbeat and waits for a renewal under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.held.clear();
    await this.beating;
  }

  private async beat(): Promise<void> {
    const leases = [...this.held.values()];
    if (leases.length === 0) return;
    const pairs = leases.map(() => "(?::bigint, ?::bigint)").join(",");
    const res = await this.db.raw(
      `UPDATE issuance_requests AS r SET lease_expires_at = now() + make_interval(secs => ?)
         FROM (VALUES ${pairs}) AS v(id, token)
        WHERE r.id = v.id AND r.lease_token = v.token AND r.state = 'issuing' AND r.lease_expires_at > now()
        RETURNING r.id`,
      [this.settings.leaseMs / 1000, ...leases.flatMap((l) => [l.requestId, l.token])],
    );
    const renewed = new Set((res.rows as { id: string | number }[]).map((r) => Number(r.id)));
    for (const l of leases) {
      if (!renewed.has(l.requestId) && this.held.has(l.requestId)) {
        this.lostIds.add(l.requestId);
        this.held.delete(l.requestId);
      }
    }
  }
}
