/**
 * The pino logger of a role (`hpki-<role>`, level info): JSON lines on stdout, as `hpki serve`
 * writes them for the service manager, or appended to `deps.logFile` when the caller prints its
 * own report on stdout (`hpki demo`), so the two do not interleave.
 */
import { pino, type Logger } from "pino";
import type { RoleDeps } from "./role.ts";

/** The logger named `name` for a role built with `deps`. */
export function roleLogger(deps: Pick<RoleDeps, "logFile">, name: string): Logger {
  return deps.logFile
    ? pino({ name, level: "info" }, pino.destination({ dest: deps.logFile, append: true, mkdir: true }))
    : pino({ name, level: "info" });
}
