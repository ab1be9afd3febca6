/**
 * The pino logger of a role (`hpki-<role>`, level info): JSON lines on stdout, as `hpki serve`
 * writes them for the service manager, or appended to `deps.logFile` when the caller prints its
 * own report on stdout (`hpki demo`), so the two do not interleave.
 */
import { pino, type Logger } from "pino";
import type { RoleDeps } from "./role.ts";

/** One destination per file for the whole process: the roles' lines go through one stream. */
const destinations = new Map<string, ReturnType<typeof pino.destination>>();

/** The logger named `name` for a role built with `deps`. */
export function roleLogger(deps: Pick<RoleDeps, "logFile">, name: string): Logger {
  const file = deps.logFile;
  if (!file) return pino({ name, level: "info" });
  let dest = destinations.get(file);
  if (!dest) destinations.set(file, (dest = pino.destination({ dest: file, append: true, mkdir: true })));
  return pino({ name, level: "info" }, dest);
}
