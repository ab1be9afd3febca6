/**
 * Health of one HSM token as a session pool sees it: "ok" while operations succeed, "degraded"
 * from the first failure that says the token is gone (removed, not present, unreadable, login
 * refused by a vanished token) until an operation succeeds again. Listeners hear each transition
 * once — not each failed request — so the roles can audit "token lost" / "token back" and show
 * the state on /healthz and in the IA console.
 */

/** What /healthz and the consoles show for one token. Times are ISO 8601 strings (JSON-ready). */
export interface TokenHealthReport {
  token: string;
  state: "ok" | "degraded";
  /** When the current state began. */
  since: string;
  /** The last failure that made or kept the token degraded (kept after recovery for reference). */
  lastError?: string;
  lastErrorAt?: string;
}

/** A state change: "lost" when ok → degraded, "restored" when degraded → ok (`downMs` = time degraded). */
export interface TokenTransition {
  token: string;
  event: "lost" | "restored";
  at: Date;
  /** The error that made it degraded ("lost"), or the last one seen while degraded ("restored"). */
  error: string;
  /** Milliseconds the token was degraded ("restored" only). */
  downMs?: number;
}

export type TokenTransitionListener = (t: TokenTransition) => void;

/** The health state machine of one token; see the module comment. */
export class TokenHealth {
  private state: "ok" | "degraded" = "ok";
  private since = new Date();
  private lastError: string | undefined;
  private lastErrorAt: Date | undefined;
  private readonly listeners: TokenTransitionListener[] = [];

  constructor(readonly token: string) {}

  /** True while the token is degraded. */
  get degraded(): boolean {
    return this.state === "degraded";
  }

  /** Milliseconds since the token became degraded, or 0 when ok. */
  get degradedForMs(): number {
    return this.degraded ? Date.now() - this.since.getTime() : 0;
  }

  /** Registers `fn` for every later transition. A listener that throws is ignored (logged by the caller's own wrapper). */
  onTransition(fn: TokenTransitionListener): void {
    this.listeners.push(fn);
  }

  /** Records a token-level failure (message without secrets); emits "lost" when it was ok. */
  failed(message: string): void {
    const now = new Date();
    this.lastError = message;
    this.lastErrorAt = now;
    if (this.state === "degraded") return;
    this.state = "degraded";
    this.since = now;
    this.emit({ token: this.token, event: "lost", at: now, error: message });
  }

  /** Records a success; emits "restored" when it was degraded. */
  succeeded(): void {
    if (this.state === "ok") return;
    const now = new Date();
    const downMs = now.getTime() - this.since.getTime();
    this.state = "ok";
    this.since = now;
    this.emit({ token: this.token, event: "restored", at: now, error: this.lastError ?? "", downMs });
  }

  /** The current state for /healthz. */
  report(): TokenHealthReport {
    return {
      token: this.token,
      state: this.state,
      since: this.since.toISOString(),
      ...(this.lastError ? { lastError: this.lastError, lastErrorAt: this.lastErrorAt!.toISOString() } : {}),
    };
  }

  private emit(t: TokenTransition): void {
    for (const fn of this.listeners) {
      try {
        fn(t);
      } catch {
        // A listener's failure (e.g. the audit write) must not turn into an HSM error.
      }
    }
  }
}
