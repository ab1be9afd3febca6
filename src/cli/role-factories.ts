/**
 * Registry of the role servers `hpki serve` can start. Loaded lazily so a process imports only
 * the roles it runs (the repository loads only the OCSP token, never the CA keys; the LRA never
 * loads the IA).
 */
import type { RoleFactory, RoleName } from "../web/role.ts";
import { startServer as startHttpServer, type StartedServer, type StartServerOptions } from "../web/server.ts";
export type { StartedServer } from "../web/server.ts";

export const ROLE_FACTORIES: Partial<Record<RoleName, () => Promise<RoleFactory>>> = {
  lra: () => import("../lra/server.ts").then((m) => m.createLraServer),
  ra: () => import("../ra/server.ts").then((m) => m.createRaServer),
  ia: () => import("../ia/server.ts").then((m) => m.createIaServer),
  sso: () => import("../sso/server.ts").then((m) => m.createSsoServer),
  repo: () => import("../repo/server.ts").then((m) => m.createRepoServer),
  pobox: () => import("../pobox/server.ts").then((m) => m.createPoboxServer),
};

/**
 * Starts `hpki serve`'s HTTP server with the roles of this build (src/web/server.ts with
 * {@link ROLE_FACTORIES} injected). Same options and errors as the plumbing's startServer.
 */
export function startServer(opts: Omit<StartServerOptions, "factories">): Promise<StartedServer> {
  return startHttpServer({ ...opts, factories: ROLE_FACTORIES });
}
