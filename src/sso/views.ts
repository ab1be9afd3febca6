/**
 * Server-rendered pages of the SSO center: handlebars templates in views/sso, texts in
 * views/sso/locales/{ja,en}.json ("sso" section; the consoles' flat catalogs live in views/locales). Japanese by default; `?lang=en` (remembered in the
 * hpki_lang cookie) switches to English. Handlebars escapes every {{value}}.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";

export type Lang = "ja" | "en";

const VIEWS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "views");

const texts: Record<Lang, Record<string, string>> = {
  ja: JSON.parse(fs.readFileSync(path.join(VIEWS_DIR, "sso", "locales", "ja.json"), "utf8")).sso,
  en: JSON.parse(fs.readFileSync(path.join(VIEWS_DIR, "sso", "locales", "en.json"), "utf8")).sso,
};
const templates = new Map<string, Handlebars.TemplateDelegate>();

function template(name: string): Handlebars.TemplateDelegate {
  let t = templates.get(name);
  if (!t) {
    t = Handlebars.compile(fs.readFileSync(path.join(VIEWS_DIR, "sso", `${name}.hbs`), "utf8"), { strict: false });
    templates.set(name, t);
  }
  return t;
}

/** The texts of `lang`. */
export const textsFor = (lang: Lang): Record<string, string> => texts[lang];

/** Picks the language from ?lang=, then the hpki_lang cookie, else Japanese. */
export function languageOf(query: unknown, cookieHeader: string | undefined): Lang {
  const q = (query as { lang?: unknown } | undefined)?.lang;
  if (q === "en" || q === "ja") return q;
  return /(?:^|;\s*)hpki_lang=en(?:;|$)/.test(cookieHeader ?? "") ? "en" : "ja";
}

/** Renders views/sso/<name>.hbs inside the layout with `data` and the language's texts. */
export function renderPage(name: string, lang: Lang, data: Record<string, unknown>): string {
  const t = texts[lang];
  const body = template(name)({ ...data, t, lang });
  return template("layout")({ body, t, lang, otherLang: lang === "ja" ? "en" : "ja" });
}
