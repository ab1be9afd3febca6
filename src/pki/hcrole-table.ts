/**
 * hcRole code table (policies/hcrole-codes.yaml): the English codeDataFreeText strings of the HPKI
 * hcRole attribute with their Japanese names (HPKI-PROFILE.md §6.4; authoritative source: MHLW
 * signature CP 1.91 §7.1). Pure: YAML text in, validated map out.
 */
import { readYamlDocument } from "./yaml-document.ts";
import { z } from "zod";

/** One table row. `code` is the exact string written into certificates. */
export interface HcRoleCode {
  code: string;
  ja: string;
  kind: "national-qualification" | "manager";
  status: "confirmed" | "confirmed-secondary" | "unverified";
  note?: string;
}

/** Thrown by parseHcRoleTable on invalid YAML, a schema violation or a duplicate code. */
export class HcRoleTableError extends Error {
  override name = "HcRoleTableError";
}

// Codes go verbatim into certificates, so surrounding or control whitespace is refused.
const text = z
  .string()
  .min(1)
  .transform((s) => s.normalize("NFC"))
  .refine((s) => s === s.trim() && !/[\u0000-\u001f\u007f]/.test(s), "no surrounding whitespace or control characters");

const rowSchema = z.strictObject({
  code: text,
  ja: text,
  kind: z.enum(["national-qualification", "manager"]),
  status: z.enum(["confirmed", "confirmed-secondary", "unverified"]),
  note: z.string().optional(),
});

const tableSchema = z.strictObject({ codes: z.array(rowSchema).min(1) });

/**
 * Parses and validates the YAML table (`codes:` list of {code, ja, kind, status, note?}).
 * Codes and Japanese names are NFC-normalised; the map is keyed by the normalised code and keeps
 * file order. Throws HcRoleTableError when the YAML does not parse, a row breaks the schema
 * (unknown key, kind or status, empty code), or two rows have the same code after NFC.
 */
export function parseHcRoleTable(yamlText: string): ReadonlyMap<string, HcRoleCode> {
  const parsed = readYamlDocument(yamlText, tableSchema);
  if (!parsed.ok) throw new HcRoleTableError(`hcRole table: ${parsed.issues.join("; ")}`);
  const map = new Map<string, HcRoleCode>();
  for (const row of parsed.data.codes) {
    if (map.has(row.code)) throw new HcRoleTableError(`hcRole table: duplicate code ${JSON.stringify(row.code)}`);
    map.set(row.code, row);
  }
  return map;
}
