/**
 * A pool of logged-in read/write sessions on one token, one operation per session at a time,
 * that heals itself after session loss or a module hiccup instead of needing a process restart.
 */
import os from "node:os";
import graphene from "graphene-pk11";
import { HsmError, REINIT_RVS, isRecoverablePkcs11Error, isTokenLossError, pkcs11ErrorName, toHsmError } from "./errors.ts";
import { TokenHealth } from "./health.ts";
import type { Pkcs11Module } from "./module.ts";
import { loginUser } from "./login.ts";

interface Entry {
  session: graphene.Session | null;
  /** Module generation the session was opened under. */
  generation: number;
  busy: boolean;
}

/** Counters for monitoring and tests; monotonically increasing. */
export interface PoolStats {
  /** Sessions opened (initial opens and replacements). */
  opened: number;
  /** Operations retried after a recoverable error. */
  retries: number;
  /** Module re-initialisations this pool asked for. */
  reinitializations: number;
  /** Calls answered TOKEN_UNAVAILABLE (the token was gone; no retry left or re-initialisation throttled). */
  unavailable: number;
}

/**
 * Sessions on the token labelled `tokenLabel`, opened lazily (up to `size`, default
 * os.availableParallelism() × 2) and logged in as CKU_USER with `pin`.
 *
 * One operation per session (v2.40 §5.2: a session has at most one active cryptographic operation),
 * so up to `size` operations run in parallel; further callers queue FIFO.
 */
export class SessionPool {
  /** Maximum number of sessions. */
  readonly size: number;
  /** Label of the token the sessions are on. */
  readonly tokenLabel: string;
  readonly stats: PoolStats = { opened: 0, retries: 0, reinitializations: 0, unavailable: 0 };
  /** The token's health as this pool sees it (for /healthz, the IA console, audit of transitions). */
  readonly health: TokenHealth;
  private readonly pin: string;
  private readonly entries: Entry[];
  private waiters: { resolve: (e: Entry) => void; reject: (err: unknown) => void }[] = [];
  private closed = false;
  /** Set by the first successful operation: before it, a missing token is a configuration error, not a loss. */
  private established = false;
  private readonly reinitIntervalMs: number;
  private readonly probeIntervalMs: number;
  private probe: NodeJS.Timeout | null = null;

  /**
   * @param mod an open module (see Pkcs11Module.open)
   * @param opts.tokenLabel token to use, resolved by label on every (re)open
   * @param opts.pin the token's user PIN; kept in memory only, never logged
   * @param opts.size maximum sessions, ≥ 1
   * @param opts.reinitIntervalMs least time between re-initialisations for a lost token (module-wide; default 1,000 ms)
   * @param opts.probeIntervalMs while degraded, how often a background probe tries to get the token back (default 1,000 ms)
   */
  constructor(
    readonly mod: Pkcs11Module,
    opts: { tokenLabel: string; pin: string; size?: number; reinitIntervalMs?: number; probeIntervalMs?: number },
  ) {
    this.tokenLabel = opts.tokenLabel;
    this.pin = opts.pin;
    this.health = new TokenHealth(opts.tokenLabel);
    this.reinitIntervalMs = opts.reinitIntervalMs ?? 1_000;
    this.probeIntervalMs = opts.probeIntervalMs ?? 1_000;
    this.size = Math.max(1, opts.size ?? os.availableParallelism() * 2);
    this.entries = Array.from({ length: this.size }, () => ({ session: null, generation: -1, busy: false }));
  }

  /**
   * Runs `op` on a pooled, logged-in RW session that no other operation uses meanwhile. `op` must
   * finish every operation it starts (e.g. C_SignInit + C_Sign) before resolving, and must not keep
   * the session. The run counts as in-flight work for Pkcs11Module.track.
   *
   * Healing: on CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_ERROR,
   * CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_CRYPTOKI_NOT_INITIALIZED or
   * CKR_USER_NOT_LOGGED_IN (and CKR_OPERATION_ACTIVE, a session left mid-operation) the pool
   * re-initialises the module when the error says the module is gone (only once per generation,
   * however many sessions report it), replaces the session (re-resolving the token by label) or
   * logs in again, then retries `op` ONCE. A session from an older module generation is replaced
   * before use without trying it. So `op` may run twice: it must be safe to repeat. `op` must not
   * call run() on the same pool or await Pkcs11Module.whenReady/exclusive (it would wait for itself).
   *
   * Token loss (errors.ts TOKEN_LOSS_CODES, after the pool once worked): the token's directory was
   * moved away or its device removed. The token is marked degraded ({@link health}), the module
   * re-initialised — at most once per `reinitIntervalMs` in the process, since SoftHSM2 sees a
   * restored token directory only in C_Initialize — and `op` retried once on the token found
   * again. While the token stays away the call fails at once with "TOKEN_UNAVAILABLE" (no wait),
   * and a background probe keeps re-trying every `probeIntervalMs`, so the token is back in
   * service within about one interval of its return even when no request comes.
   *
   * @throws HsmError with a CKR_ code for PKCS#11 failures (e.g. CKR_PIN_INCORRECT at login,
   *   "TOKEN_NOT_FOUND" before the first success, "TOKEN_UNAVAILABLE" after, "POOL_CLOSED");
   *   errors thrown by `op` that are not PKCS#11 pass unchanged.
   */
  async run<T>(op: (session: graphene.Session) => T | Promise<T>): Promise<T> {
    const entry = await this.acquire();
    try {
      try {
        return await this.attempt(entry, op);
      } catch (err) {
        if (!this.isHealable(err)) throw toHsmError(err, `token "${this.tokenLabel}"`);
        await this.heal(entry, err);
        this.stats.retries++;
      }
      try {
        return await this.attempt(entry, op);
      } catch (err) {
        // Give the next user a fresh start rather than a session we know is bad.
        if (this.isHealable(err)) entry.session = null;
        if (this.isTokenLoss(err)) throw this.unavailable(err);
        throw toHsmError(err, `token "${this.tokenLabel}" (after one retry)`);
      }
    } finally {
      this.release(entry);
    }
  }

  /**
   * Throws HsmError CKR_TOKEN_NOT_PRESENT when the pool's token is no longer in the module's slot
   * list. Call it inside `op` when an object is unexpectedly missing: SoftHSM2 answers a vanished
   * token directory with "no such object" on the still-open session, not with an error, so this
   * is how a missing key becomes a token loss that {@link run} heals instead of a lasting
   * "key not found".
   */
  assertTokenPresent(): void {
    if (!this.mod.findSlotByTokenLabel(this.tokenLabel)) {
      throw new HsmError(`token "${this.tokenLabel}" is no longer in the slot list`, "CKR_TOKEN_NOT_PRESENT");
    }
  }

  private async attempt<T>(entry: Entry, op: (session: graphene.Session) => T | Promise<T>): Promise<T> {
    this.ensureOpen(entry);
    const result = await this.mod.track(() => op(entry.session!));
    this.established = true;
    this.health.succeeded();
    return result;
  }

  private isHealable(err: unknown): boolean {
    return isRecoverablePkcs11Error(err) || pkcs11ErrorName(err) === "CKR_OPERATION_ACTIVE" || this.isTokenLoss(err);
  }

  private isTokenLoss(err: unknown): boolean {
    return this.established && isTokenLossError(err);
  }

  /** The fast answer while the token is away; marks it degraded and starts the probe. */
  private unavailable(err: unknown): HsmError {
    const cause = err instanceof Error ? err.message : String(err);
    this.health.failed(cause);
    this.startProbe();
    this.stats.unavailable++;
    const since = new Date(Date.now() - this.health.degradedForMs).toISOString();
    return new HsmError(
      `HSM token "${this.tokenLabel}" is unavailable (removed or unreadable) since ${since}: ${cause}; reconnecting every ${this.reinitIntervalMs / 1000} s, try again shortly`,
      "TOKEN_UNAVAILABLE",
      { cause: err, messageJa: `HSM トークン「${this.tokenLabel}」が利用できません(取り外されたか読み取れません。${since} から)。自動で再接続を試みています。しばらくしてからやり直してください。` },
    );
  }

  private async heal(entry: Entry, err: unknown): Promise<void> {
    if (this.isTokenLoss(err)) {
      // Not marked degraded yet: a token back after one re-initialisation is no outage to report.
      let reinitialized: boolean;
      try {
        reinitialized = this.mod.reinitializeIfDue(this.reinitIntervalMs);
      } catch (e) {
        throw this.unavailable(e);
      }
      // Re-initialised less than an interval ago (by any pool) and still gone: answer now.
      if (!reinitialized) throw this.unavailable(err);
      this.stats.reinitializations++;
      await this.mod.whenReady();
      entry.session = null;
      return;
    }
    const name = pkcs11ErrorName(err)!;
    if (REINIT_RVS.has(name) && entry.generation === this.mod.generation) {
      // Several sessions fail together after a hiccup; only the first one re-initialises.
      this.stats.reinitializations++;
      this.mod.reinitialize();
    }
    await this.mod.whenReady();
    if (entry.session && entry.generation === this.mod.generation) {
      if (name === "CKR_USER_NOT_LOGGED_IN") {
        // Login state is per token and dies with its last session (v2.40 §5.6); the session lives.
        loginUser(entry.session, this.pin, `token "${this.tokenLabel}"`);
        return;
      }
      if (name === "CKR_OPERATION_ACTIVE") {
        // Handle still valid but stuck mid-operation: close it. Never close a handle reported
        // invalid: the module may already have given that number to another session.
        closeQuietly(entry.session);
      }
    }
    entry.session = null;
  }

  /** While degraded, re-tries the token in the background so it comes back without waiting for a request. */
  private startProbe(): void {
    if (this.probe || this.closed) return;
    let probing = false;
    this.probe = setInterval(() => {
      if (!this.health.degraded || this.closed) {
        this.stopProbe();
        return;
      }
      if (probing) return;
      probing = true;
      this.run(() => undefined)
        .catch(() => undefined)
        .finally(() => {
          probing = false;
        });
    }, this.probeIntervalMs);
    this.probe.unref();
  }

  private stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }

  private ensureOpen(entry: Entry): void {
    if (this.closed) throw new HsmError("session pool is closed", "POOL_CLOSED");
    const generation = this.mod.generation;
    if (entry.session && entry.generation === generation) return;
    entry.session = null;
    const slot = this.mod.findSlotByTokenLabel(this.tokenLabel);
    if (!slot) throw new HsmError(`token "${this.tokenLabel}" not found (looked up by label)`, "TOKEN_NOT_FOUND");
    const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    try {
      loginUser(session, this.pin, `token "${this.tokenLabel}"`);
    } catch (err) {
      closeQuietly(session);
      throw err;
    }
    this.stats.opened++;
    // Handles are unique among live sessions, so another entry holding this number holds a
    // session that was closed behind our back and the module reused its handle.
    for (const other of this.entries) {
      if (other !== entry && other.session && other.session.handle.equals(session.handle)) other.session = null;
    }
    entry.session = session;
    entry.generation = generation;
  }

  private acquire(): Promise<Entry> {
    if (this.closed) return Promise.reject(new HsmError("session pool is closed", "POOL_CLOSED"));
    // Prefer an entry with an open session so the pool grows only under real parallelism.
    const idle = this.entries.find((e) => !e.busy && e.session) ?? this.entries.find((e) => !e.busy);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(entry: Entry): void {
    if (this.closed) {
      entry.busy = false;
      this.closeEntry(entry);
      return;
    }
    const next = this.waiters.shift();
    if (next) next.resolve(entry);
    else entry.busy = false;
  }

  private closeEntry(entry: Entry): void {
    if (entry.session && entry.generation === this.mod.generation) closeQuietly(entry.session);
    entry.session = null;
  }

  /**
   * Closes idle sessions now and busy ones when their operation ends; queued and later calls to
   * {@link run} reject with HsmError "POOL_CLOSED". Does not finalise the module.
   */
  close(): void {
    this.closed = true;
    this.stopProbe();
    for (const w of this.waiters.splice(0)) w.reject(new HsmError("session pool is closed", "POOL_CLOSED"));
    for (const e of this.entries) if (!e.busy) this.closeEntry(e);
  }
}

function closeQuietly(session: graphene.Session): void {
  try {
    session.close();
  } catch {
    // Already gone: nothing to release.
  }
}
