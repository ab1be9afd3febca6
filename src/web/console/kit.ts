/**
 * What a console route module gets from createConsoleRouter (src/web/console/router.ts): the
 * `kit`. Route modules register their routes on the router handed to `mount(router, kit)`; every
 * such route runs after sign-in, with `req.operator` loaded fresh from the database.
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import type { Operator, OperatorRole } from "../../pipeline/operator.ts";
import type { Lang } from "../i18n.ts";
import type { RoleDeps } from "../role.ts";

declare module "express-serve-static-core" {
  interface Request {
    /** The signed-in operator (loaded from the database on every request); unset before sign-in. */
    operator?: Operator;
    /** The page language ("ja" default, "en"). */
    lang?: Lang;
  }
}

export type ConsoleName = "lra" | "ra" | "ia" | "sso";
export type FlashKind = "success" | "error" | "info";

/** A navigation entry of the console layout; shown to the roles listed (all when absent). */
export interface NavItem {
  /** Path below the console base, e.g. "/applications". */
  path: string;
  label: string;
  labelJa: string;
  roles?: readonly OperatorRole[];
}

export interface RenderOptions {
  /** HTTP status (default 200). */
  status?: number;
  /** Page title in both languages (default: the console name). */
  title?: { en: string; ja: string };
}

export interface ConsoleKit {
  console: ConsoleName;
  /** The console's base path ("/lra"). */
  base: string;
  deps: RoleDeps;
  log: Logger;
  /**
   * Renders a page. `view` "applications" means views/<console>/applications.hbs; a name with a
   * "/" is taken from views/ as is ("errors/404"). The view gets `data` plus: lang, base,
   * operator, lra ({code, name} of an LRA operator), console, csrfToken (for every form: `<input
   * type="hidden" name="_csrf" value="{{csrfToken}}">`), flash (messages set by kit.flash), nav,
   * title, currentPath, issues (after a ValidationError) and values (the submitted form).
   * With `Accept: application/json` it sends `{...data, csrfToken}` as JSON instead.
   */
  render(res: Response, view: string, data?: Record<string, unknown>, opts?: RenderOptions): void;
  /** Middleware: 403 (ForbiddenError) unless the signed-in operator has one of `roles`. */
  requireRole(...roles: OperatorRole[]): RequestHandler;
  /** The signed-in operator of `req`; throws (401-style redirect to sign-in) when absent. */
  operator(req: Request): Operator;
  /**
   * Wraps an async handler (express 5 already forwards rejected promises; kept so handlers read
   * the same in both styles).
   */
  asyncHandler(fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown>): RequestHandler;
  /** Queues a message for the next rendered page (typically before a redirect after POST). */
  flash(req: Request, kind: FlashKind, message: string, messageJa: string): void;
  /**
   * Declares the form view of this request: if the handler then throws ValidationError, the error
   * handler re-renders `view` with status 400, `data`, `values` (req.body) and `issues`
   * ({field, message, messageJa}[]; `{{fieldError "field"}}` in the view) instead of an error page.
   */
  formView(res: Response, view: string, data?: Record<string, unknown>): void;
  /**
   * The values of a form posted after its session expired, when this GET is its page after the
   * new sign-in (src/web/auth/form-resume.ts); they are also the page's `values` by default.
   */
  resumedValues(res: Response): Record<string, unknown> | undefined;
  /** Adds an entry to the console navigation (call from mount). */
  addNav(item: NavItem): void;
  /** base + path ("/lra" + "/applications"). */
  url(path: string): string;
  /** True when the client asked for JSON (Accept: application/json preferred over HTML). */
  wantsJson(req: Request): boolean;
}
