/**
 * Sign-in and sign-out routes of a console: GET/POST /login (username, password, TOTP code;
 * POST rate-limited per client address; failed sign-ins delay the next attempts of that account
 * from that address, login-throttle.ts: 429 with Retry-After), POST /logout. The session id is regenerated at sign-in
 * (no session fixation); the CSRF token is bound to the new session.
 *
 * JSON clients (Accept: application/json): GET /login → {csrfToken}; POST /login with
 * {username, password, totp} (+ X-CSRF-Token) → {operator, csrfToken} or {error, errorJa} with
 * 401/403/429 (Retry-After when throttled); POST /logout → {ok: true}.
 */
import type { Request, RequestHandler, Response, Router } from "express";
import { rateLimit } from "express-rate-limit";
import { AuthenticationError, HpkiError } from "../pipeline/errors.ts";
import type { Operator, OperatorRole } from "../pipeline/operator.ts";
import type { Db } from "../store/db.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { LoginThrottledError } from "./login-throttle.ts";
import { authenticate, recordLogout } from "./operators.ts";

export interface LoginRouteOptions {
  db: Db;
  kit: ConsoleKit;
  allowedRoles: readonly OperatorRole[];
  /** Session cookie name and path, cleared at sign-out. */
  cookieName: string;
  cookiePath: string;
  /** POST /login attempts per client address and window (default 30 per 15 minutes). */
  rateLimit?: { windowMs: number; limit: number };
}

/** The sign-in target after login: a path inside this console, else the console home. */
export function safeNextPath(next: unknown, base: string): string {
  if (typeof next === "string" && next.startsWith(`${base}/`) && !/\/\/|\\|[\r\n]/.test(next) && !next.startsWith(`${base}/login`)) return next;
  return `${base}/`;
}

/** Sign-in attempts per client address and window (default 30 per 15 minutes); 429 beyond. */
export function loginRateLimiter(o?: { windowMs: number; limit: number }): RequestHandler {
  return rateLimit({
    windowMs: o?.windowMs ?? 15 * 60_000,
    limit: o?.limit ?? 30,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new HpkiError("Too many sign-in attempts from this address. Wait a few minutes and try again.", "ログインの試行回数が多すぎます。しばらく待ってから再度お試しください。", 429, "rate_limited")),
  });
}

/** Regenerates the session id (no session fixation at sign-in). */
function regenerate(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.regenerate((e) => (e ? reject(e) : resolve())));
}
/** Saves the session now. */
export function save(req: Request): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((e) => (e ? reject(e) : resolve())));
}

/**
 * Ends a successful sign-in (password or card): a new session id for `operator` on this console,
 * then {operator, csrfToken} for JSON clients or a redirect to `next`.
 */
export async function completeSignIn(req: Request, res: Response, kit: ConsoleKit, operator: Operator, next: string, cardHolder?: { issuer: string; subscriberId: string }): Promise<void> {
  // A form stashed when the old session expired (src/web/auth/form-resume.ts) survives the new id.
  const formStash = req.session.formStash;
  await regenerate(req);
  if (formStash) req.session.formStash = formStash;
  req.session.operatorId = operator.id;
  req.session.console = kit.console;
  req.session.loginAt = Date.now();
  if (cardHolder) req.session.cardHolder = cardHolder;
  await save(req);
  req.operator = operator;
  if (kit.wantsJson(req)) {
    kit.render(res, "auth/home", { operator });
    return;
  }
  res.redirect(303, next);
}

/** Registers /login and /logout on `router` (before the sign-in guard). */
export function registerLoginRoutes(router: Router, o: LoginRouteOptions): void {
  const { kit } = o;
  const limiter = loginRateLimiter(o.rateLimit);
  const loginTitle = { en: "Sign in", ja: "ログイン" };

  router.get("/login", (req, res) => {
    if (req.session.operatorId && req.session.console === kit.console) {
      res.redirect(303, `${kit.base}/`);
      return;
    }
    // Persist the anonymous session: the CSRF token of the form is bound to its id.
    req.session.preLogin = true;
    kit.render(res, "auth/login", { next: safeNextPath(req.query.next, kit.base), username: "" }, { title: loginTitle });
  });

  router.post("/login", limiter, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof body.username === "string" ? body.username : "";
    const next = safeNextPath(body.next, kit.base);
    let operator;
    try {
      operator = await authenticate(o.db, username, String(body.password ?? ""), String(body.totp ?? ""), {
        ip: req.ip,
        allowedRoles: o.allowedRoles,
        console: kit.console,
      });
    } catch (e) {
      if (!(e instanceof AuthenticationError) && !(e instanceof HpkiError && e.status === 403) && !(e instanceof LoginThrottledError)) throw e;
      const err = e as HpkiError;
      if (e instanceof LoginThrottledError) res.set("Retry-After", String(e.retryAfterSeconds));
      if (kit.wantsJson(req)) {
        res.status(err.status).json({ error: err.message, errorJa: err.messageJa, code: err.code });
        return;
      }
      kit.render(res, "auth/login", { next, username, error: { message: err.message, messageJa: err.messageJa } }, { status: err.status, title: loginTitle });
      return;
    }
    await completeSignIn(req, res, kit, operator, next);
  });

  router.post("/logout", async (req, res) => {
    const id = req.session.operatorId;
    await new Promise<void>((resolve, reject) => req.session.destroy((e) => (e ? reject(e) : resolve())));
    if (id) await recordLogout(o.db, id, kit.console);
    res.clearCookie(o.cookieName, { path: o.cookiePath });
    if (kit.wantsJson(req)) res.json({ ok: true });
    else res.redirect(303, `${kit.base}/login`);
  });
}
