/**
 * Server-side views with handlebars (one private Handlebars environment per renderer; no
 * express-handlebars). Layout: views/layouts/<layout>.hbs receives the page as `{{{body}}}`.
 * Partials: every views/partials/**.hbs, named by its path without extension ("field",
 * "forms/address"). Views: views/<name>.hbs, e.g. "lra/applications", "auth/login".
 * `{{…}}` escapes HTML; only `{{{body}}}` in the layout is raw. Templates are compiled once and
 * cached when `cache` is true (production), else re-read on each render (editing views live).
 *
 * Helpers:
 *   {{t "key" name=value}}      message in the page language (src/web/i18n.ts)
 *   {{loc obj}}                 obj.messageJa or obj.message by language (errors, field issues)
 *   {{url "/path"}}             console base path + path ("/lra/path")
 *   {{staticUrl "console.css"}} URL of a static file with its content hash (?v=…) for long caching
 *   {{date d}} {{datetime d}}   Date/ISO string as "2026-11-22" / "2026-11-22 14:30" (Japan time)
 *   {{eq a b}} {{ne a b}} {{and a b}} {{or a b}} {{not a}} {{includes list x}}
 *   {{fieldError "field"}}      the page's issue message for a form field, if any (see ConsoleKit.formView)
 */
import fs from "node:fs";
import path from "node:path";
import Handlebars from "handlebars";
import type { Catalog, Lang } from "./i18n.ts";
import { localized } from "./i18n.ts";

export interface ViewRendererOptions {
  /** The views/ directory. */
  viewsDir: string;
  catalog: Catalog;
  /** Cache compiled templates (production). */
  cache: boolean;
  /** Maps a static file name to its URL (with content hash); see the staticUrl helper. */
  staticUrl(file: string): string;
}

/** Data every page gets (set by the console router); views may rely on these names. */
export interface PageContext {
  lang: Lang;
  /** Console base path, e.g. "/lra". */
  base: string;
  [key: string]: unknown;
}

export interface ViewRenderer {
  /** Renders views/<view>.hbs with `data`, inside views/layouts/<layout>.hbs unless layout is false. */
  render(view: string, data: PageContext, layout?: string | false): string;
}

const JST = "Asia/Tokyo";

function toDate(v: unknown): Date | undefined {
  if (v instanceof Date) return v;
  if (typeof v === "string" || typeof v === "number") {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}

function formatJst(d: Date, withTime: boolean): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: JST, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  const date = `${parts.year}-${parts.month}-${parts.day}`;
  return withTime ? `${date} ${parts.hour}:${parts.minute}` : date;
}

function listFiles(dir: string, ext: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(ext)).map((f) => f.split(path.sep).join("/"));
}

/**
 * Creates a renderer over `viewsDir`. Throws on render when a view or layout does not exist or
 * a template does not compile (the error names the file).
 */
export function createViewRenderer(opts: ViewRendererOptions): ViewRenderer {
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  let hb: typeof Handlebars | undefined;

  const env = (): typeof Handlebars => {
    if (hb && opts.cache) return hb;
    const h = Handlebars.create();
    const root = (o: Handlebars.HelperOptions) => o.data.root as PageContext;
    h.registerHelper("t", function (key: string, o: Handlebars.HelperOptions) {
      return opts.catalog.t(root(o).lang, String(key), o.hash);
    });
    h.registerHelper("loc", (m: { message: string; messageJa?: string } | undefined, o: Handlebars.HelperOptions) => (m ? localized(root(o).lang, m) : ""));
    h.registerHelper("url", (p: string, o: Handlebars.HelperOptions) => `${root(o).base}${p === "/" ? "/" : String(p)}`);
    h.registerHelper("staticUrl", (file: string) => opts.staticUrl(String(file)));
    h.registerHelper("date", (d: unknown) => {
      const x = toDate(d);
      return x ? formatJst(x, false) : "";
    });
    h.registerHelper("datetime", (d: unknown) => {
      const x = toDate(d);
      return x ? formatJst(x, true) : "";
    });
    h.registerHelper("eq", (a: unknown, b: unknown) => a === b);
    h.registerHelper("ne", (a: unknown, b: unknown) => a !== b);
    h.registerHelper("and", (a: unknown, b: unknown) => Boolean(a) && Boolean(b));
    h.registerHelper("or", (a: unknown, b: unknown) => Boolean(a) || Boolean(b));
    h.registerHelper("not", (a: unknown) => !a);
    h.registerHelper("includes", (list: unknown, x: unknown) => Array.isArray(list) && list.includes(x));
    h.registerHelper("fieldError", (field: string, o: Handlebars.HelperOptions) => {
      const issues = (root(o).issues ?? []) as { field: string; message: string; messageJa?: string }[];
      // An array field's issues ("redirectUris.1") belong to the field that holds the list.
      const hit = issues.find((i) => i.field === field || (i.field.startsWith(`${field}.`) && /^\d+$/.test(i.field.slice(field.length + 1))));
      return hit ? localized(root(o).lang, hit) : "";
    });
    const partialsDir = path.join(opts.viewsDir, "partials");
    for (const f of listFiles(partialsDir, ".hbs")) {
      h.registerPartial(f.replace(/\.hbs$/, ""), fs.readFileSync(path.join(partialsDir, f), "utf8"));
    }
    hb = h;
    compiled.clear();
    return h;
  };

  const template = (name: string): HandlebarsTemplateDelegate => {
    const h = env();
    const hit = compiled.get(name);
    if (hit) return hit;
    if (!/^[\w-]+(\/[\w-]+)*$/.test(name)) throw new Error(`invalid view name "${name}"`);
    const file = path.join(opts.viewsDir, `${name}.hbs`);
    let t: HandlebarsTemplateDelegate;
    try {
      t = h.compile(fs.readFileSync(file, "utf8"), { strict: false, preventIndent: true });
    } catch (e) {
      throw new Error(`view ${name}: ${(e as Error).message}`);
    }
    if (opts.cache) compiled.set(name, t);
    return t;
  };

  return {
    render(view, data, layout = "layouts/console") {
      const body = template(view)(data);
      if (layout === false) return body;
      return template(layout.includes("/") ? layout : `layouts/${layout}`)({ ...data, body });
    },
  };
}
