/**
 * Console texts in Japanese (default) and English. Messages live in views/locales/: the common
 * ja.json / en.json (layout, sign-in, errors) plus one pair per console or feature,
 * <name>.ja.json / <name>.en.json (e.g. lra.ja.json), merged over the common ones so each route
 * module owns its own file. Keys are flat dotted strings; "{name}" placeholders are filled from
 * the variables given.
 *
 * The language of a request: `?lang=ja|en` (also stored in the LANG_COOKIE cookie for later
 * requests), else that cookie, else Japanese.
 */
import fs from "node:fs";
import path from "node:path";
import type { Request, Response } from "express";

export const LANGS = ["ja", "en"] as const;
export type Lang = (typeof LANGS)[number];
export const DEFAULT_LANG: Lang = "ja";
export const LANG_COOKIE = "hpki_lang";

export type Messages = Record<string, string>;

export interface Catalog {
  messages: Record<Lang, Messages>;
  /** The message `key` in `lang` (falls back to Japanese, then to the key itself), placeholders filled. */
  t(lang: Lang, key: string, vars?: Record<string, unknown>): string;
}

/** True when `v` is one of LANGS. */
export function isLang(v: unknown): v is Lang {
  return typeof v === "string" && (LANGS as readonly string[]).includes(v);
}

/** Fills "{name}" placeholders; unknown names stay as written. */
export function interpolate(text: string, vars: Record<string, unknown> = {}): string {
  return text.replace(/\{(\w+)\}/g, (m, k: string) => (vars[k] === undefined || vars[k] === null ? m : String(vars[k])));
}

/**
 * Loads the message catalog from `localesDir` (views/locales). Throws when a JSON file is
 * malformed or a value is not a string (a broken locale must not reach operators).
 */
export function loadCatalog(localesDir: string): Catalog {
  const messages: Record<Lang, Messages> = { ja: {}, en: {} };
  const files = fs.existsSync(localesDir) ? fs.readdirSync(localesDir).sort() : [];
  // Common files first, then per-console files on top.
  const ordered = [...files.filter((f) => /^(ja|en)\.json$/.test(f)), ...files.filter((f) => /^[\w-]+\.(ja|en)\.json$/.test(f))];
  for (const f of ordered) {
    const lang = f.replace(/\.json$/, "").split(".").at(-1) as Lang;
    const parsed = JSON.parse(fs.readFileSync(path.join(localesDir, f), "utf8")) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`locale ${f}: expected an object of strings`);
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== "string") throw new Error(`locale ${f}: value of "${k}" is not a string`);
      messages[lang][k] = v;
    }
  }
  return {
    messages,
    t(lang, key, vars) {
      const text = messages[lang][key] ?? messages[DEFAULT_LANG][key] ?? key;
      return interpolate(text, vars);
    },
  };
}

/**
 * Picks the language of `req` (see the module comment); when `?lang=` names a language, also sets
 * the LANG_COOKIE cookie (one year, path /) on `res`. Needs cookie-parser.
 */
export function requestLanguage(req: Request, res: Response, secure: boolean): Lang {
  const q = req.query.lang;
  if (isLang(q)) {
    if (req.cookies?.[LANG_COOKIE] !== q) {
      res.cookie(LANG_COOKIE, q, { path: "/", maxAge: 365 * 24 * 3600_000, sameSite: "lax", httpOnly: true, secure });
    }
    return q;
  }
  const c = req.cookies?.[LANG_COOKIE];
  return isLang(c) ? c : DEFAULT_LANG;
}

/** The message of a bilingual object ({message, messageJa}, e.g. an error or field issue) in `lang`. */
export function localized(lang: Lang, m: { message: string; messageJa?: string }): string {
  return lang === "ja" && m.messageJa ? m.messageJa : m.message;
}
