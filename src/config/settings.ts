/**
 * Value kinds of the configuration schema (schema.ts): each is a zod schema for one environment
 * variable's text plus what it expects, in English and Japanese, for the error message that names
 * the variable. An empty value counts as unset (as `VAR= hpki …` does in a shell).
 */
import { z } from "zod";

/** One environment variable: its zod schema, a description for the README table and its default. */
export interface Setting<T = unknown> {
  schema: z.ZodType<T>;
  /** What a valid value looks like: for the bilingual error message. */
  expect: { en: string; ja: string };
  /** One line for the README's configuration table (Markdown allowed). */
  description: string;
  /** The default as documented (the schema applies it); undefined = unset. */
  default?: string;
  /** Never echo the value (PINs, secrets). */
  secret?: boolean;
}

/** The settings of one area (core, hsm, sso…), keyed by variable name. */
export type Area = Record<string, Setting>;

/** Optional fields of a Setting a kind constructor accepts. */
type Extra = Partial<Omit<Setting, "schema" | "expect" | "description">>;

function setting<T>(schema: z.ZodType<T>, expect: Setting["expect"], description: string, extra: Extra = {}): Setting<T> {
  return { schema, expect, description, ...extra };
}

/** A non-empty string (a label, a path, an address). */
export function text(description: string, extra: Extra = {}): Setting<string | undefined> {
  return setting(z.string().min(1).optional(), { en: "a non-empty text", ja: "空でない文字列を指定してください" }, description, extra);
}

/** A whole number in [min, max] (e.g. a port, milliseconds); "abc", "1e3", "NaN" and "1.5" are refused. */
export function int(min: number, max: number, description: string, extra: Extra = {}): Setting<number | undefined> {
  const schema = z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional();
  return setting(schema, { en: `a whole number from ${min} to ${max}`, ja: `${min}〜${max} の整数を指定してください` }, description, extra);
}

/** An absolute URL whose scheme is one of `protocols` (e.g. ["http:", "https:"]). */
export function url(protocols: string[], description: string, extra: Extra = {}): Setting<string | undefined> {
  const schema = z
    .string()
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    })
    .optional();
  const schemes = protocols.map((p) => p.replace(/:$/, "")).join(" / ");
  return setting(schema, { en: `a ${schemes} URL`, ja: `${schemes} の URL を指定してください` }, description, extra);
}

/** A comma-separated list; blanks around items dropped. */
export function list(description: string, extra: Extra = {}): Setting<string[]> {
  const schema = z
    .string()
    .optional()
    .transform((v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []));
  return setting(schema, { en: "a comma-separated list", ja: "カンマ区切りで指定してください" }, description, extra);
}

/** on/off (also 1/0, true/false, yes/no), default `dflt`. */
export function flag(dflt: boolean, description: string): Setting<boolean> {
  const schema = z
    .string()
    .regex(/^(on|off|1|0|true|false|yes|no)$/i)
    .optional()
    .transform((v) => (v === undefined ? dflt : /^(on|1|true|yes)$/i.test(v)));
  return setting(schema, { en: "on or off", ja: "on または off を指定してください" }, description, { default: dflt ? "on" : "off" });
}

/** One of `values`. */
export function oneOf<const V extends readonly [string, ...string[]]>(values: V, description: string, extra: Extra = {}): Setting<V[number] | undefined> {
  return setting(z.enum(values).optional(), { en: `one of ${values.join(", ")}`, ja: `${values.join("、")} のいずれかを指定してください` }, description, extra);
}
