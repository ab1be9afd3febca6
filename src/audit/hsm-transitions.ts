/**
 * Audit records of HSM token outages: "hsm.token-lost" when a role's session pool finds its token
 * gone, "hsm.token-restored" when it works again (with how long it was down). One record per
 * transition, not per failed request (the pool's TokenHealth emits each transition once).
 */
import type { Knex } from "knex";
import type { TokenHealth } from "../hsm/health.ts";
import { appendAudit } from "./log.ts";

/**
 * Appends an audit record for every later transition of `health`, as `actor` "system" in `role`
 * (the role whose pool saw it; one record per process that saw it). A failed audit write is
 * passed to `onError` — the HSM path never fails because the database did.
 */
export function auditTokenTransitions(db: Knex, health: TokenHealth, role: string, onError: (err: unknown) => void): void {
  health.onTransition((t) => {
    db.transaction((trx) =>
      appendAudit(trx, [{
        actor: "system",
        role,
        action: t.event === "lost" ? "hsm.token-lost" : "hsm.token-restored",
        objectType: "hsm-token",
        objectId: t.token,
        details: { at: t.at, error: t.error, pid: process.pid, ...(t.downMs !== undefined ? { downMs: t.downMs } : {}) },
      }]),
    ).catch(onError);
  });
}
