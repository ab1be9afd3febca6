/**
 * Registry of the role servers `hpki serve` can start. Loaded lazily so a process imports only
 * the roles it runs (the repository loads only the OCSP token, never the CA keys; the LRA never
 * loads the IA).
 */
import type { RoleFactory, RoleName } from "./role.ts";

export const ROLE_FACTORIES: Partial<Record<RoleName, () => Promise<RoleFactory>>> = {
  repo: () => import("../repo/server.ts").then((m) => m.createRepoServer),
};
