/**
 * Regional associations (地域受付審査局) and console operators: creation, listing, sign-in.
 *
 * Sign-in is password (argon2id, PHC string in operators.password_hash) + TOTP (RFC 6238, SHA-1,
 * 6 digits, 30 s, ±1 step). A TOTP time step is accepted once: the accepted step is stored in
 * operators.totp_last_counter and later codes must be from a later step (replay refused).
 * Failed sign-ins delay further attempts from the same source progressively (login-throttle.ts);
 * there is no account lock that a stranger could trigger.
 * TOTP secrets are stored sealed under the operators' HSM sealing key (operator-secrets.ts; the
 * key must be open in this process: useOperatorSecrets). Every change writes its audit record in
 * the same transaction; passwords, password hashes and TOTP secrets never reach the audit log or
 * any log line.
 */
import { randomInt } from "node:crypto";
import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from "@node-rs/argon2";
import { generate as totpGenerate, generateSecret, generateURI, verify as totpVerify } from "otplib";
import { z } from "zod";
import { appendAudit, type AuditEvent } from "../audit/log.ts";
import { AuthenticationError, ConflictError, ForbiddenError, NotFoundError, ValidationError, jaMessage, parseInput } from "../pipeline/errors.ts";
import { OPERATOR_ROLES, isLraRole, type Operator, type OperatorRole } from "../pipeline/operator.ts";
import { textViolation } from "../pki/text-rules.ts";
import type { Db } from "../store/db.ts";
import { assertNotThrottled, clearLoginFailures, recordLoginFailure, sourceKey } from "./login-throttle.ts";
import { openTotpSecret, operatorSecrets } from "./operator-secrets.ts";

/** Who performs an administrative change, as written into the audit log (see auditActor()). */
import type { Actor } from "../audit/actor.ts";

/** A regional association (地域受付審査局). */
export interface Lra {
  id: number;
  /** Public code, "PP-NNN" (prefecture number, association number), e.g. "13-001". */
  code: string;
  /** NFC-normalised name, e.g. "東京都医師会". */
  name: string;
  createdAt: Date;
}

/** An operator as listed (no secrets). */
export interface OperatorListing extends Operator {
  lraCode: string | null;
  disabled: boolean;
  lockedUntil: Date | null;
  createdAt: Date;
}

export interface AddOperatorResult {
  operator: Operator;
  /** The password: the one given, or the generated one. Shown once, stored only as its hash. */
  password: string;
  /** Base32 TOTP secret, shown once for enrolment in an authenticator app. */
  totpSecret: string;
  /** otpauth://totp/hpki-ca:<username>?secret=…&issuer=hpki-ca (for a QR code). */
  otpauthUri: string;
  passwordGenerated: boolean;
}

/** TOTP issuer shown in authenticator apps. */
export const TOTP_ISSUER = "hpki-ca";
const TOTP_PERIOD = 30;
/** argon2id, OWASP parameters (19 MiB, t=2, p=1). */
const ARGON2_OPTIONS = { algorithm: 2 as Algorithm, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const MIN_PASSWORD_LENGTH = 12;
// Unambiguous characters for generated passwords (no 0/O, 1/l/I): 55 symbols, 18 chars ≈ 104 bits.
const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

const nfcText = (max: number) =>
  z
    .string()
    .transform((s) => s.normalize("NFC").trim())
    // One-line names: the shared rule set (text-rules.ts) without the line breaks notes may hold.
    .pipe(z.string().min(1).max(max).refine((s) => !textViolation(s), jaMessage("contains control characters", "制御文字が含まれています。")));

const lraSchema = z.strictObject({
  code: z.string().trim().regex(/^[0-9]{2}-[0-9]{3}$/, jaMessage('must look like "13-001"', "地域受付審査局コードは「13-001」の形式で入力してください。")),
  name: nfcText(100),
});

const usernameSchema = z.string().trim().toLowerCase().regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, jaMessage("2–63 characters: a-z 0-9 . _ -, starting with a letter or digit", "ユーザー名は半角英小文字・数字・「. _ -」の2〜63文字で、英数字で始めてください。"));

const operatorSchema = z
  .strictObject({
    username: usernameSchema,
    displayName: nfcText(100).optional(),
    role: z.enum(OPERATOR_ROLES),
    lraCode: z.string().trim().optional(),
    password: z.string().min(MIN_PASSWORD_LENGTH).max(1024).optional(),
  })
  .superRefine((v, ctx) => {
    if (isLraRole(v.role) && !v.lraCode) {
      ctx.addIssue({ code: "custom", path: ["lraCode"], message: `role ${v.role} needs a regional association (--lra CODE)`, params: { messageJa: "地域受付審査局の役割には所属する地域受付審査局の指定が必要です。" } });
    }
    if (!isLraRole(v.role) && v.lraCode) {
      ctx.addIssue({ code: "custom", path: ["lraCode"], message: `role ${v.role} is not scoped to a regional association`, params: { messageJa: "この役割には地域受付審査局を指定できません。" } });
    }
  });

interface OperatorRow {
  id: number;
  username: string;
  display_name: string;
  role: OperatorRole;
  lra_id: number | null;
  password_hash: string;
  totp_secret: string | null;
  totp_sealed: Uint8Array | null;
  totp_last_counter: number | string | null;
  failed_logins: number;
  locked_until: Date | string | null;
  disabled: boolean;
  created_at: Date | string;
}

function toOperator(r: Pick<OperatorRow, "id" | "username" | "display_name" | "role" | "lra_id">): Operator {
  return { id: Number(r.id), username: r.username, displayName: r.display_name, role: r.role, lraId: r.lra_id === null ? null : Number(r.lra_id) };
}

function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: string })?.code === "23505";
}

/**
 * Creates a regional association. Input: code "PP-NNN" (e.g. "13-001"), name (NFC-normalised,
 * 1–100 characters). Throws ValidationError (bad input) or ConflictError (code taken).
 * Audited as "lra.created".
 */
export async function addLra(db: Db, input: { code: string; name: string }, actor: Actor): Promise<Lra> {
  const v = parseInput(lraSchema, input);
  try {
    return await db.transaction(async (trx) => {
      const [row] = await trx("lras").insert({ code: v.code, name: v.name }).returning(["id", "code", "name", "created_at"]);
      await appendAudit(trx, [{ ...actor, action: "lra.created", objectType: "lra", objectId: String(row.id), details: { code: v.code, name: v.name } }]);
      return { id: Number(row.id), code: row.code, name: row.name, createdAt: new Date(row.created_at) };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new ConflictError(`regional association ${v.code} already exists`, `地域受付審査局 ${v.code} は既に登録されています。`);
    throw e;
  }
}

/** All regional associations, by code. */
export async function listLras(db: Db): Promise<Lra[]> {
  const rows = await db("lras").select("id", "code", "name", "created_at").orderBy("code");
  return rows.map((r) => ({ id: Number(r.id), code: r.code, name: r.name, createdAt: new Date(r.created_at) }));
}

/** One regional association by id, or null. */
export async function getLra(db: Db, id: number): Promise<Lra | null> {
  const r = await db("lras").where({ id }).first("id", "code", "name", "created_at");
  return r ? { id: Number(r.id), code: r.code, name: r.name, createdAt: new Date(r.created_at) } : null;
}

/** A random password of `length` unambiguous characters (CSPRNG). */
export function generatePassword(length = 18): string {
  let s = "";
  for (let i = 0; i < length; i++) s += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
  return s;
}

/**
 * Creates an operator. Input: username (2–63 of a-z 0-9 . _ -, lower-cased), role (OPERATOR_ROLES),
 * lraCode (required for lra_reviewer/lra_manager, forbidden otherwise), displayName (default the
 * username), password (≥ 12 characters; generated when absent). Returns the operator with the
 * password and TOTP secret/URI — the only time they are available. Throws ValidationError (bad
 * input, unknown lraCode) or ConflictError (username taken). Audited as "operator.created"
 * (username, role, association; never the password or the secret).
 */
export async function addOperator(
  db: Db,
  input: { username: string; displayName?: string; role: OperatorRole | string; lraCode?: string; password?: string },
  actor: Actor,
): Promise<AddOperatorResult> {
  const v = parseInput(operatorSchema, input);
  const password = v.password ?? generatePassword();
  const passwordHash = await argon2Hash(password, ARGON2_OPTIONS);
  const totpSecret = generateSecret();
  const secrets = await operatorSecrets(db);
  try {
    const operator = await db.transaction(async (trx) => {
      let lraId: number | null = null;
      if (v.lraCode) {
        const lra = await trx("lras").where({ code: v.lraCode }).first("id");
        if (!lra) throw new ValidationError([{ field: "lraCode", message: `no regional association ${v.lraCode}`, messageJa: `地域受付審査局 ${v.lraCode} は登録されていません。` }]);
        lraId = Number(lra.id);
      }
      // The id first: the sealed secret is bound to its row (AAD) and is stored with the insert.
      const { rows: seq } = await trx.raw("SELECT nextval(pg_get_serial_sequence('operators', 'id')) AS id");
      const id = Number(seq[0].id);
      const totpSealed = await secrets.seal(id, totpSecret);
      const [row] = await trx("operators")
        .insert({ id, username: v.username, display_name: v.displayName ?? v.username, role: v.role, lra_id: lraId, password_hash: passwordHash, totp_sealed: totpSealed })
        .returning(["id", "username", "display_name", "role", "lra_id"]);
      const op = toOperator(row);
      await appendAudit(trx, [
        { ...actor, action: "operator.created", objectType: "operator", objectId: String(op.id), details: { username: op.username, displayName: op.displayName, role: op.role, lraCode: v.lraCode ?? null } },
      ]);
      return op;
    });
    return { operator, password, totpSecret, otpauthUri: generateURI({ issuer: TOTP_ISSUER, label: operator.username, secret: totpSecret }), passwordGenerated: !v.password };
  } catch (e) {
    if (isUniqueViolation(e)) throw new ConflictError(`operator ${v.username} already exists`, `オペレータ ${v.username} は既に登録されています。`);
    throw e;
  }
}

/** All operators with their association code, lock and disabled state (no secrets), by username. */
export async function listOperators(db: Db): Promise<OperatorListing[]> {
  const rows = await db("operators as o")
    .leftJoin("lras as l", "l.id", "o.lra_id")
    .select("o.id", "o.username", "o.display_name", "o.role", "o.lra_id", "o.disabled", "o.locked_until", "o.created_at", "l.code as lra_code")
    .orderBy("o.username");
  return rows.map((r) => ({
    ...toOperator(r),
    lraCode: r.lra_code ?? null,
    disabled: Boolean(r.disabled),
    lockedUntil: r.locked_until ? new Date(r.locked_until) : null,
    createdAt: new Date(r.created_at),
  }));
}

/**
 * The operator with id `id` as the consoles see it on every request: null when it does not exist
 * or is disabled (a disabled operator loses access at once).
 */
export async function loadActiveOperator(db: Db, id: number): Promise<Operator | null> {
  const r = await db("operators").where({ id, disabled: false }).first("id", "username", "display_name", "role", "lra_id");
  return r ? toOperator(r) : null;
}

/**
 * Disables or re-enables an operator (sessions stop working on their next request). Throws
 * NotFoundError for an unknown username. Audited as "operator.disabled" / "operator.enabled".
 */
export async function setOperatorDisabled(db: Db, username: string, disabled: boolean, actor: Actor): Promise<Operator> {
  return db.transaction(async (trx) => {
    const [row] = await trx("operators").where({ username: username.trim().toLowerCase() }).update({ disabled }).returning(["id", "username", "display_name", "role", "lra_id"]);
    if (!row) throw new NotFoundError(`no operator ${username}`, `オペレータ ${username} は登録されていません。`);
    const op = toOperator(row);
    await appendAudit(trx, [{ ...actor, action: disabled ? "operator.disabled" : "operator.enabled", objectType: "operator", objectId: String(op.id), details: { username: op.username } }]);
    return op;
  });
}

// A real argon2id hash of a random password: verified against when the username is unknown, so
// the response time does not tell whether an account exists.
let dummyHash: Promise<string> | undefined;
function timingDummyHash(): Promise<string> {
  dummyHash ??= argon2Hash(generatePassword(), ARGON2_OPTIONS);
  return dummyHash;
}

export interface AuthenticateOptions {
  /** Clock (tests). */
  now?: Date;
  /** Source address, written into the audit record of the attempt. */
  ip?: string;
  /**
   * Roles that may sign in here (a console). An operator of another role with the right factors
   * is refused with ForbiddenError (audited "operator.login_refused"); the TOTP code is used up.
   */
  allowedRoles?: readonly OperatorRole[];
  /** Where the sign-in happens ("lra", "ra", "ia"), written into the audit record. */
  console?: string;
}

type LoginOutcome = { ok: true; operator: Operator } | { ok: false; wrongConsole?: boolean };

/**
 * Signs an operator in: username, password and the current 6-digit TOTP code. Returns the
 * Operator. Throws AuthenticationError with one message whatever failed (unknown user, wrong
 * password, wrong or replayed code, disabled account). Failures are counted per (user name,
 * source address) and per source, with a progressive delay (login-throttle.ts): while delayed, an
 * attempt from that source is refused with LoginThrottledError (429) before any factor is checked;
 * other sources are never delayed by it (no lock anyone can trigger, issue 10 §9). Failed attempts
 * on existing accounts are audited ("operator.login_failed", with the failing factor, the source's
 * count and the account's total for auditors); success clears the pair's count and is audited
 * ("operator.login"). With `allowedRoles`, an operator of another role gets ForbiddenError (403)
 * after both factors.
 */
export async function authenticate(db: Db, username: string, password: string, totpCode: string, opts: AuthenticateOptions = {}): Promise<Operator> {
  const now = opts.now ?? new Date();
  const name = String(username ?? "").trim().toLowerCase();
  const code = String(totpCode ?? "").replace(/\s+/g, "");
  const pw = String(password ?? "");
  const source = sourceKey(opts.ip);
  if (!name || name.length > 63 || !pw || pw.length > 1024) {
    await argon2Verify(await timingDummyHash(), "x").catch(() => false);
    throw new AuthenticationError();
  }
  const outcome = await db.transaction(async (trx): Promise<LoginOutcome> => {
    const row: OperatorRow | undefined = await trx("operators").where({ username: name }).forUpdate().first();
    // After the row lock: concurrent attempts on one account each see the delay the previous set.
    await assertNotThrottled(trx, name, source, now);
    if (!row) {
      await argon2Verify(await timingDummyHash(), pw).catch(() => false);
      await recordLoginFailure(trx, name, source, now);
      return { ok: false };
    }
    const passwordOk = await argon2Verify(row.password_hash, pw).catch(() => false);
    const last = row.totp_last_counter === null ? undefined : Number(row.totp_last_counter);
    let totpStep: number | undefined;
    let totpFailure: "totp" | "totp_replay" | undefined;
    if (/^[0-9]{6}$/.test(code)) {
      const secret = await openTotpSecret(db, row);
      const epoch = Math.floor(now.getTime() / 1000);
      const r = await totpVerify({ secret, token: code, epoch, epochTolerance: TOTP_PERIOD, afterTimeStep: last });
      if (r.valid && "timeStep" in r) totpStep = r.timeStep;
      else if (last !== undefined && (await totpVerify({ secret, token: code, epoch, epochTolerance: TOTP_PERIOD })).valid) totpFailure = "totp_replay";
      else totpFailure = "totp";
    } else totpFailure = "totp";
    const op = toOperator(row);
    const audit = (action: string, details: Record<string, unknown>) =>
      appendAudit(trx, [{ actor: op.username, role: op.role, action, objectType: "operator", objectId: String(op.id), details: { ...details, ip: opts.ip, console: opts.console } }]);

    if (passwordOk && totpStep !== undefined && !row.disabled) {
      await trx("operators").where({ id: op.id }).update({ failed_logins: 0, totp_last_counter: totpStep });
      await clearLoginFailures(trx, name, source);
      if (opts.allowedRoles && !opts.allowedRoles.includes(op.role)) {
        await audit("operator.login_refused", { reason: "role" });
        return { ok: false, wrongConsole: true };
      }
      await audit("operator.login", {});
      return { ok: true, operator: op };
    }
    const reason = row.disabled ? "disabled" : !passwordOk ? "password" : (totpFailure ?? "unknown");
    const t = await recordLoginFailure(trx, name, source, now);
    const failedLogins = row.failed_logins + 1;
    await trx("operators").where({ id: op.id }).update({ failed_logins: failedLogins });
    await audit("operator.login_failed", { reason, failedLogins, sourceFailures: t.failures, delayedSeconds: Math.ceil(t.delayMs / 1000) });
    return { ok: false };
  });
  if (outcome.ok) return outcome.operator;
  if (outcome.wrongConsole) {
    throw new ForbiddenError("This account cannot sign in to this console.", "このアカウントではこの画面にログインできません。");
  }
  throw new AuthenticationError();
}

/** Audits a sign-out ("operator.logout") of operator `operatorId` from `console`. */
export async function recordLogout(db: Db, operatorId: number, console: string): Promise<void> {
  await db.transaction(async (trx) => {
    const r = await trx("operators").where({ id: operatorId }).first("username", "role");
    if (r) await appendAudit(trx, [{ actor: r.username, role: r.role, action: "operator.logout", objectType: "operator", objectId: String(operatorId), details: { console } }]);
  });
}

/**
 * The TOTP code of `secret` at `at` (default now), e.g. for test helpers and the demo driving the
 * consoles over HTTP. Not used by sign-in itself.
 */
export async function totpCodeAt(secret: string, at: Date = new Date()): Promise<string> {
  return totpGenerate({ secret, epoch: Math.floor(at.getTime() / 1000) });
}

/** The TOTP time step (RFC 6238 counter) containing `at`. */
export function totpStepAt(at: Date): number {
  return Math.floor(at.getTime() / 1000 / TOTP_PERIOD);
}
