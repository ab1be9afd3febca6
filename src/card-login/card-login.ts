/**
 * Operator card sign-in on the LRA, RA and IA consoles (issue 5 §5), besides password + TOTP:
 * the operator signs a fresh challenge with the authentication key of their own HPKI card, and the
 * certificate is checked by the same verifier as the SSO center (src/status/certificate-verifier.ts:
 * chain to our CAs, validity, keyUsage digitalSignature, auth-person policy, revocation fail-closed).
 * The certificate's person key (issuer DN + subject serialNumber, stable across renewal) must have
 * been bound to the operator by an administrator (`hpki operators bind-card`; `unbind-card`
 * removes it, after which the card is refused as unbound). A disabled or locked operator's card is
 * refused like their password.
 *
 * Challenge text (UTF-8, LF-separated, signed as is with `hpki card login --challenge-file`):
 *
 *   HPKI-CONSOLE-LOGIN-1
 *   console=<lra|ra|ia>
 *   nonce=<base64url of 32 random bytes>
 *   expires=<ISO 8601 UTC>
 *
 * The nonce is stored with the console and the session id that asked for it (5 minutes, single
 * use: the first attempt presenting it consumes it, whatever its outcome).
 *
 * Routes (before the sign-in guard): GET /login/card → page, or JSON {challenge, csrfToken};
 * POST /login/card {certificate (PEM or base64 DER), signature (base64)[, challenge]} or a form
 * field `response` holding the JSON printed by `hpki card login` → as POST /login: {operator,
 * csrfToken} (session regenerated) or {error, errorJa, code} with 401/403/429.
 */
import { randomBytes } from "node:crypto";
import type { Request, Router } from "express";
import { appendAudit } from "../audit/log.ts";
import type { Knex } from "knex";
import { AuthenticationError, ForbiddenError, HpkiError, NotFoundError, ConflictError, ValidationError } from "../pipeline/errors.ts";
import type { Operator, OperatorRole } from "../pipeline/operator.ts";
import { decodeName, formatName } from "../pki/name-decode.ts";
import { OID } from "../pki/oids.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { canonicalSerialHex } from "../pki/serial.ts";
import { PathValidationError } from "../pki/path-validation.ts";
import { parseCertificate } from "../pki/x509-parse.ts";
import type { CertificateIdentity } from "../status/certificate-identity.ts";
import { agentResponseFields, isCardLoginFailure } from "../status/card-login-failure.ts";
import { CardLoginVerifier, type VerifiedLogin } from "../status/certificate-verifier.ts";
import { verifyChallengeSignature } from "../status/challenge-signature.ts";
import type { Db } from "../store/db.ts";
import { toBuffer } from "../store/rows.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { completeSignIn, loginRateLimiter, save } from "../operators/login.ts";
import type { Actor } from "../audit/actor.ts";

declare module "express-session" {
  interface SessionData {
    /** Nonce of the card sign-in challenge last shown to this (anonymous) session. */
    cardNonce?: string;
  }
}

const HEADER = "HPKI-CONSOLE-LOGIN-1";
/** Lifetime of a console card challenge, ms. */
export const CARD_CHALLENGE_TTL_MS = 5 * 60_000;
/** The console verifier re-reads revocations when its last read is older than this, ms. */
const REFRESH_AFTER_MS = 30_000;

interface SharedVerifier {
  verifier: Promise<CardLoginVerifier>;
  refreshedAt: number;
}
const verifiers = new WeakMap<Db, SharedVerifier>();

/**
 * The card verifier the consoles of one process share over `db` (our CAs as trust anchors, no
 * timer: revocations are re-read on a sign-in when the last read is older than 30 s; the verifier
 * itself refuses everything once its read is older than its staleness limit). Tests call
 * `(await consoleCardVerifier(db)).refresh({ full: true })` after a revocation.
 */
export function consoleCardVerifier(db: Db): Promise<CardLoginVerifier> {
  let s = verifiers.get(db);
  if (!s) {
    const verifier = CardLoginVerifier.open({ db, refreshIntervalMs: 0 });
    s = { verifier, refreshedAt: Date.now() };
    verifiers.set(db, s);
    verifier.catch(() => verifiers.delete(db));
  }
  return s.verifier;
}

async function freshVerifier(db: Db): Promise<CardLoginVerifier> {
  const v = await consoleCardVerifier(db);
  const s = verifiers.get(db)!;
  if (Date.now() - s.refreshedAt > REFRESH_AFTER_MS) {
    await v.refresh();
    s.refreshedAt = Date.now();
  }
  return v;
}

/** A certificate given as PEM text or base64 DER. @throws PathValidationError "malformed-certificate". */
export function certificateFromText(text: string): Buffer {
  try {
    const t = text.trim();
    const der = t.startsWith("-----BEGIN") ? fromPemOrDer(t, "CERTIFICATE") : Buffer.from(t.replace(/\s+/g, ""), "base64");
    if (der.length < 16) throw new Error("too short");
    return der;
  } catch (e) {
    throw new PathValidationError("malformed-certificate", `certificate is neither PEM nor base64 DER: ${(e as Error).message}`);
  }
}

/** Serial (uppercase hex) of a certificate the verifier refused, for the audit record; undefined when it does not parse. */
function serialOf(der: Uint8Array): string | undefined {
  try {
    return Buffer.from(parseCertificate(der).serial).toString("hex").toUpperCase();
  } catch {
    return undefined;
  }
}

/** An operator's bound card identity. */
export interface OperatorCertificateBinding {
  operatorId: number;
  username: string;
  issuer: string;
  subscriberId: string;
  boundBy: string;
  at: Date;
}

/**
 * Binds the person named by authentication certificate `certDer` (issuer + subscriber id) to
 * operator `username`, after the certificate passed the card verifier (so no one binds a foreign,
 * revoked or non-authentication certificate). Throws NotFoundError (unknown operator),
 * PathValidationError (certificate refused) or ConflictError (identity bound already).
 * Audited as "operator.card_bound".
 */
export async function bindOperatorCertificate(db: Db, username: string, certDer: Uint8Array, actor: Actor): Promise<OperatorCertificateBinding> {
  const v = await consoleCardVerifier(db);
  await v.refresh({ full: true });
  const { identity } = await v.verify(certDer);
  const name = username.trim().toLowerCase();
  try {
    return await db.transaction(async (trx) => {
      const op = await trx("operators").where({ username: name }).first("id", "username");
      if (!op) throw new NotFoundError(`no operator ${username}`, `オペレータ ${username} は登録されていません。`);
      const at = new Date();
      await trx("operator_certificates").insert({ operator_id: op.id, issuer: identity.issuer, subscriber_id: identity.subscriberId, bound_by: actor.actor, at });
      await appendAudit(trx, [
        { ...actor, action: "operator.card_bound", objectType: "operator", objectId: String(op.id), details: { username: op.username, issuer: identity.issuer, subscriberId: identity.subscriberId, serial: identity.serialHex } },
      ]);
      return { operatorId: Number(op.id), username: op.username, issuer: identity.issuer, subscriberId: identity.subscriberId, boundBy: actor.actor, at };
    });
  } catch (e) {
    if ((e as { code?: string })?.code === "23505") {
      throw new ConflictError("this card holder is already bound to an operator", "この証明書の利用者は既に別のオペレータ（または同じオペレータ）に登録されています。");
    }
    throw e;
  }
}

/** Every card binding, by username then subscriber id (for `hpki operators list`). */
export async function listOperatorCertificates(db: Db): Promise<OperatorCertificateBinding[]> {
  const rows = await db("operator_certificates as c")
    .join("operators as o", "o.id", "c.operator_id")
    .orderBy([{ column: "o.username" }, { column: "c.subscriber_id" }, { column: "c.id" }])
    .select("c.operator_id", "o.username", "c.issuer", "c.subscriber_id", "c.bound_by", "c.at");
  return rows.map(bindingOf);
}

function bindingOf(r: Record<string, unknown>): OperatorCertificateBinding {
  return { operatorId: Number(r.operator_id), username: String(r.username), issuer: String(r.issuer), subscriberId: String(r.subscriber_id), boundBy: String(r.bound_by), at: new Date(r.at as string) };
}

/**
 * Which bindings of an operator unbindOperatorCertificate removes: the card holder named by one of
 * our certificates (serial in hex; any certificate of that person from the same CA names the same
 * holder, the binding being of the person, not of one card), the holder with subscriber id
 * `subscriberId`, or all of them.
 */
export type UnbindSelector = { serialHex: string } | { subscriberId: string } | { all: true };

/**
 * The card holders (issuer + subscriber id) named by the issued certificates with serial
 * `serialHex` (one per CA that issued that serial; normally one).
 */
async function holdersBySerial(trx: Knex, serialHex: string): Promise<{ issuer: string; subscriberId: string }[]> {
  const rows = await trx("certificates").where({ serial_hex: serialHex, status: "issued" }).select("der");
  const out: { issuer: string; subscriberId: string }[] = [];
  for (const r of rows) {
    const cert = parseCertificate(toBuffer(r.der));
    const subscriberId = decodeName(cert.subject).flat().find((a) => a.type === OID.serialNumber)?.value;
    if (subscriberId) out.push({ issuer: formatName(cert.issuer), subscriberId: subscriberId.normalize("NFC") });
  }
  return out;
}

/**
 * Removes card bindings of operator `username` (see UnbindSelector): card sign-in of that holder
 * is refused from then on (sessions already signed in are not ended; disable the operator for
 * that). Returns the bindings removed. Audited as one "operator.card_unbound" per binding, in the
 * same transaction. @throws ValidationError (bad serial), NotFoundError (unknown operator, or no
 * binding matches — the message says what is bound).
 */
export async function unbindOperatorCertificate(db: Db, username: string, selector: UnbindSelector, actor: Actor): Promise<OperatorCertificateBinding[]> {
  const name = username.trim().toLowerCase();
  const serial = "serialHex" in selector ? canonicalSerialHex(selector.serialHex) : undefined;
  if (serial === null) throw new ValidationError([{ field: "serial", message: "give the certificate serial number in hex", messageJa: "証明書のシリアル番号を16進数で指定してください。" }]);
  return db.transaction(async (trx) => {
    const op = await trx("operators").where({ username: name }).first("id", "username");
    if (!op) throw new NotFoundError(`no operator ${username}`, `オペレータ ${username} は登録されていません。`);
    const bound = (await trx("operator_certificates").where({ operator_id: op.id }).orderBy("id").forUpdate()
      .select("id", "operator_id", "issuer", "subscriber_id", "bound_by", "at")).map((r) => ({ id: Number(r.id), ...bindingOf({ ...r, username: op.username }) }));
    let matches = bound;
    if (serial !== undefined) {
      const holders = await holdersBySerial(trx, serial);
      matches = bound.filter((b) => holders.some((h) => h.issuer === b.issuer && h.subscriberId === b.subscriberId));
    } else if ("subscriberId" in selector) {
      const id = selector.subscriberId.normalize("NFC").trim();
      matches = bound.filter((b) => b.subscriberId === id);
    }
    if (!matches.length) {
      const what = serial !== undefined ? `the holder of certificate ${serial}` : "subscriberId" in selector ? `subscriber id ${selector.subscriberId}` : "any card";
      const whatJa = serial !== undefined ? `シリアル番号 ${serial} の証明書の利用者` : "subscriberId" in selector ? `利用者番号 ${selector.subscriberId}` : "カード";
      const list = bound.map((b) => b.subscriberId).join(", ");
      throw new NotFoundError(
        `operator ${op.username} has no card binding for ${what}${bound.length ? ` (bound: ${list})` : " (no card is bound)"}; nothing was changed`,
        `オペレータ ${op.username} には${whatJa}の登録がありません${bound.length ? `（登録済み: ${list}）` : "（カードは登録されていません）"}。何も変更していません。`,
      );
    }
    await trx("operator_certificates").whereIn("id", matches.map((m) => m.id)).delete();
    await appendAudit(trx, matches.map((m) => ({
      ...actor, action: "operator.card_unbound", objectType: "operator", objectId: String(op.id),
      details: { username: op.username, issuer: m.issuer, subscriberId: m.subscriberId, boundBy: m.boundBy, boundAt: m.at.toISOString(), serial: serial ?? undefined },
    })));
    return matches.map(({ id: _id, ...b }) => b);
  });
}

/** Creates and stores a challenge for console `console` and session `sessionId` (expired ones are deleted). */
async function issueCardChallenge(db: Db, console: string, sessionId: string, now = new Date()): Promise<{ nonce: string; text: string; expires: Date }> {
  const nonce = randomBytes(32).toString("base64url");
  const expires = new Date(now.getTime() + CARD_CHALLENGE_TTL_MS);
  const text = [HEADER, `console=${console}`, `nonce=${nonce}`, `expires=${expires.toISOString()}`].join("\n");
  await db("operator_login_challenges").where("expires_at", "<", now).delete();
  await db("operator_login_challenges").insert({ nonce, console, session_id: sessionId, text, created_at: now, expires_at: expires });
  return { nonce, text, expires };
}

/** The nonce line of a presented challenge text, if it is one of ours. */
function nonceOf(text: unknown): string | undefined {
  if (typeof text !== "string") return undefined;
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  if (lines[0] !== HEADER) return undefined;
  return lines.find((l) => l.startsWith("nonce="))?.slice(6);
}

/**
 * Consumes the challenge `nonce` for this console and session; returns the text that was signed.
 * @throws PathValidationError "challenge-replayed" (used already) or "challenge-invalid".
 */
async function consumeCardChallenge(db: Db, nonce: string | undefined, console: string, sessionId: string, now = new Date()): Promise<string> {
  if (!nonce) throw new PathValidationError("challenge-invalid", "no challenge: open the card sign-in page first");
  const [row] = await db("operator_login_challenges")
    .where({ nonce, console, session_id: sessionId })
    .whereNull("used_at")
    .where("expires_at", ">", now)
    .update({ used_at: now })
    .returning(["text"]);
  if (row) return row.text as string;
  const seen = await db("operator_login_challenges").where({ nonce }).first("used_at", "console", "session_id");
  if (seen?.used_at) throw new PathValidationError("challenge-replayed", `nonce used at ${new Date(seen.used_at).toISOString()}`);
  if (!seen) throw new PathValidationError("challenge-invalid", "unknown nonce");
  if (seen.console !== console || seen.session_id !== sessionId) throw new PathValidationError("challenge-invalid", "challenge is for another console or session");
  throw new PathValidationError("challenge-invalid", "challenge expired");
}

export interface CardLoginRouteOptions {
  db: Db;
  kit: ConsoleKit;
  allowedRoles: readonly OperatorRole[];
  rateLimit?: { windowMs: number; limit: number };
}

const NOT_BOUND = () =>
  new AuthenticationError(
    "This card is not registered for console sign-in. Ask an administrator to bind it to your account (hpki operators bind-card).",
    "このカードはコンソールのログイン用に登録されていません。管理者にアカウントへの登録（hpki operators bind-card）を依頼してください。",
  );

/** Registers GET/POST /login/card on `router` (before the sign-in guard). */
export function registerCardLoginRoutes(router: Router, o: CardLoginRouteOptions): void {
  const { kit, db } = o;
  const title = { en: "Sign in with an HPKI card", ja: "HPKIカードでログイン" };
  const limiter = loginRateLimiter(o.rateLimit);

  const showPage = async (req: Request, res: import("express").Response, status = 200, error?: { message: string; messageJa: string }) => {
    req.session.preLogin = true;
    // Persist the anonymous session first: the challenge is bound to its id.
    await save(req);
    const c = await issueCardChallenge(db, kit.console, req.sessionID);
    req.session.cardNonce = c.nonce;
    kit.render(res, "auth/login-card", { challenge: c.text, expires: c.expires.toISOString(), error }, { status, title });
  };

  router.get("/login/card", kit.asyncHandler(async (req, res) => {
    if (req.session.operatorId && req.session.console === kit.console) {
      res.redirect(303, `${kit.base}/`);
      return;
    }
    await showPage(req, res);
  }));

  router.post("/login/card", limiter, kit.asyncHandler(async (req, res) => {
    const body = agentResponseFields((req.body ?? {}) as Record<string, unknown>);
    const audit = async (actor: string, role: string, objectId: string, action: string, details: Record<string, unknown>) =>
      db.transaction((trx) => appendAudit(trx, [{ actor, role, action, objectType: "operator", objectId, details: { ...details, method: "card", console: kit.console, ip: req.ip } }]));
    let identity: CertificateIdentity | undefined;
    let presentedSerial: string | undefined;
    let operator: (Operator & { disabled: boolean; lockedUntil: Date | null }) | undefined;
    try {
      const nonce = nonceOf(body.challenge) ?? req.session.cardNonce;
      req.session.cardNonce = undefined;
      const text = await consumeCardChallenge(db, nonce, kit.console, req.sessionID);
      // The card refused the PIN (the agent's report, src/status/card-login-failure.ts): refused
      // and audited like any failed sign-in; the challenge is used up.
      if (isCardLoginFailure(body)) throw new PathValidationError(body.error, "reported by the card agent: the card refused the PIN");
      if (typeof body.certificate !== "string" || typeof body.signature !== "string") throw new PathValidationError("challenge-invalid", "certificate and signature are required");
      const der = certificateFromText(body.certificate);
      const verifier = await freshVerifier(db);
      let login: VerifiedLogin;
      try {
        login = await verifier.verify(der);
      } catch (e) {
        presentedSerial = serialOf(der);
        throw e;
      }
      identity = login.identity;
      verifyChallengeSignature(login.path.leaf.spki, text, Buffer.from(body.signature, "base64"));
      const row = await db("operator_certificates as c")
        .join("operators as o", "o.id", "c.operator_id")
        .where({ "c.issuer": identity.issuer, "c.subscriber_id": identity.subscriberId })
        .first("o.id", "o.username", "o.display_name", "o.role", "o.lra_id", "o.disabled", "o.locked_until");
      if (!row) throw NOT_BOUND();
      operator = { id: Number(row.id), username: row.username, displayName: row.display_name, role: row.role, lraId: row.lra_id === null ? null : Number(row.lra_id), disabled: Boolean(row.disabled), lockedUntil: row.locked_until ? new Date(row.locked_until) : null };
      if (operator.disabled) throw new AuthenticationError("This account is disabled.", "このアカウントは無効化されています。");
      if (operator.lockedUntil && operator.lockedUntil > new Date()) {
        throw new AuthenticationError("This account is locked after repeated failed sign-ins. Try again later.", "ログインの失敗が続いたため、このアカウントは一時的にロックされています。しばらく待ってから再度お試しください。");
      }
      if (!o.allowedRoles.includes(operator.role)) throw new ForbiddenError("This account cannot sign in to this console.", "このアカウントではこの画面にログインできません。");
    } catch (e) {
      let err: HpkiError;
      let reason: string;
      if (e instanceof PathValidationError) {
        err = new HpkiError(e.message, e.messageJa, 401, e.code);
        reason = e.code;
      } else if (e instanceof HpkiError && (e.status === 401 || e.status === 403)) {
        err = e;
        reason = !operator ? "unbound" : operator.disabled ? "disabled" : e.status === 403 ? "role" : "locked";
      } else throw e;
      const details = { reason, issuer: identity?.issuer, subscriberId: identity?.subscriberId, serial: identity?.serialHex ?? presentedSerial };
      if (operator) await audit(operator.username, operator.role, String(operator.id), reason === "role" ? "operator.login_refused" : "operator.login_failed", details);
      else await audit(identity ? `card:${identity.subscriberId}` : "card:unknown", kit.console, identity?.subscriberId ?? "-", "operator.login_failed", details);
      if (kit.wantsJson(req)) {
        res.status(err.status).json({ error: err.message, errorJa: err.messageJa, code: err.code });
        return;
      }
      await showPage(req, res, err.status, { message: err.message, messageJa: err.messageJa });
      return;
    }
    const op: Operator = { id: operator.id, username: operator.username, displayName: operator.displayName, role: operator.role, lraId: operator.lraId };
    await db.transaction(async (trx) => {
      await trx("operators").where({ id: op.id }).update({ failed_logins: 0 });
      await appendAudit(trx, [{ actor: op.username, role: op.role, action: "operator.login", objectType: "operator", objectId: String(op.id), details: { method: "card", console: kit.console, ip: req.ip, issuer: identity!.issuer, subscriberId: identity!.subscriberId, serial: identity!.serialHex } }]);
    });
    await completeSignIn(req, res, kit, op, `${kit.base}/`, { issuer: identity!.issuer, subscriberId: identity!.subscriberId });
  }));
}
