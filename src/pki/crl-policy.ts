/**
 * The CRL policy (policies/crl.yaml): per kind of CA, how long a CRL is valid (nextUpdate) and how
 * long a revoked entry stays after its certificate expired. Strict parsing: unknown keys are errors.
 */
import { readYamlDocument } from "./yaml-document.ts";
import { z } from "zod";

/** Validity and expired-entry rule for one kind of CA. Hours are whole hours. */
export interface CrlPolicyEntry {
  /** nextUpdate = thisUpdate + validityHours (RFC 5280 §5.1.2.5). */
  validityHours: number;
  /** An entry is dropped once thisUpdate is later than its certificate's notAfter + keepExpiredHours. */
  keepExpiredHours: number;
}

/** `root` governs the ARL, `issuing` every issuing CA's CRL. */
export interface CrlPolicy {
  root: CrlPolicyEntry;
  issuing: CrlPolicyEntry;
}

const entry = z.strictObject({
  validityHours: z.number().int().min(1).max(24 * 366),
  keepExpiredHours: z.number().int().min(0),
});
const schema = z.strictObject({ version: z.literal(1), root: entry, issuing: entry });

/** Parses and validates crl.yaml text. @throws Error naming `source` and every offending field. */
export function parseCrlPolicy(text: string, source: string): CrlPolicy {
  const r = readYamlDocument(text, schema);
  if (!r.ok) throw new Error(`${source}: invalid CRL policy:\n  ${r.issues.join("\n  ")}`);
  return { root: r.data.root, issuing: r.data.issuing };
}
