/**
 * The web foundation of the LRA, RA and IA consoles: one express Router per console, mounted at
 * its ROLE_PREFIX (/lra, /ra, /ia), with, in order:
 *
 *   helmet (strict CSP: script-src 'self', no inline script or style) → /static (views/static,
 *   long-cached, ?v=<content hash>) → cookie-parser + language → express-session (knex store) →
 *   body parsers (urlencoded, JSON; multipart is the route's, with multer) → NUL/lone-surrogate
 *   guard (input-guard.ts, 400) → csrf-csrf on every
 *   unsafe method → /login, /login/card (HPKI card), /logout → sign-in guard (req.operator loaded fresh from the database on
 *   every request: a disabled operator loses access at once) → the route module's routes
 *   (opts.mount) → the console home → 404 → the error handler (typed errors → pages or JSON).
 *
 * Who may sign in: opts.roles plus auditor and admin (read-only/administration everywhere);
 * route modules restrict further with kit.requireRole. See ConsoleKit (./kit.ts) for the API.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import cookieParser from "cookie-parser";
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response, type Router } from "express";
import helmet from "helmet";
import type { Logger } from "pino";
import { roleLogger } from "../role-log.ts";
import { z } from "zod";
import { ForbiddenError, HpkiError, NotFoundError, ValidationError, validationErrorFromZod } from "../../pipeline/errors.ts";
import type { Operator, OperatorRole } from "../../pipeline/operator.ts";
import { getLra, loadActiveOperator } from "../../operators/operators.ts";
import { registerCardLoginRoutes } from "../../card-login/card-login.ts";
import { registerLoginRoutes, safeNextPath } from "../../operators/login.ts";
import { useOperatorSecrets } from "../../operators/operator-secrets.ts";
import { SESSION_MAX_MS, closeSessionStore, consoleCsrf, consoleSecret, consoleSession, sessionStore } from "../auth/session.ts";
import { loadCatalog, localized, requestLanguage, type Lang } from "../i18n.ts";
import { FORM_PAGE_FIELD, resumeUrl, stashForm, stashFormAndSignIn, takeFormStash } from "../auth/form-resume.ts";
import { refuseUnstorableBody } from "../input-guard.ts";
import { ROLE_PREFIX, type RoleDeps, type RoleServer } from "../role.ts";
import { createViewRenderer } from "../views.ts";
import type { ConsoleKit, ConsoleName, FlashKind, NavItem, RenderOptions } from "./kit.ts";

/** The repository's views/ directory. */
export const VIEWS_DIR = path.resolve(import.meta.dirname, "../../../views");

export interface ConsoleRouterOptions {
  console: ConsoleName;
  /** Roles that sign in to this console; auditor and admin are always added. */
  roles: OperatorRole[];
  /** Registers the console's routes (run once, at creation). */
  mount(router: Router, kit: ConsoleKit): void;
  /** Where the router is mounted (cookie path, links); default ROLE_PREFIX[console]. */
  basePath?: string;
  /** views/ directory (default VIEWS_DIR). */
  viewsDir?: string;
  /** Cache compiled templates; default true when NODE_ENV=production. */
  cacheViews?: boolean;
  /** Session/CSRF secret; default consoleSecret(deps.cfg) (HPKI_SESSION_SECRET or a file in HPKI_HOME). */
  sessionSecret?: string;
  /** POST /login attempts per client address and window (default 30 per 15 minutes). */
  loginRateLimit?: { windowMs: number; limit: number };
  /** Session idle timeout in ms (default 30 minutes). */
  sessionIdleMs?: number;
  /** Logger for server errors (default: the role's logger, role-log.ts). */
  logger?: Logger;
}

/** The router with its kit and a close hook (stops the session store's cleanup timer). */
export type ConsoleRouter = Router & { kit: ConsoleKit; close(): Promise<void> };

/** Roles that may sign in to every console. */
export const EVERY_CONSOLE_ROLES: readonly OperatorRole[] = ["auditor", "admin"];

const CONSOLE_TITLE: Record<ConsoleName, { en: string; ja: string }> = {
  lra: { en: "Local Registration Authority console", ja: "地域受付審査局 コンソール" },
  ra: { en: "Registration Authority console", ja: "登録局 コンソール" },
  ia: { en: "Issuing Authority console", ja: "発行局 コンソール" },
  sso: { en: "SSO center administration", ja: "SSOセンター 管理コンソール" },
};

const CSRF_ERROR = () =>
  new HpkiError(
    "The form has expired or did not come from this site. Reload the page and try again.",
    "フォームの有効期限が切れたか、このサイト以外から送信されました。ページを再読み込みしてもう一度お試しください。",
    403,
    "csrf",
  );

/** Maps anything thrown by a route to a typed error (unknown errors → null: a 500). */
export function toHpkiError(err: unknown): HpkiError | null {
  if (err instanceof HpkiError) return err;
  if (err instanceof z.ZodError) return validationErrorFromZod(err);
  const e = err as { code?: string; name?: string; type?: string; status?: number; statusCode?: number; field?: string };
  if (e?.code === "EBADCSRFTOKEN") return CSRF_ERROR();
  if (e?.name === "MulterError") {
    if (e.code === "LIMIT_FILE_SIZE") return new HpkiError("The file is too large.", "ファイルが大きすぎます。", 413, "file_too_large");
    return new ValidationError([{ field: e.field ?? "file", message: `upload refused (${e.code})`, messageJa: "アップロードできませんでした。ファイルの数や形式を確認してください。" }]);
  }
  // The HSM token is away (src/hsm/pool.ts reconnects): a temporary condition, not a server fault.
  if (e?.name === "HsmError" && e.code === "TOKEN_UNAVAILABLE") {
    return new HpkiError((err as Error).message, (err as { messageJa?: string }).messageJa ?? "HSM が一時的に利用できません。しばらくしてからやり直してください。", 503, "hsm_unavailable");
  }
  if (e?.type === "entity.too.large") return new HpkiError("The request is too large.", "送信内容が大きすぎます。", 413, "too_large");
  const status = e?.status ?? e?.statusCode;
  if (status === 404) return new NotFoundError();
  if (typeof status === "number" && status >= 400 && status < 500) return new HpkiError("The request could not be read.", "送信内容を読み取れませんでした。", status, "bad_request");
  return null;
}

/** Static files of views/static: URL with content hash, served with a one-year immutable cache. */
function staticFiles(dir: string, base: string, cache: boolean): { handler: RequestHandler; url(file: string): string } {
  const hashes = new Map<string, string>();
  return {
    handler: express.static(dir, { index: false, maxAge: "365d", immutable: true, etag: true, fallthrough: false, dotfiles: "deny" }),
    url(file) {
      let h = cache ? hashes.get(file) : undefined;
      if (!h) {
        try {
          h = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, file))).digest("hex").slice(0, 12);
        } catch {
          h = "missing";
        }
        hashes.set(file, h);
      }
      return `${base}/static/${file}?v=${h}`;
    },
  };
}

/**
 * Creates the router of one console (see the module comment and ConsoleKit). Mount it at
 * opts.basePath (default ROLE_PREFIX[opts.console]). Throws when the views or locales cannot be
 * loaded. Call close() before closing the database.
 */
export function createConsoleRouter(deps: RoleDeps, opts: ConsoleRouterOptions): ConsoleRouter {
  const base = (opts.basePath ?? ROLE_PREFIX[opts.console]).replace(/\/$/, "");
  const viewsDir = opts.viewsDir ?? VIEWS_DIR;
  const cache = opts.cacheViews ?? deps.cfg.mode === "production";
  const secure = deps.publicUrl.startsWith("https:");
  const secret = opts.sessionSecret ?? consoleSecret(deps.cfg);
  const allowed: OperatorRole[] = [...new Set([...opts.roles, ...EVERY_CONSOLE_ROLES])];
  const log = opts.logger ?? roleLogger(deps, `hpki-${opts.console}`);
  const catalog = loadCatalog(path.join(viewsDir, "locales"));
  const statics = staticFiles(path.join(viewsDir, "static"), base, cache);
  const views = createViewRenderer({ viewsDir, catalog, cache, staticUrl: statics.url });
  const cookieName = `hpki_${opts.console}_sid`;
  const csrf = consoleCsrf({ secret, name: `hpki_${opts.console}_csrf`, cookiePath: base || "/", secure });
  const nav: NavItem[] = [];
  const store = sessionStore(deps.db);
  // Operators' TOTP secrets are sealed in the HSM (operator-secrets.ts): open the key now so the
  // first sign-in finds it; a failure is logged here and answered 503 at sign-in.
  const opsSecrets = useOperatorSecrets(deps.cfg, deps.db);
  opsSecrets.catch((err) => log.error({ err }, "operators' sealing key unavailable: password + TOTP sign-in refused"));
  const consoleTitle = CONSOLE_TITLE[opts.console];

  const router = express.Router() as ConsoleRouter;

  const wantsJson = (req: Request) => req.accepts(["html", "json"]) === "json";
  const langOf = (req: Request): Lang => req.lang ?? "ja";
  /** A form page path inside this console (not sign-in/out), else undefined. */
  const formPagePath = (p: unknown): string | undefined => {
    const safe = safeNextPath(p, base);
    return safe === `${base}/` && p !== `${base}/` ? undefined : /\/log(in|out)(\/|$|\?)/.test(safe) ? undefined : safe;
  };

  const pageContext = (req: Request, res: Response, data: Record<string, unknown>, o: RenderOptions) => {
    const lang = langOf(req);
    const operator = req.operator;
    const flash = (req.session?.flash ?? []).map((f) => ({ kind: f.kind, text: localized(lang, f) }));
    if (req.session?.flash) req.session.flash = undefined;
    const title = o.title ?? consoleTitle;
    const currentPath = `${req.baseUrl}${req.path}`;
    return {
      ...data,
      lang,
      base,
      console: opts.console,
      consoleTitle: lang === "ja" ? consoleTitle.ja : consoleTitle.en,
      title: lang === "ja" ? title.ja : title.en,
      operator,
      roleLabel: operator ? catalog.t(lang, `role.${operator.role}`) : undefined,
      lra: res.locals.lra,
      csrfToken: csrf.token(req, res),
      flash,
      nav: operator ? nav.filter((n) => !n.roles || n.roles.includes(operator.role)).map((n) => ({ href: `${base}${n.path}`, label: lang === "ja" ? n.labelJa : n.label, current: currentPath === `${base}${n.path}` })) : [],
      currentPath,
      langSwitch: { ja: `${currentPath}?lang=ja`, en: `${currentPath}?lang=en` },
      issues: data.issues ?? (res.locals.resumedRefusal as { issues?: unknown[] } | undefined)?.issues ?? [],
      error: data.error ?? (res.locals.resumedRefusal ? { message: res.locals.resumedRefusal.message, messageJa: res.locals.resumedRefusal.messageJa } : undefined),
      values: data.values ?? res.locals.resumedValues ?? {},
      // The form's page, carried by every form (views/partials/csrf.hbs) for form-resume.ts: this
      // page on a GET, the posted one when a refused form is shown again.
      formPage: req.method === "GET" ? currentPath : (formPagePath((req.body as Record<string, unknown> | undefined)?.[FORM_PAGE_FIELD]) ?? currentPath),
    };
  };

  const kit: ConsoleKit = {
    console: opts.console,
    base,
    deps,
    log,
    render(res, view, data = {}, o = {}) {
      const req = res.req;
      res.status(o.status ?? 200);
      if (wantsJson(req)) {
        res.json({ ...data, csrfToken: csrf.token(req, res) });
        return;
      }
      const name = view.includes("/") ? view : `${opts.console}/${view}`;
      res.type("html").send(views.render(name, pageContext(req, res, data, o)));
    },
    requireRole(...roles) {
      return (req, _res, next) => {
        if (req.operator && roles.includes(req.operator.role)) next();
        else next(new ForbiddenError());
      };
    },
    operator(req): Operator {
      if (!req.operator) throw new HpkiError("Sign in first.", "ログインしてください。", 401, "unauthenticated");
      return req.operator;
    },
    asyncHandler(fn) {
      return (req, res, next) => {
        fn(req, res, next).catch(next);
      };
    },
    flash(req, kind: FlashKind, message, messageJa) {
      req.session.flash = [...(req.session.flash ?? []), { kind, message, messageJa }];
    },
    formView(res, view, data = {}) {
      res.locals.hpkiFormView = { view, data };
    },
    resumedValues(res) {
      return res.locals.resumedValues as Record<string, unknown> | undefined;
    },
    addNav(item) {
      nav.push(item);
    },
    url: (p) => `${base}${p}`,
    wantsJson,
  };

  router.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", "data:"],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          // Scanned documents may be shown in a same-origin frame; nothing else embeds us.
          frameSrc: ["'self'"],
          frameAncestors: ["'self'"],
          objectSrc: ["'none'"],
          formAction: ["'self'"],
          baseUri: ["'none'"],
          ...(secure ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      strictTransportSecurity: secure ? { maxAge: 31_536_000, includeSubDomains: true } : false,
      xFrameOptions: { action: "sameorigin" },
    }),
  );
  router.use("/static", statics.handler);
  router.use((req, res, next) => {
    res.set("Cache-Control", "no-store");
    next();
  });
  router.use(cookieParser());
  router.use((req, res, next) => {
    req.lang = requestLanguage(req, res, secure);
    next();
  });
  router.use(consoleSession({ store, secret, name: cookieName, cookiePath: base || "/", secure, idleMs: opts.sessionIdleMs }));
  router.use(express.urlencoded({ extended: false, limit: "200kb" }));
  router.use(express.json({ limit: "200kb" }));
  // NUL / lone surrogates in the parsed body: 400 before sign-in or any route (issue 10 §7).
  router.use(refuseUnstorableBody());
  // A form posted after its session expired fails the CSRF check (the token was bound to the old
  // session): keep its fields, sign in again, return to the form (form-resume.ts, issue 12 §5).
  router.use((req, res, next) => {
    csrf.protect(req, res, (err?: unknown) => {
      const lost = !(req.session?.operatorId && req.session.console === opts.console);
      if (err && (err as { code?: string }).code === "EBADCSRFTOKEN" && lost && !wantsJson(req) && stashFormAndSignIn(req, res, { base, safePage: formPagePath })) return;
      next(err as Error | undefined);
    });
  });

  registerLoginRoutes(router, { db: deps.db, kit, allowedRoles: allowed, cookieName, cookiePath: base || "/", rateLimit: opts.loginRateLimit });
  registerCardLoginRoutes(router, { db: deps.db, kit, allowedRoles: allowed, rateLimit: opts.loginRateLimit });

  // Sign-in guard: the operator is loaded fresh on every request.
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    const s = req.session;
    if (s.operatorId && s.console === opts.console && Date.now() - (s.loginAt ?? 0) < SESSION_MAX_MS) {
      const op = await loadActiveOperator(deps.db, s.operatorId);
      // A card session lasts only while the card holder is still bound to the operator.
      const bound = !s.cardHolder || (await deps.db("operator_certificates").where({ operator_id: s.operatorId, issuer: s.cardHolder.issuer, subscriber_id: s.cardHolder.subscriberId }).first("operator_id"));
      if (op && bound && allowed.includes(op.role)) {
        req.operator = op;
        if (op.lraId !== null) {
          const lra = await getLra(deps.db, op.lraId);
          res.locals.lra = lra ? { code: lra.code, name: lra.name } : undefined;
        }
        next();
        return;
      }
    }
    if (s.operatorId) await new Promise<void>((resolve, reject) => s.regenerate((e) => (e ? reject(e) : resolve())));
    if (!wantsJson(req) && stashFormAndSignIn(req, res, { base, safePage: formPagePath })) return;
    if (wantsJson(req)) {
      res.status(401).json({ error: "Sign in first.", errorJa: "ログインしてください。", code: "unauthenticated" });
      return;
    }
    const target = req.method === "GET" ? `${req.baseUrl}${req.path}` : `${base}/`;
    res.redirect(303, `${base}/login?next=${encodeURIComponent(target)}`);
  });

  // The form page after sign-in with ?resume=<id>: prefilled from the stash, once.
  router.use((req, res, next) => {
    const stash = takeFormStash(req);
    if (stash?.refusal) {
      res.locals.resumedValues = stash.values;
      res.locals.resumedRefusal = stash.refusal;
    } else if (stash) {
      res.locals.resumedValues = stash.values;
      kit.flash(req, "info", "What you typed before the session expired is back in the form: check it and send it again.", "セッション切れの前に入力した内容を復元しました。確認して、もう一度送信してください。");
    }
    next();
  });

  opts.mount(router, kit);

  router.get("/", (req, res) => {
    kit.render(res, "auth/home", { operator: req.operator, lra: res.locals.lra ?? null, console: opts.console });
  });

  router.use((_req, _res, next) => next(new NotFoundError()));

  const errorHandler: ErrorRequestHandler = (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = toHpkiError(err) ?? new HpkiError("Internal error. The problem was logged; please tell the administrator.", "内部エラーが発生しました。記録しましたので管理者に連絡してください。", 500, "internal");
    if (e.status === 500) log.error({ err, method: req.method, path: `${req.baseUrl}${req.path}` }, "console request failed");
    const issues = e instanceof ValidationError ? e.issues : [];
    // RFC 9110 §10.2.3: the HSM pool retries the token every second.
    if (e.code === "hsm_unavailable") res.setHeader("Retry-After", "1");
    if (wantsJson(req)) {
      res.status(e.status).json({ error: e.message, errorJa: e.messageJa, code: e.code, issues, ...(e.link ? { link: e.link } : {}) });
      return;
    }
    const form = res.locals.hpkiFormView as { view: string; data: Record<string, unknown> } | undefined;
    const lang = langOf(req);
    try {
      // Typed data survives every refusal (issue 12 §5): invalid input, a conflict (duplicate,
      // state changed), a refused permission or a missing object re-render the declared form
      // with the values and the same server message; only sign-in problems leave the form.
      if (form && e.status >= 400 && e.status < 500 && e.status !== 401) {
        const { _csrf, ...values } = (req.body ?? {}) as Record<string, unknown>;
        kit.render(res, form.view, { ...form.data, values, issues, error: { message: e.message, messageJa: e.messageJa, link: e.link } }, { status: e.status });
        return;
      }
      const heading = catalog.t(lang, `error.${e.status}.title`);
      // A form refused where no form view was declared: its values wait in the session and the
      // error page links back to the form, filled in again (form-resume.ts).
      const stash = e.status >= 400 && e.status < 500 && e.status !== 401 && req.session?.operatorId
        ? stashForm(req, formPagePath, { message: e.message, messageJa: e.messageJa, issues })
        : undefined;
      kit.render(
        res,
        "errors/error",
        { status: e.status, heading: heading === `error.${e.status}.title` ? catalog.t(lang, "error.generic.title") : heading, message: localized(lang, e), issues, backToForm: stash ? resumeUrl(stash) : undefined, link: e.link },
        { status: e.status, title: { en: `Error ${e.status}`, ja: `エラー ${e.status}` } },
      );
    } catch (renderError) {
      log.error({ err: renderError }, "error page failed");
      res.status(e.status).type("text").send(`${e.status} ${localized(lang, e)}`);
    }
  };
  router.use(errorHandler);

  router.kit = kit;
  router.close = async () => {
    await closeSessionStore(store);
    await (await opsSecrets.catch(() => null))?.release();
  };
  return router;
}

/** A RoleServer for `hpki serve` around a console router (role factories return this). */
export function consoleRoleServer(role: ConsoleName, router: ConsoleRouter): RoleServer {
  return { role, router, close: () => router.close() };
}
