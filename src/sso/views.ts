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

/** The login page's card-agent script (views/sso/card-agent-login.js), served as a file. */
export const CARD_AGENT_LOGIN_SCRIPT = fs.readFileSync(path.join(VIEWS_DIR, "sso", "card-agent-login.js"), "utf8");

/** The texts of `lang`. */
export const textsFor = (lang: Lang): Record<string, string> => texts[lang];

/**
 * Picks the language from ?lang=, then the hpki_lang cookie, then the authorization request's
 * ui_locales (OIDC Core §3.1.2.1: space-separated BCP 47 tags, first supported wins), else Japanese.
 */
export function languageOf(query: unknown, cookieHeader: string | undefined, uiLocales?: unknown): Lang {
  const q = (query as { lang?: unknown } | undefined)?.lang;
  if (q === "en" || q === "ja") return q;
  const c = /(?:^|;\s*)hpki_lang=(en|ja)(?:;|$)/.exec(cookieHeader ?? "");
  if (c) return c[1] as Lang;
  if (typeof uiLocales === "string") {
    for (const tag of uiLocales.trim().split(/\s+/)) {
      const primary = tag.toLowerCase().split("-")[0];
      if (primary === "ja" || primary === "en") return primary;
    }
  }
  return "ja";
}

/** Renders views/sso/<name>.hbs inside the layout with `data` and the language's texts. */
export function renderPage(name: string, lang: Lang, data: Record<string, unknown>): string {
  const t = texts[lang];
  const body = template(name)({ ...data, t, lang });
  return template("layout")({ body, t, lang, otherLang: lang === "ja" ? "en" : "ja" });
}
