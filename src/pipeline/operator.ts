/**
 * Operators and their trusted roles (HPKI CP §5.2 separation of duties, DESIGN §3). One account
 * holds one role; LRA roles are scoped to one regional association (地域受付審査局), and every
 * service call receives the acting Operator so role and scope are checked on the server.
 */

import type { Actor } from "../audit/actor.ts";

/** The trusted roles, as stored in operators.role. */
export const OPERATOR_ROLES = [
  "lra_reviewer", // 地域受付審査局 審査担当: intake, identity + licence review, approve/reject
  "lra_manager", // 地域受付審査局 責任者: signs off and forwards LRA batches; handover; receipts
  "ra_officer", // 登録局 担当: review, create issuance requests, revocation requests
  "ra_approver", // 登録局 承認者: approves what another officer created (two-person rule)
  "ia_operator", // 発行局 オペレータ: issues cards, delivery batches
  "auditor", // 監査人: reads everything, changes nothing
  "admin", // 管理者: operators, regional associations, configuration
] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/** Which console (authority) each role signs in to. */
export const CONSOLE_OF_ROLE: Record<OperatorRole, "lra" | "ra" | "ia" | "audit" | "admin"> = {
  lra_reviewer: "lra",
  lra_manager: "lra",
  ra_officer: "ra",
  ra_approver: "ra",
  ia_operator: "ia",
  auditor: "audit",
  admin: "admin",
};

/** The authenticated operator behind a request or a service call. */
export interface Operator {
  id: number;
  username: string;
  displayName: string;
  role: OperatorRole;
  /** The regional association an LRA role is scoped to; null for every other role. */
  lraId: number | null;
}

/** True for the roles scoped to one regional association. */
export function isLraRole(role: OperatorRole): boolean {
  return role === "lra_reviewer" || role === "lra_manager";
}

/** The audit actor fields of an operator (src/audit/log.ts AuditEvent). */
export function auditActor(op: Operator): Actor {
  return { actor: op.username, role: op.role };
}
