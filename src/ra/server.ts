/**
 * The RA console (登録局): one express router at /ra for the roles ra_officer and
 * ra_approver (the auditor reads; see src/web/console/router.ts for
 * sign-in, sessions, CSRF and errors). Routes: ./routes.ts (registration), ./revocation-routes.ts
 * (revocation requests), ./expiry-routes.ts (expiring certificates, renewal).
 */
import { loadPolicies } from "../policies.ts";
import { consoleRoleServer, createConsoleRouter } from "../web/console/router.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { mountExpiryRoutes } from "../registration/expiry-routes.ts";
import { mountRevocationRoutes } from "../registration/revocation-routes.ts";
import { mountCardReplacementRoutes } from "../registration/card-replacement-routes.ts";
import { mountRaRoutes } from "./routes.ts";

/** Creates the RA console role server (registered as "ra" in src/cli/role-factories.ts). */
export async function createRaServer(deps: RoleDeps): Promise<RoleServer> {
  const { hcRoles } = loadPolicies();
  const router = createConsoleRouter(deps, {
    console: "ra",
    roles: ["ra_officer", "ra_approver"],
    mount: (r, kit) => {
      mountRaRoutes(r, kit, hcRoles);
      mountRevocationRoutes(r, kit);
      mountExpiryRoutes(r, kit, hcRoles);
      mountCardReplacementRoutes(r, kit, hcRoles);
    },
  });
  return consoleRoleServer("ra", router);
}
