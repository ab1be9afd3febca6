/**
 * The LRA console (地域受付審査局): one express router at /lra for the roles lra_reviewer and
 * lra_manager of one regional association (the auditor reads; see src/web/console/router.ts for
 * sign-in, sessions, CSRF and errors). Routes: ./routes.ts, and the revocation-request and
 * expiry pages shared with the RA console (src/web/console), scoped to the association.
 */
import { loadPolicies } from "../policies.ts";
import { mountExpiryRoutes } from "../registration/expiry-routes.ts";
import { mountRevocationRoutes } from "../registration/revocation-routes.ts";
import { mountCardReplacementRoutes } from "../registration/card-replacement-routes.ts";
import { consoleRoleServer, createConsoleRouter } from "../web/console/router.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { mountLraRoutes } from "./routes.ts";

/** Creates the LRA console role server (registered as "lra" in src/cli/role-factories.ts). */
export async function createLraServer(deps: RoleDeps): Promise<RoleServer> {
  const { hcRoles } = loadPolicies();
  const router = createConsoleRouter(deps, {
    console: "lra",
    roles: ["lra_reviewer", "lra_manager"],
    mount: (r, kit) => {
      mountLraRoutes(r, kit, hcRoles);
      // Revocation requests filed for the association's subscribers, and their expiring cards.
      mountRevocationRoutes(r, kit);
      mountExpiryRoutes(r, kit, hcRoles);
      mountCardReplacementRoutes(r, kit, hcRoles);
    },
  });
  return consoleRoleServer("lra", router);
}
