/**
 * Registry of the role servers `hpki serve` can start. Loaded lazily so a process imports only
 * the roles it runs (the repository loads only the OCSP token, never the CA keys; the LRA never
 * loads the IA).
 */
import type { RoleFactory, RoleName } from "./role.ts";

export const ROLE_FACTORIES: Partial<Record<RoleName, () => Promise<RoleFactory>>> = {
  lra: () => import("../lra/server.ts").then((m) => m.createLraServer),
  ra: () => import("../ra/server.ts").then((m) => m.createRaServer),
  ia: () => import("../ia/server.ts").then((m) => m.createIaServer),
  sso: () => import("../sso/server.ts").then((m) => m.createSsoServer),
  repo: () => import("../repo/server.ts").then((m) => m.createRepoServer),
  pobox: () => import("../pobox/server.ts").then((m) => m.createPoboxServer),
};
