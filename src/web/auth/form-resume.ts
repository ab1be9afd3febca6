/**
 * A form posted after its session expired is not lost (issue 12 §5): its fields are kept in the
 * new (anonymous) session under a one-time id, the operator signs in again, and the form page
 * opens again prefilled, to be checked and sent once more. Nothing is ever replayed: the stash
 * only fills a form, so a forged cross-site POST can at most prefill a form the operator then
 * reads (and only same-origin POSTs are stashed: Sec-Fetch-Site: same-origin).
 *
 * Never stashed (decided for issue 12 §5): files (multipart bodies are not stashed at all; the
 * upload is chosen again), the CSRF token, the `_page` marker, anything whose name says password,
 * PIN, TOTP/OTP, secret or token (except `formToken`, the form's idempotency key, which keeps a
 * resent form from creating a second application), any value holding 12 digits in a row (a
 * 個人番号 is never stored, not even in a session: issue 12 §6), and bodies over 32 KiB.
 * The stash lives 30 minutes and is used once.
 *
 * The same stash serves a form refused where its route declared no form view (e.g. a list page's
 * form answered with an error page): the error page offers "back to the form", which opens the
 * page again with the typed values and the refusal (issue 12 §5: typed data survives every refusal).
 */
import { randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import { asciiNumericText } from "../../pipeline/jp-input.ts";

declare module "express-session" {
  interface SessionData {
    /** A form posted after the session expired, to prefill its page after sign-in. */
    formStash?: FormStash;
  }
}

export interface FormStash {
  id: string;
  /** The page of the form (a path inside the console). */
  page: string;
  values: Record<string, string | string[]>;
  /** The refusal to show again on the page (a form refused where no form view was declared). */
  refusal?: { message: string; messageJa: string; issues: { field: string; message: string; messageJa: string }[] };
  at: number;
}

/** How long a stash waits for the sign-in. */
export const FORM_STASH_TTL_MS = 30 * 60_000;
const MAX_STASH_CHARS = 32 * 1024;
/** The hidden field every console form carries (views/partials/csrf.hbs): the form's page. */
export const FORM_PAGE_FIELD = "_page";

const SECRET_NAME = /password|passwd|pin|totp|otp|secret|token|csrf/i;

/** True when a field named `key` with value `v` may be kept in a stash (see the module comment). */
export function stashableField(key: string, v: string): boolean {
  if (key === FORM_PAGE_FIELD) return false;
  if (key !== "formToken" && SECRET_NAME.test(key)) return false;
  return !/\d{12}/.test(asciiNumericText(v).replace(/-/g, ""));
}

/** The stashable fields of a urlencoded body (strings and lists of strings only). */
export function stashableValues(body: unknown): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!body || typeof body !== "object") return out;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === "string" && stashableField(k, v)) out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === "string") && v.every((x) => stashableField(k, x))) out[k] = v as string[];
  }
  return out;
}

/**
 * Stashes the form of `req` in its (new) session and answers with a redirect to sign-in that
 * returns to the form page; false (nothing done) when the request does not qualify: not a
 * same-origin urlencoded browser POST, no safe `_page`, or too large. `safePage` validates the
 * page path (a path inside this console, not the sign-in page).
 */
export function stashFormAndSignIn(req: Request, res: Response, o: { base: string; safePage(p: unknown): string | undefined }): boolean {
  if (req.get("sec-fetch-site") !== "same-origin") return false;
  const stash = stashForm(req, o.safePage);
  if (!stash) return false;
  req.session.preLogin = true;
  req.session.flash = [...(req.session.flash ?? []), {
    kind: "info",
    message: "Your session expired. Sign in again: the form opens again with what you typed.",
    messageJa: "セッションの有効期限が切れました。ログインし直すと、入力中の内容が復元された画面に戻ります。",
  }];
  res.redirect(303, `${o.base}/login?next=${encodeURIComponent(resumeUrl(stash))}`);
  return true;
}

/**
 * Keeps the fields of a urlencoded form POST (see the module comment for what is never kept) in
 * the session under a new one-time id, with `refusal` to show again; undefined when the request
 * does not qualify (not a urlencoded POST, no safe `_page`, too large, no session).
 */
export function stashForm(req: Request, safePage: (p: unknown) => string | undefined, refusal?: FormStash["refusal"]): FormStash | undefined {
  if (req.method !== "POST" || !req.is("application/x-www-form-urlencoded") || !req.session) return undefined;
  const body = req.body as Record<string, unknown> | undefined;
  const page = safePage(body?.[FORM_PAGE_FIELD]);
  if (!page) return undefined;
  const values = stashableValues(body);
  if (JSON.stringify({ values, refusal }).length > MAX_STASH_CHARS) return undefined;
  const stash: FormStash = { id: randomBytes(12).toString("base64url"), page, values, ...(refusal ? { refusal } : {}), at: Date.now() };
  req.session.formStash = stash;
  return stash;
}

/** The URL that opens the stashed form again: its page with ?resume=<id>. */
export function resumeUrl(s: FormStash): string {
  return `${s.page}${s.page.includes("?") ? "&" : "?"}resume=${s.id}`;
}

/**
 * The stashed values for this GET of the form page (`?resume=<id>` matching the session's stash,
 * within FORM_STASH_TTL_MS), removed from the session: used once. Undefined otherwise.
 */
export function takeFormStash(req: Request): FormStash | undefined {
  const s = req.session?.formStash;
  const id = req.query.resume;
  if (req.method !== "GET" || !s || typeof id !== "string" || id !== s.id) return undefined;
  req.session.formStash = undefined;
  const path = `${req.baseUrl}${req.path}`;
  if (Date.now() - s.at > FORM_STASH_TTL_MS || s.page.split("?")[0] !== path) return undefined;
  return s;
}
