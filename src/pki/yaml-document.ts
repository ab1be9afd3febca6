/**
 * One way to read the reviewed YAML files in policies/ (profiles, hcRole table, ceremony files,
 * CRL policy): parse, validate with a zod schema, and report every problem as "field: message"
 * so the person who edited the file sees all of them at once. Each caller wraps the issues in
 * its own error type.
 */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";

export type YamlDocumentResult<T> = { ok: true; data: T } | { ok: false; issues: string[] };

/** Parses `text` and validates it against `schema`. Never throws for bad input: returns issues. */
export function readYamlDocument<S extends z.ZodType>(text: string, schema: S): YamlDocumentResult<z.infer<S>> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (e) {
    return { ok: false, issues: [`YAML: invalid YAML (${(e as Error).message})`] };
  }
  const parsed = schema.safeParse(doc);
  if (parsed.success) return { ok: true, data: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(document)"}: ${i.message}`),
  };
}
