/**
 * Typed errors shared by the pipeline services and the consoles. A service throws one of these;
 * the console error handler (src/web/console) maps it to a page or a JSON body with the same HTTP
 * status, and the CLI prints `message`, `messageJa` and one line per issue (src/cli/run.ts).
 *
 * Every error carries `message` (English), `messageJa` (Japanese), `status` (HTTP) and `code`
 * (stable machine name). Messages are shown to operators: never put secrets in them.
 */
import type { z } from "zod";
import { normalizeText, textViolation, textViolationMessages } from "../pki/text-rules.ts";

/** One problem with one input field: the field path ("applicant.birthDate") and both messages. */
export interface FieldIssue {
  field: string;
  message: string;
  messageJa: string;
}

/** A link a refusal offers (e.g. to the existing application of a duplicate), in both languages. */
export interface ErrorLink {
  href: string;
  message: string;
  messageJa: string;
}

/** Base class: bilingual message + HTTP status. Prefer the subclasses below. */
export class HpkiError extends Error {
  override name = "HpkiError";
  /** Where the operator can go from here (set by the route that knows the URL; shown on the form and in JSON). */
  link?: ErrorLink;
  constructor(
    message: string,
    readonly messageJa: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

/** 401: authentication failed (login). Deliberately does not say which factor was wrong. */
export class AuthenticationError extends HpkiError {
  override name = "AuthenticationError";
  constructor(message = "Sign-in failed: check the user name, password and one-time code.", messageJa = "ログインできませんでした。ユーザー名、パスワード、ワンタイムコードを確認してください。") {
    super(message, messageJa, 401, "unauthenticated");
  }
}

/** 403: the operator's role or scope (regional association) does not allow this. */
export class ForbiddenError extends HpkiError {
  override name = "ForbiddenError";
  constructor(message = "You are not allowed to do this.", messageJa = "この操作を行う権限がありません。") {
    super(message, messageJa, 403, "forbidden");
  }
}

/**
 * 404: the object does not exist — or exists outside the operator's scope (an LRA operator asking
 * for another association's application gets 404, not 403, so ids of other associations leak nothing).
 */
export class NotFoundError extends HpkiError {
  override name = "NotFoundError";
  constructor(message = "Not found.", messageJa = "見つかりません。") {
    super(message, messageJa, 404, "not_found");
  }
}

/**
 * 409: the object is no longer in the state the operator saw, e.g. "already approved by another
 * officer", a duplicate application, a unique value already taken.
 */
export class ConflictError extends HpkiError {
  override name = "ConflictError";
  constructor(message: string, messageJa: string) {
    super(message, messageJa, 409, "conflict");
  }
}

/** 400: invalid input; `issues` lists every problem found, field by field (forms re-render with them). */
export class ValidationError extends HpkiError {
  override name = "ValidationError";
  constructor(
    readonly issues: FieldIssue[],
    message = `invalid input: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`,
    messageJa = "入力内容に誤りがあります。",
  ) {
    super(message, messageJa, 400, "invalid_input");
  }
}

/** One FieldIssue (shorthand for services building ValidationError by hand). */
export function fieldIssue(field: string, message: string, messageJa: string): FieldIssue {
  return { field, message, messageJa };
}

// English message → Japanese, registered by jaMessage() for zod checks whose issues carry no params.
const JA_BY_MESSAGE = new Map<string, string>();

/**
 * Registers the Japanese text of an English zod message and returns the English one, for any zod
 * check: `z.string().regex(re, jaMessage("Latin letters only", "ローマ字で入力してください。"))`,
 * `z.email({ message: jaMessage(en, ja) })`. validationErrorFromZod then reports `ja` as messageJa.
 * (zod 4 keeps `params` only on custom issues, so `{params: {messageJa}}` works for
 * `.refine`/`ctx.addIssue` only; jaMessage works everywhere.)
 */
export function jaMessage(message: string, messageJa: string): string {
  JA_BY_MESSAGE.set(message, messageJa);
  return message;
}

/** True for the typed errors above (they carry status and a Japanese message). */
export function isHpkiError(e: unknown): e is HpkiError {
  return e instanceof HpkiError;
}

const ORIGIN_JA: Record<string, string> = { string: "文字", array: "件", set: "件", file: "バイト" };

/** Japanese (and, for generic zod texts, English) messages of one zod 4 issue. */
function zodIssueMessages(i: z.core.$ZodIssue): { message: string; messageJa: string } {
  const message = i.message;
  const params = (i as { params?: { messageJa?: unknown } }).params;
  if (typeof params?.messageJa === "string") return { message, messageJa: params.messageJa };
  const registered = JA_BY_MESSAGE.get(message);
  if (registered) return { message, messageJa: registered };
  switch (i.code) {
    case "invalid_type":
      if (/received undefined|received null/.test(i.message)) return { message: "is required", messageJa: "必須項目です。" };
      return { message, messageJa: "形式が正しくありません。" };
    case "too_small": {
      const n = String(i.minimum);
      if (i.origin === "string" && n === "1") return { message: "is required", messageJa: "必須項目です。" };
      if (i.origin === "number" || i.origin === "int" || i.origin === "bigint") return { message, messageJa: `${n}${i.inclusive === false ? "より大きい" : "以上の"}値を入力してください。` };
      if (i.origin === "date") return { message, messageJa: "日付が早すぎます。" };
      return { message, messageJa: i.exact ? `${n}${ORIGIN_JA[i.origin] ?? ""}で入力してください。` : `${n}${ORIGIN_JA[i.origin] ?? ""}以上で入力してください。` };
    }
    case "too_big": {
      const n = String(i.maximum);
      if (i.origin === "number" || i.origin === "int" || i.origin === "bigint") return { message, messageJa: `${n}${i.inclusive === false ? "未満の" : "以下の"}値を入力してください。` };
      if (i.origin === "date") return { message, messageJa: "日付が遅すぎます。" };
      return { message, messageJa: i.exact ? `${n}${ORIGIN_JA[i.origin] ?? ""}で入力してください。` : `${n}${ORIGIN_JA[i.origin] ?? ""}以内で入力してください。` };
    }
    case "invalid_format": {
      const ja: Record<string, string> = {
        email: "メールアドレスの形式が正しくありません。",
        url: "URLの形式が正しくありません。",
        date: "日付の形式が正しくありません（例: 2026-04-01）。",
        datetime: "日時の形式が正しくありません。",
      };
      return { message, messageJa: ja[i.format] ?? "形式が正しくありません。" };
    }
    case "invalid_value":
      return { message, messageJa: "選択肢の中から選んでください。" };
    case "unrecognized_keys":
      return { message, messageJa: `不明な項目があります: ${i.keys.join(", ")}` };
    case "not_multiple_of":
      return { message, messageJa: `${i.divisor}の倍数を入力してください。` };
    case "custom":
      return { message, messageJa: "入力内容が正しくありません。" };
    default:
      return { message, messageJa: "入力内容が正しくありません。" };
  }
}

/**
 * Turns a zod 4 error into a ValidationError: one FieldIssue per zod issue, field = the dotted path
 * ("(form)" for the root). messageJa: `params.messageJa` of a custom issue
 * (`.refine(f, {message, params: {messageJa}})`, `ctx.addIssue({code: "custom", message, params:
 * {messageJa}})`), else the text registered with jaMessage(), else a Japanese text derived from
 * the issue code (required, too long, format, choice…).
 */
export function validationErrorFromZod(error: z.ZodError, fieldPrefix = ""): ValidationError {
  return new ValidationError(
    error.issues.map((i) => {
      const path = i.path.map(String).join(".");
      return { field: fieldPrefix + (path || "(form)"), ...zodIssueMessages(i) };
    }),
  );
}

// Secrets compared byte for byte later (a password hashed now, typed again at sign-in): never
// normalised, only checked for what cannot be stored.
const VERBATIM_FIELDS = new Set(["password", "pin", "totp", "_csrf"]);

/**
 * Intake text hygiene (issue 10 §7), applied by parseInput to every string of `input` (object
 * keys, nested objects, arrays): each string is NFC-normalised and checked against the shared
 * rule set (src/pki/text-rules.ts, the one the certificate lint uses; TAB/LF/CR allowed). Returns
 * the cleaned copy and one FieldIssue per refused string, naming its field ("name.kanji",
 * "items.2"). Fields named password/pin/totp are kept verbatim (only NUL/surrogates refused).
 */
export function cleanInputText(input: unknown, fieldPrefix = ""): { value: unknown; issues: FieldIssue[] } {
  const issues: FieldIssue[] = [];
  const walk = (v: unknown, path: string[]): unknown => {
    if (typeof v === "string") {
      const key = path[path.length - 1] ?? "";
      const verbatim = VERBATIM_FIELDS.has(key);
      const bad = textViolation(v, { lineBreaks: true });
      if (bad && (!verbatim || bad.kind === "nul" || bad.kind === "lone-surrogate")) {
        const field = fieldPrefix + (path.join(".") || "(form)");
        const m = textViolationMessages(bad);
        issues.push({ field, message: m.message, messageJa: `${m.messageJa}（項目: ${field}）` });
        return v;
      }
      return verbatim ? v : normalizeText(v);
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)]));
    if (v !== null && typeof v === "object" && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const kb = textViolation(k);
        if (kb) issues.push({ field: fieldPrefix + [...path, "(key)"].join("."), ...textViolationMessages(kb) });
        // defineProperty: a JSON key "__proto__" stays a plain field, never the prototype.
        Object.defineProperty(out, normalizeText(k), { value: walk(x, [...path, k]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return v;
  };
  const value = walk(input, []);
  return { value, issues };
}

/**
 * Parses `input` with `schema`; returns the parsed value or throws ValidationError (every issue,
 * with Japanese messages). Every string is first NFC-normalised and checked by cleanInputText
 * (bidi controls, invisible characters, NUL, lone surrogates refused with the field named). The
 * usual first line of a service call taking form input.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const cleaned = cleanInputText(input);
  if (cleaned.issues.length) throw new ValidationError(cleaned.issues);
  const r = schema.safeParse(cleaned.value);
  if (!r.success) throw validationErrorFromZod(r.error);
  return r.data;
}
