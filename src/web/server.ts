/**
 * HTTP process composition for `hpki serve`: one express app, the selected roles mounted at
 * their prefixes (ROLE_PREFIX), one listening socket. Production runs one role per process;
 * `--role all` mounts every role for the embedded default.
 */
import http from "node:http";
import express from "express";
import type { Config } from "../config.ts";
import type { TokenHealthReport } from "../hsm/health.ts";
import type { Db } from "../store/db.ts";
import { refuseUnstorablePathAndQuery } from "./input-guard.ts";
import { ROLE_PREFIX, type RoleFactory, type RoleName, type RoleServer } from "./role.ts";

export interface StartedServer {
  url: string;
  port: number;
  roles: RoleName[];
  /** The router of each started role (route listings: the role × route tests walk them). */
  routers: Partial<Record<RoleName, RoleServer["router"]>>;
  close(): Promise<void>;
}

export interface StartServerOptions {
  cfg: Config;
  db: Db;
  roles: RoleName[];
  port: number;
  host?: string;
  /** Base URL written into pages and redirects; default http://<host>:<port>. */
  publicUrl?: string;
  /** The roles' logs go to this file instead of stdout (RoleDeps.logFile). */
  logFile?: string;
  /**
   * Loaders of the role servers, by role (src/cli/role-factories.ts): injected so this plumbing
   * names no role (DESIGN §2).
   */
  factories: Partial<Record<RoleName, () => Promise<RoleFactory>>>;
}

/**
 * Builds and starts the server. Throws when a role is not available in this build or the port is
 * taken (EADDRINUSE). `port: 0` picks a free port (tests).
 */
export async function startServer(opts: StartServerOptions): Promise<StartedServer> {
  const host = opts.host ?? "127.0.0.1";
  const app = express();
  app.disable("x-powered-by");
  // Behind a reverse proxy the operator sets this explicitly; never trust X-Forwarded-* by default.
  app.set("trust proxy", false);
  // NUL / lone surrogates in the path or query: 400 before any role (issue 10 §7).
  app.use(refuseUnstorablePathAndQuery);
  const started: RoleServer[] = [];
  // The server listens before the roles are mounted (they need its URL): until every role is up,
  // /healthz answers 503 "starting" so a load balancer does not send traffic to a half-started process.
  let ready = false;
  // Before the roles: the repository is mounted at "/" and would answer 404 for it.
  app.get("/healthz", (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    if (!ready) {
      res.status(503).json({ status: "starting", roles: started.map((r) => r.role), hsm: [] });
      return;
    }
    res.json(healthReport(started));
  });
  // Roles' hot paths first (RoleServer.preRoute), then express.
  const server = http.createServer((req, res) => {
    for (const r of started) if (r.preRoute?.(req, res)) return;
    app(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const publicUrl = (opts.publicUrl ?? `http://${host === "0.0.0.0" ? "localhost" : host}:${port}`).replace(/\/$/, "");
  try {
    // Mount longer prefixes first so the repository's "/" does not shadow the consoles.
    const order = [...opts.roles].sort((a, b) => ROLE_PREFIX[b].length - ROLE_PREFIX[a].length);
    for (const role of order) {
      const load = opts.factories[role];
      if (!load) throw new Error(`role "${role}" is not available in this build`);
      const r = await (await load())({ cfg: opts.cfg, db: opts.db, publicUrl, logFile: opts.logFile });
      started.push(r);
      app.use(ROLE_PREFIX[role], r.router);
    }
    ready = true;
  } catch (e) {
    await Promise.allSettled(started.map((r) => r.close()));
    await new Promise((r) => server.close(r));
    throw e;
  }
  return {
    url: publicUrl,
    port,
    roles: opts.roles,
    routers: Object.fromEntries(started.map((r) => [r.role, r.router])),
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await Promise.allSettled(started.map((r) => r.close()));
    },
  };
}

/**
 * GET /healthz of every role: `status` "ok", or "degraded" when an HSM token a role holds
 * sessions on is gone (with since / lastError per token). HTTP 200 once every role is mounted
 * (503 `starting` before): a degraded token stops some operations (they answer 503 / OCSP tryLater), not the role
 * — the repository keeps serving CRLs and pre-signed OCSP responses — so a load balancer should
 * not take it out of rotation; monitoring reads `status`.
 */
export function healthReport(roles: readonly RoleServer[]): { status: "ok" | "degraded"; roles: string[]; hsm: TokenHealthReport[] } {
  const byToken = new Map<string, TokenHealthReport>();
  for (const r of roles) {
    // Several roles of one process may share a token's view (--role all): report each token once, the worst view.
    for (const h of r.health?.().hsm ?? []) {
      const seen = byToken.get(h.token);
      if (!seen || (seen.state === "ok" && h.state === "degraded")) byToken.set(h.token, h);
    }
  }
  const hsm = [...byToken.values()];
  return { status: hsm.some((h) => h.state === "degraded") ? "degraded" : "ok", roles: roles.map((r) => r.role), hsm };
}
