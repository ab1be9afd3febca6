/**
 * The medical PO box role (医療用私書箱, `hpki serve --role pobox`, issue 15 §5): mounted at
 * /pobox, runnable alone. It meets the other roles only through the database (the SSO center's
 * OIDC interface for sign-in); it imports no other role.
 *
 *   GET  /login[?client=cli], /callback, POST /logout   sign-in through the SSO center (sso-rp.ts)
 *   /api/…                                               JSON API (api.ts): bearer token or session
 *   GET  /, /send, /messages/:id/forward, /designations  pages in Japanese and English (pages.ts)
 *   POST /patient/challenge|register|sign-in             patients with their JPKI certificate (patient-api.ts)
 *
 * A retention sweep erases expired envelopes every 10 minutes (messages.ts eraseExpired).
 */
import cookieParser from "cookie-parser";
import express, { type NextFunction, type Request, type Response } from "express";
import { HpkiError } from "../pipeline/errors.ts";
import { PreUnavailableError } from "../pki/pre.ts";
import { closeSessionStore, consoleCsrf, consoleSecret, consoleSession, sessionStore } from "../web/auth/session.ts";
import { localized, requestLanguage } from "../web/i18n.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { findAccount, type Account } from "./accounts.ts";
import { apiRouter } from "./api.ts";
import { PoboxError } from "./errors.ts";
import { eraseExpired, type PoboxLimits } from "./messages.ts";
import { JpkiVerifier } from "./jpki-verifier.ts";
import { pagesRouter } from "./pages.ts";
import { patientRouter } from "./patient-api.ts";
import { accountOfToken, completeSignIn, SsoRelyingParty } from "./sso-rp.ts";

declare module "express-session" {
  interface SessionData {
    /** pobox_accounts.id of the person signed in at the PO box. */
    poboxAccountId?: number;
    /** The pending authorization request (state, PKCE verifier, nonce, CLI or browser). */
    poboxLogin?: { state: string; verifier: string; nonce: string; cli: boolean };
  }
}

declare module "express-serve-static-core" {
  interface Request {
    poboxAccount?: Account;
  }
}

const BASE = "/pobox";
const SWEEP_MS = 10 * 60_000;

/** Builds the PO box router. Nothing is opened but the database: the box holds no key. */
export async function createPoboxServer(deps: RoleDeps): Promise<RoleServer> {
  const { db, cfg } = deps;
  const limits: PoboxLimits = { quotaBytes: cfg.pobox.quotaBytes, maxEnvelopeBytes: cfg.pobox.maxEnvelopeBytes, retentionDays: cfg.pobox.retentionDays };
  const secure = deps.publicUrl.startsWith("https:");
  const rp = new SsoRelyingParty({
    issuer: cfg.pobox.ssoIssuer ?? `${deps.publicUrl}/sso`, clientId: cfg.pobox.clientId, clientSecret: cfg.pobox.clientSecret, redirectUri: `${deps.publicUrl}${BASE}/callback`,
  });
  const secret = consoleSecret(cfg);
  const store = sessionStore(db);
  const csrf = consoleCsrf({ secret, name: "hpki_pobox_csrf", cookiePath: BASE, secure });
  const router = express.Router();
  router.use(cookieParser());
  router.use(express.json({ limit: Math.ceil(limits.maxEnvelopeBytes * 1.4) + 65_536 }));
  router.use(express.urlencoded({ extended: false, limit: "64kb" }));
  // Patients prove themselves with JPKI (no SSO, no cookie); their bearer token then works on /api.
  const jpki = JpkiVerifier.fromFiles(cfg.pobox.jpkiAnchorFiles, cfg.pobox.jpkiCrls);
  router.use("/patient", patientRouter({ db, verifier: jpki, box: `${deps.publicUrl}${BASE}` }));
  router.use(consoleSession({ store, secret, name: "hpki_pobox_sid", cookiePath: BASE, secure }));

  router.get("/login", (req, res, next) => {
    rp.start().then((s) => {
      req.session.poboxLogin = { state: s.state, verifier: s.verifier, nonce: s.nonce, cli: req.query.client === "cli" };
      req.session.save(() => res.redirect(303, s.url));
    }, next);
  });
  router.get("/callback", (req, res, next) => {
    const pending = req.session.poboxLogin;
    if (!pending) return next(new PoboxError("UNAUTHENTICATED", "no sign-in in progress", "サインインの手続きが見つかりません。もう一度サインインしてください"));
    delete req.session.poboxLogin;
    rp.finish(new URL(`${deps.publicUrl}${req.originalUrl}`), pending)
      .then((person) => completeSignIn(db, person, pending.cli))
      .then(({ account, token }) => {
        if (pending.cli) return res.json({ token, account });
        req.session.regenerate((e) => {
          if (e) return next(e);
          req.session.poboxAccountId = account.id;
          req.session.save(() => res.redirect(303, `${BASE}/`));
        });
      }, next);
  });

  /** The signed-in account: bearer token (CLI) or session (browser, CSRF-checked on unsafe methods). */
  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    const auth = req.headers.authorization;
    if (auth?.startsWith("Bearer ")) {
      accountOfToken(db, auth.slice(7)).then((a) => {
        if (!a) return next(new PoboxError("UNAUTHENTICATED", "sign in again (hpki pobox login)", "もう一度サインインしてください（hpki pobox login）"));
        req.poboxAccount = a;
        next();
      }, next);
      return;
    }
    const id = req.session.poboxAccountId;
    if (!id) {
      if (req.accepts(["html", "json"]) === "html" && req.method === "GET") return res.redirect(303, `${BASE}/login`);
      return next(new PoboxError("UNAUTHENTICATED", "sign in through the SSO center first", "SSO センターでサインインしてください"));
    }
    findAccount(db, id).then((a) => {
      if (!a) return next(new PoboxError("UNAUTHENTICATED", "sign in again", "もう一度サインインしてください"));
      req.poboxAccount = a;
      if (req.method === "GET" || req.method === "HEAD") return next();
      csrf.protect(req, res, next);
    }, next);
  };
  const who = (req: Request): Account => req.poboxAccount!;
  router.post("/logout", authenticate, (req, res) => req.session.destroy(() => res.redirect(303, `${BASE}/`)));
  router.use("/api", authenticate, apiRouter(db, limits, who));
  router.use("/", authenticate, pagesRouter(db, limits, who, { csrfToken: csrf.token, secure }));

  router.use((raw: unknown, req: Request, res: Response, _next: NextFunction) => {
    // 組織暗号 in an installation without the optional GPL package (src/pki/pre.ts): say so, 503.
    const err = raw instanceof PreUnavailableError ? new HpkiError(raw.message, raw.messageJa, 503, "pre_unavailable") : raw;
    const e = err as { status?: number; code?: string; type?: string };
    const known = err instanceof HpkiError;
    const status = known ? (err as HpkiError).status : e.code === "EBADCSRFTOKEN" ? 403 : e.type === "entity.too.large" ? 413 : e.type === "entity.parse.failed" ? 400 : 500;
    if (status === 500) process.stderr.write(`hpki pobox: ${(err as Error).stack ?? String(err)}\n`);
    const body = known ? { error: (err as HpkiError).code, message: (err as HpkiError).message, messageJa: (err as HpkiError).messageJa }
      : { error: status === 500 ? "internal" : "bad_request", message: status === 500 ? "internal error" : (err as Error).message, messageJa: status === 500 ? "内部エラーが発生しました" : "要求が正しくありません" };
    if (req.accepts(["json", "html"]) === "html" && !req.path.startsWith("/api")) {
      const lang = requestLanguage(req, res, secure);
      res.status(status).type("html").send(`<!doctype html><meta charset="utf-8"><title>${status}</title><p>${escapeHtml(localized(lang, body))}</p><p><a href="${BASE}/">${lang === "ja" ? "私書箱へ戻る" : "Back to the PO box"}</a></p>`);
      return;
    }
    res.status(status).json(body);
  });

  const sweep = setInterval(() => {
    eraseExpired(db).catch((e) => process.stderr.write(`hpki pobox: retention sweep: ${(e as Error).message}\n`));
  }, SWEEP_MS);
  sweep.unref();

  return {
    role: "pobox",
    router,
    async close() {
      clearInterval(sweep);
      closeSessionStore(store);
    },
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
