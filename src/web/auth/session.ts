/**
 * Console sessions and CSRF protection, done with the libraries:
 *
 * - express-session with connect-session-knex on our database (table console_sessions from
 *   migration 0007, createTable: false). Cookie httpOnly, SameSite=Lax, Secure when the public
 *   URL is https, one cookie name and path per console, rolling idle timeout; the session id is
 *   regenerated at sign-in (src/operators/login.ts) and an absolute lifetime is enforced on top.
 * - csrf-csrf (double submit, HMAC bound to the session id) on every unsafe method. The token is
 *   read from the `X-CSRF-Token` header, else the `_csrf` field of a urlencoded/JSON body, else —
 *   for multipart/form-data only, whose body is parsed later by multer in the route — the `_csrf`
 *   query parameter: write `<form method="post" enctype="multipart/form-data"
 *   action="{{url "/upload"}}?_csrf={{csrfToken}}">` (or send the header from script).
 *
 * The secret (session cookie signature, CSRF HMAC) comes from HPKI_SESSION_SECRET (every process
 * of a deployment must share it), else from $HPKI_HOME/console-session.secret (created 0600 on
 * first use), else — when that directory is not writable — a random per-process secret.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Request, RequestHandler } from "express";
import session from "express-session";
import { ConnectSessionKnexStore } from "connect-session-knex";
import { doubleCsrf } from "csrf-csrf";
import type { Config } from "../../config.ts";
import type { Db } from "../../store/db.ts";

declare module "express-session" {
  interface SessionData {
    /** operators.id of the signed-in operator. */
    operatorId?: number;
    /** The console the session was created for ("lra", "ra", "ia"). */
    console?: string;
    /** Sign-in time (ms since epoch), for the absolute lifetime. */
    loginAt?: number;
    /** Card sign-in: the bound card holder; the session ends when that binding is removed. */
    cardHolder?: { issuer: string; subscriberId: string };
    /** Set on the sign-in page so the anonymous session (and its CSRF binding) persists. */
    preLogin?: boolean;
    /** Messages for the next page (ConsoleKit.flash). */
    flash?: { kind: "success" | "error" | "info"; message: string; messageJa: string }[];
  }
}

export const SESSION_TABLE = "console_sessions";
/** Idle timeout: a session unused this long expires (rolling). */
export const SESSION_IDLE_MS = 30 * 60_000;
/** Absolute lifetime of a signed-in session, whatever the activity. */
export const SESSION_MAX_MS = 12 * 3600_000;

/** The console secret (see the module comment). Never logged. */
export function consoleSecret(cfg: Pick<Config, "home" | "sessionSecret">): string {
  // The schema (src/config/schema.ts) has already refused a secret under 32 characters.
  if (cfg.sessionSecret) return cfg.sessionSecret;
  const file = path.join(cfg.home, "console-session.secret");
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    const secret = randomBytes(32).toString("base64url");
    try {
      fs.mkdirSync(cfg.home, { recursive: true });
      fs.writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
      return secret;
    } catch (e) {
      // Another process created it first: use theirs. Unwritable home: per-process secret.
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return fs.readFileSync(file, "utf8").trim();
      return secret;
    }
  }
}

/**
 * A session store on `db` for one console. Each console needs its own store object: express-session
 * installs its cookie settings (name, path) on the store it is given. Call closeSessionStore when
 * done (stops the periodic cleanup of expired rows).
 */
export function sessionStore(db: Db): ConnectSessionKnexStore {
  return new ConnectSessionKnexStore({
    knex: db,
    tableName: SESSION_TABLE,
    createTable: false,
    cleanupInterval: 10 * 60_000,
    // After the database is closed the periodic cleanup fails: nothing to report then.
    onDbCleanupError: () => {},
  });
}

/** Stops the store's cleanup timer (before closing the database). */
export function closeSessionStore(store: ConnectSessionKnexStore): void {
  if (store.nextDbCleanup) clearTimeout(store.nextDbCleanup);
  store.options.cleanupInterval = 0;
}

export interface ConsoleSessionOptions {
  store: ConnectSessionKnexStore;
  secret: string;
  /** Cookie name, e.g. "hpki_lra_sid". */
  name: string;
  /** Cookie path: the console's base path. */
  cookiePath: string;
  secure: boolean;
  idleMs?: number;
}

/** express-session middleware for one console (see the module comment). */
export function consoleSession(o: ConsoleSessionOptions): RequestHandler {
  return session({
    store: o.store,
    name: o.name,
    secret: o.secret,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    unset: "destroy",
    // An https public URL on a plain-http listener means a TLS terminator in front: let it say the
    // request was https (X-Forwarded-Proto) so the Secure cookie is set. Client addresses (rate
    // limit, audit) still follow the app's "trust proxy" setting.
    proxy: o.secure ? true : undefined,
    cookie: { httpOnly: true, sameSite: "lax", secure: o.secure, path: o.cookiePath, maxAge: o.idleMs ?? SESSION_IDLE_MS },
  });
}

export interface ConsoleCsrf {
  /** Validates the token on POST/PUT/PATCH/DELETE; 403 (code EBADCSRFTOKEN) otherwise. */
  protect: RequestHandler;
  /** The token to put in forms (sets/refreshes the CSRF cookie on the response). */
  token(req: Request, res: import("express").Response): string;
}

/** The CSRF token a request carries: header, body field, or (multipart only) query parameter. */
export function csrfTokenFromRequest(req: Request): string | undefined {
  const h = req.headers["x-csrf-token"];
  if (typeof h === "string" && h) return h;
  const b = (req.body as Record<string, unknown> | undefined)?._csrf;
  if (typeof b === "string" && b) return b;
  if (req.is("multipart/form-data") && typeof req.query._csrf === "string") return req.query._csrf;
  return undefined;
}

/** csrf-csrf double-submit protection for one console (cookie `name`, path `cookiePath`). */
export function consoleCsrf(o: { secret: string; name: string; cookiePath: string; secure: boolean }): ConsoleCsrf {
  const { doubleCsrfProtection, generateCsrfToken } = doubleCsrf({
    getSecret: () => o.secret,
    getSessionIdentifier: (req) => req.sessionID ?? "",
    cookieName: o.name,
    cookieOptions: { sameSite: "lax", path: o.cookiePath, secure: o.secure, httpOnly: true },
    getCsrfTokenFromRequest: csrfTokenFromRequest,
  });
  return { protect: doubleCsrfProtection, token: (req, res) => generateCsrfToken(req, res) };
}
