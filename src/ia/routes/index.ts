/**
 * The IA console's routes (issue 3 item 5, issue 4 item 5), mounted by createIaServer on the
 * console foundation. IA operators work here; auditors read (every GET) and change nothing; any
 * other role that signs in (admin) gets 403 on every IA route.
 */
import type { Router } from "express";
import type { ConsoleKit } from "../../web/console/kit.ts";
import { mountCaRoutes } from "./cas.ts";
import type { IaGuards, IaRouteDeps } from "./common.ts";
import { mountDeliveryRoutes } from "./deliveries.ts";
import { mountQueueRoutes } from "./queue.ts";
import { mountCardRoutes } from "../../registration/card-routes.ts";

/** Registers every IA route and its navigation entry on `router`. */
export function mountIaRoutes(router: Router, kit: ConsoleKit, deps: IaRouteDeps): void {
  const guard: IaGuards = { read: kit.requireRole("ia_operator", "auditor"), write: kit.requireRole("ia_operator") };
  const roles = ["ia_operator", "auditor"] as const;
  kit.addNav({ path: "/queue", label: "Issuance queue", labelJa: "発行キュー", roles });
  kit.addNav({ path: "/deliveries", label: "Deliveries", labelJa: "配送", roles });
  kit.addNav({ path: "/cas", label: "CAs and CRLs", labelJa: "認証局・CRL", roles });
  mountQueueRoutes(router, kit, deps, guard);
  mountDeliveryRoutes(router, kit, deps, guard);
  mountCaRoutes(router, kit, deps, guard);
  // Card pages with their lifecycle (issue 13 §1); the IA records spoiled and destroyed cards.
  mountCardRoutes(router, kit, { readers: [...roles], writers: ["ia_operator"] });
}
