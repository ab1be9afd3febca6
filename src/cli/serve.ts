/**
 * `hpki serve --role lra|ra|ia|sso|repo|all [--port P] [--host H] [--workers N]`: runs authority
 * roles over HTTP until SIGINT/SIGTERM. One role per process in production (DESIGN §1); `all` for
 * a single host; `--workers` runs the stateless roles in N processes on one port
 * (serve-workers.ts).
 */
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../store/db.ts";
import { ROLE_NAMES, type RoleName } from "../web/role.ts";
import { startServer } from "./role-factories.ts";
import { runCommand } from "./run.ts";
import { checkWorkers, isServeWorker, MULTI_PROCESS_ROLES, reportListening, runPrimary } from "./serve-workers.ts";

/** Parses "--role" values: a comma-separated list of role names, or "all". */
export function parseRoles(value: string): RoleName[] {
  if (value === "all") return [...ROLE_NAMES];
  const roles = value.split(",").map((s) => s.trim());
  for (const r of roles) {
    if (!(ROLE_NAMES as readonly string[]).includes(r)) throw new Error(`unknown role "${r}" (expected ${ROLE_NAMES.join(", ")} or all)`);
  }
  return roles as RoleName[];
}

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("serve authority roles over HTTP (consoles, repository, OCSP, SSO) until Ctrl-C")
    .requiredOption("--role <roles>", `${ROLE_NAMES.join("|")}|all, or a comma-separated list`)
    .option("--port <port>", "TCP port", (v) => Number.parseInt(v, 10), 8080)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--public-url <url>", "base URL as clients see it (default http://host:port)")
    .option("--workers <n>", `processes sharing the port (${MULTI_PROCESS_ROLES.join(", ")} only)`, (v) => Number.parseInt(v, 10), 1)
    .option("--json", "print one JSON line {url, roles} once listening")
    .action(async (o: { role: string; port: number; host: string; publicUrl?: string; workers: number; json?: boolean }) => {
      await runCommand(o, async () => {
        const cfg = loadConfig();
        const roles = parseRoles(o.role);
        checkWorkers(o.workers, roles);
        if (o.workers > 1 && !isServeWorker()) {
          const { url, pids } = await runPrimary(o.workers);
          return { text: `hpki serve: ${roles.join(", ")} on ${url} in ${pids.length} processes (Ctrl-C to stop)`, json: { url, roles, workers: pids } };
        }
        const db = await openDatabase(cfg);
        const server = await startServer({ cfg, db, roles, port: o.port, host: o.host, publicUrl: o.publicUrl }).catch(async (e) => {
          await db.destroy();
          throw e;
        });
        const stop = async () => {
          await server.close();
          await db.destroy();
          process.exit(0);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        if (isServeWorker()) {
          reportListening(server.url);
          return { text: "", json: undefined };
        }
        return {
          text: `hpki serve: ${roles.join(", ")} on ${server.url} (Ctrl-C to stop)`,
          json: { url: server.url, roles },
        };
      });
    });
}
