/**
 * The LRA console (地域受付審査局): one express router at /lra for the roles lra_reviewer and
 * lra_manager of one regional association (the auditor reads; see src/web/console/router.ts for
 * sign-in, sessions, CSRF and errors). Routes: ./routes.ts.
 */
import { loadPolicies } from "../policies.ts";
import { consoleRoleServer, createConsoleRouter } from "../web/console/router.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { mountLraRoutes } from "./routes.ts";

/** Creates the LRA console role server (registered as "lra" in src/web/roles.ts). */
export async function createLraServer(deps: RoleDeps): Promise<RoleServer> {
  const { hcRoles } = loadPolicies();
  const router = createConsoleRouter(deps, {
    console: "lra",
    roles: ["lra_reviewer", "lra_manager"],
    mount: (r, kit) => mountLraRoutes(r, kit, hcRoles),
  });
  return consoleRoleServer("lra", router);
}
