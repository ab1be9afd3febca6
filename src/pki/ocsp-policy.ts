/**
 * The OCSP policy (policies/ocsp.yaml): responder certificate lifetime, pre-signed response
 * validity, repository cache lifetime. Strict parsing: unknown keys are errors.
 */
import { z } from "zod";
import { readYamlDocument } from "./yaml-document.ts";

const schema = z.strictObject({
  version: z.literal(1),
  responder: z.strictObject({
    keyAlgorithm: z.enum(["RSA-2048", "P-256"]),
    validityDays: z.number().int().min(1).max(366),
    renewBeforeDays: z.number().int().min(0),
    organization: z.string().min(1),
  }),
  responses: z.strictObject({
    validityHours: z.number().int().min(1).max(24 * 14),
    refreshBeforeHours: z.number().int().min(0),
  }),
  repository: z.strictObject({ crlMaxAgeSeconds: z.number().int().min(0).max(7 * 86400) }),
  /** Live signing (nonce, unknown serial) per source address: token bucket (src/repo/live-limit.ts). */
  live: z.strictObject({
    perSourcePerSecond: z.number().positive().max(100_000),
    burst: z.number().int().min(1).max(100_000),
  }).default({ perSourcePerSecond: 20, burst: 50 }),
});

export type OcspPolicy = Omit<z.infer<typeof schema>, "version">;

/**
 * Parses and validates ocsp.yaml text. Also refuses renewBeforeDays ≥ validityDays and
 * refreshBeforeHours ≥ validityHours (a responder or response would be renewed at once, forever).
 * @throws Error naming `source` and every offending field.
 */
export function parseOcspPolicy(text: string, source: string): OcspPolicy {
  const r = readYamlDocument(text, schema);
  const issues = r.ok ? [] : r.issues;
  if (r.ok && r.data.responder.renewBeforeDays >= r.data.responder.validityDays) issues.push("responder.renewBeforeDays: must be less than validityDays");
  if (r.ok && r.data.responses.refreshBeforeHours >= r.data.responses.validityHours) issues.push("responses.refreshBeforeHours: must be less than validityHours");
  if (!r.ok || issues.length) throw new Error(`${source}: invalid OCSP policy:\n  ${issues.join("\n  ")}`);
  const { version: _version, ...policy } = r.data;
  return policy;
}
