/**
 * Who acts: the `actor` and `role` written into every audit record (DESIGN §8). One type for the
 * whole code base — an operator (`auditActor` in src/pipeline/operator.ts), the CLI (`cliActor`),
 * or a system worker ("system:…").
 */
export interface Actor {
  /** Operator username, "cli:<user>" or "system:<worker>". */
  actor: string;
  /** The operator role, "cli" or "system". */
  role: string;
}
