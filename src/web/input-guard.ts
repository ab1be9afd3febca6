/**
 * Edge guard (issue 10 §7): a request whose path, query or parsed body holds a NUL character or
 * a lone UTF-16 surrogate is answered 400 before any handler or database sees it (PostgreSQL
 * refuses NUL in text with an error that used to surface as HTTP 500; a lone surrogate cannot
 * be encoded as UTF-8). Finer rules (bidi, invisible characters, NFC) belong to intake
 * (parseInput); this guard only keeps unstorable text out of every route, including the
 * unauthenticated sign-in.
 *
 * Mounted app-wide in startServer (path and query, before any role) and again after each body
 * parser (consoles, SSO portal, multipart uploads) with `refuseUnstorableBody`.
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { ValidationError } from "../pipeline/errors.ts";
import { hasUnstorableText, textViolationMessages } from "../pki/text-rules.ts";

/**
 * The first string of `v` (object keys included) holding unstorable text: its field (dotted path;
 * "(key)" for an object key) and the string; undefined when there is none.
 */
export function unstorableField(v: unknown, path: string[] = [], depth = 0): { field: string; value: string } | undefined {
  if (typeof v === "string") return hasUnstorableText(v) ? { field: path.join(".") || "(body)", value: v } : undefined;
  if (depth > 32 || v === null || typeof v !== "object") return undefined;
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
  for (const [k, x] of entries) {
    if (hasUnstorableText(k)) return { field: [...path, "(key)"].join("."), value: k };
    const f = unstorableField(x, [...path, k], depth + 1);
    if (f) return f;
  }
  return undefined;
}

function refusal(f: { field: string; value: string }): ValidationError {
  const surrogate = /\p{Cs}/u.exec(f.value);
  const m = textViolationMessages(f.value.includes("\u0000") || !surrogate ? { kind: "nul", codePoint: 0 } : { kind: "lone-surrogate", codePoint: surrogate[0].charCodeAt(0) });
  return new ValidationError([{ field: f.field, message: m.message, messageJa: `${m.messageJa}（項目: ${f.field}）` }]);
}

/** The ValidationError for the first unstorable field of the request, or null. */
export function unstorableRequestError(req: Request, parts: { path?: boolean; query?: boolean; body?: boolean }): ValidationError | null {
  if (parts.path) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(req.path);
    } catch {
      decoded = req.path;
    }
    if (hasUnstorableText(decoded)) return refusal({ field: "(path)", value: decoded });
  }
  const f = (parts.query ? unstorableField(req.query, ["query"]) : undefined) ?? (parts.body && req.body !== undefined ? unstorableField(req.body) : undefined);
  return f ? refusal(f) : null;
}

/** Answers `e` (400) as JSON for API clients, else as a short bilingual text page. */
export function sendInputRefusal(req: Request, res: Response, e: ValidationError): void {
  res.status(400);
  if (req.accepts(["html", "json"]) === "json") {
    res.json({ error: e.message, errorJa: e.messageJa, code: e.code, issues: e.issues });
    return;
  }
  const lines = e.issues.map((i) => `${i.field}: ${i.messageJa} / ${i.message}`);
  res.type("text").send(`400 ${e.messageJa} / Invalid input.\n${lines.join("\n")}\n`);
}

/** App-wide: path and query with NUL or a lone surrogate → 400, before any role's routes. */
export const refuseUnstorablePathAndQuery: RequestHandler = (req, res, next) => {
  const e = unstorableRequestError(req, { path: true, query: true });
  if (e) sendInputRefusal(req, res, e);
  else next();
};

/**
 * After a body parser: a parsed body (and the query) with NUL or a lone surrogate → the
 * ValidationError goes to the router's error handler (consoles render it as 400), or, with
 * `respond`, is answered here.
 */
export function refuseUnstorableBody(opts: { respond?: boolean } = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const e = unstorableRequestError(req, { query: true, body: true });
    if (!e) next();
    else if (opts.respond) sendInputRefusal(req, res, e);
    else next(e);
  };
}
