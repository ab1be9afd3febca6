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
 *   {{date d}} {{datetime d}}   the one console date format (date-format.ts): "2026年11月22日" /
 *                               "2026年11月22日 14:30" (Japan time; English "22 Nov 2026 14:30")
 *   {{dateEra d}}               a date with its era year (birth dates): "1980年（昭和55年）1月2日"
 *   {{fieldLabel "field"}}      the label of a form field (locale key field.<name>), for error summaries
 *   {{eq a b}} {{ne a b}} {{and a b}} {{or a b}} {{not a}} {{includes list x}}
 *   {{fieldError "field"}}      the page's issue message for a form field, if any (see ConsoleKit.formView)
 */
import fs from "node:fs";
import path from "node:path";
import Handlebars from "handlebars";
import type { Catalog, Lang } from "./i18n.ts";
import { localized } from "./i18n.ts";
import { displayDate, displayDateTime, displayDateWithEra } from "./date-format.ts";

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

const FIELD_LABEL_PREFIXES = ["field.", "app.field.", "app.identity.", "revocation.", "app.docs."] as const;

export interface ViewRenderer {
  /** Renders views/<view>.hbs with `data`, inside views/layouts/<layout>.hbs unless layout is false. */
  render(view: string, data: PageContext, layout?: string | false): string;
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
    // One date format across the consoles (date-format.ts, issue 12 §4).
    h.registerHelper("date", (d: unknown, o: Handlebars.HelperOptions) => displayDate(d, root(o).lang));
    h.registerHelper("datetime", (d: unknown, o: Handlebars.HelperOptions) => displayDateTime(d, root(o).lang));
    h.registerHelper("dateEra", (d: unknown, o: Handlebars.HelperOptions) => displayDateWithEra(d, root(o).lang));
    h.registerHelper("eq", (a: unknown, b: unknown) => a === b);
    h.registerHelper("ne", (a: unknown, b: unknown) => a !== b);
    h.registerHelper("and", (a: unknown, b: unknown) => Boolean(a) && Boolean(b));
    h.registerHelper("or", (a: unknown, b: unknown) => Boolean(a) || Boolean(b));
    h.registerHelper("not", (a: unknown) => !a);
    h.registerHelper("includes", (list: unknown, x: unknown) => Array.isArray(list) && list.includes(x));
    // The error summary names each field (issue 12 §5): the first locale key that exists of
    // field.<name>, app.field.<name>, app.identity.<name>, revocation.<name>, app.docs.<name>.
    h.registerHelper("fieldLabel", (field: string, o: Handlebars.HelperOptions) => {
      const name = String(field).split(".")[0];
      for (const prefix of FIELD_LABEL_PREFIXES) {
        const key = `${prefix}${name}`;
        const text = opts.catalog.t(root(o).lang, key);
        if (text !== key) return text;
      }
      return name;
    });
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
