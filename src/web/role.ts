/**
 * What `hpki serve` needs from an authority role (DESIGN §1): an express router mounted at the
 * role's fixed path prefix, and a close hook for what the role opened (HSM sessions, timers).
 * Roles share only the database connection handed to them; they never import each other.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Router } from "express";
import type { Config } from "../config.ts";
import type { TokenHealthReport } from "../hsm/health.ts";
import type { Db } from "../store/db.ts";

export const ROLE_NAMES = ["lra", "ra", "ia", "sso", "repo", "pobox"] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/**
 * Path prefix of each role. The repository answers at the root because certificates carry its
 * URLs (CRL distribution points such as http://host/crl/<ca>.crl, /ocsp); consoles live under
 * their role's name, so `--role all` and single-role processes expose the same URLs.
 */
export const ROLE_PREFIX: Record<RoleName, string> = {
  repo: "/",
  lra: "/lra",
  ra: "/ra",
  ia: "/ia",
  sso: "/sso",
  pobox: "/pobox",
};

export interface RoleDeps {
  cfg: Config;
  db: Db;
  /** Absolute base URL the process is reachable at, e.g. "http://localhost:8080" (no trailing /). */
  publicUrl: string;
  /** File the roles' logs are appended to instead of stdout (role-log.ts); unset: stdout. */
  logFile?: string;
}

export interface RoleServer {
  role: RoleName;
  router: Router;
  /**
   * Optional hot path run before express (whose routing costs several times a bare node:http
   * request): returns true when it took the request and will answer it. Only for public,
   * stateless endpoints with their own parsing (the OCSP responder); everything else uses `router`.
   */
  preRoute?(req: IncomingMessage, res: ServerResponse): boolean;
  /**
   * The role's dependencies' health for GET /healthz: the HSM tokens it holds sessions on (none
   * for lra and ra). Cheap and synchronous: it reports what the pools last saw, it does not probe.
   */
  health?(): { hsm: TokenHealthReport[] };
  /** Releases what the role opened; the database is closed by the caller. */
  close(): Promise<void>;
}

export type RoleFactory = (deps: RoleDeps) => Promise<RoleServer>;
