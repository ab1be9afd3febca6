/**
 * PKCS#11 error classification and the HSM layer's own error type.
 *
 * pkcs11js throws `Pkcs11Error` whose `message` is the CKR_ name (e.g. "CKR_PIN_INCORRECT") and
 * whose `code` is the numeric CK_RV (PKCS#11 v2.40 §3.6 "Return values"). Everything here works on
 * the name so callers never compare magic numbers.
 */
import pkcs11 from "pkcs11js";

/** CK_RV number → CKR_ name, built from pkcs11js's constants. */
const RV_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(pkcs11 as unknown as Record<string, unknown>)
    .filter((e): e is [string, number] => e[0].startsWith("CKR_") && typeof e[1] === "number")
    .map(([name, rv]) => [rv, name]),
);

/**
 * Return values after which the session (or the whole module) must be rebuilt, but the operation
 * itself may succeed when retried once (PKCS#11 v2.40 §5.1: session handles die with C_Finalize,
 * device removal or C_CloseSession; login state dies with the last session of a token).
 */
export const RECOVERABLE_RVS: ReadonlySet<string> = new Set([
  "CKR_SESSION_HANDLE_INVALID",
  "CKR_SESSION_CLOSED",
  "CKR_DEVICE_ERROR",
  "CKR_DEVICE_REMOVED",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_CRYPTOKI_NOT_INITIALIZED",
  "CKR_USER_NOT_LOGGED_IN",
]);

/** The subset of {@link RECOVERABLE_RVS} that also needs C_Finalize + C_Initialize of the module. */
export const REINIT_RVS: ReadonlySet<string> = new Set([
  "CKR_DEVICE_ERROR",
  "CKR_DEVICE_REMOVED",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_CRYPTOKI_NOT_INITIALIZED",
]);

/**
 * Failures that say the token itself is gone or unreadable rather than one session being bad:
 * device removed / token not present (PKCS#11 v2.40 §5.1), a token whose directory vanished
 * (SoftHSM2 then drops it from the slot list: "TOKEN_NOT_FOUND" when looked up by label, or
 * CKR_TOKEN_NOT_PRESENT from SessionPool.assertTokenPresent when a key vanished with it), and login
 * failures a half-read token gives (CKR_TOKEN_NOT_RECOGNIZED, CKR_GENERAL_ERROR, CKR_DEVICE_ERROR;
 * not CKR_USER_PIN_NOT_INITIALIZED, which means another process is still initialising the token
 * and is handled where tokens are created, src/sso/sealer.ts). The pool answers them with a rate-limited module
 * re-initialisation, a retry, and the token's health marked degraded while they last. Never a
 * wrong PIN: retrying CKR_PIN_INCORRECT would lock the token.
 */
export const TOKEN_LOSS_CODES: ReadonlySet<string> = new Set([
  "CKR_DEVICE_REMOVED",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_DEVICE_ERROR",
  "CKR_GENERAL_ERROR",
  "CKR_TOKEN_NOT_RECOGNIZED",
  "TOKEN_NOT_FOUND",
]);

/** True when `err` is one of {@link TOKEN_LOSS_CODES} (a CKR_ name or an HsmError code). */
export function isTokenLossError(err: unknown): boolean {
  const code = err instanceof HsmError ? err.code : pkcs11ErrorName(err);
  return code !== undefined && TOKEN_LOSS_CODES.has(code);
}

/**
 * The CKR_ name of a PKCS#11 error (from pkcs11js, graphene or {@link HsmError}), or `undefined` when
 * `err` is not a PKCS#11 error. Unknown vendor codes come back as "CKR_0x…" (hex CK_RV).
 */
export function pkcs11ErrorName(err: unknown): string | undefined {
  if (err instanceof HsmError) return err.code.startsWith("CKR_") ? err.code : undefined;
  if (!(err instanceof Error)) return undefined;
  const m = /\b(CKR_[A-Z0-9_]+)\b/.exec(err.message);
  if (m) return m[1];
  const code = (err as { code?: unknown }).code;
  if (err.name === "Pkcs11Error" && typeof code === "number") {
    return RV_NAMES.get(code) ?? `CKR_0x${code.toString(16)}`;
  }
  return undefined;
}

/** True when `err` is one of {@link RECOVERABLE_RVS}: heal the session/module and retry once. */
export function isRecoverablePkcs11Error(err: unknown): boolean {
  const name = pkcs11ErrorName(err);
  return name !== undefined && RECOVERABLE_RVS.has(name);
}

/**
 * An HSM-layer failure with a stable `code`: a CKR_ name when PKCS#11 returned one, otherwise one of
 * "TOKEN_NOT_FOUND", "CARD_NOT_FOUND", "CARD_BUSY", "KEY_EXISTS", "KEY_NOT_FOUND", "TOKEN_EXISTS", "NO_FREE_SLOT",
 * "PIN_UNAVAILABLE", "PIN_FILE_INSECURE", "BAD_CERTIFICATE", "POOL_CLOSED", "TOKEN_CONFLICT", "KEY_AMBIGUOUS",
 * "KEY_UNSAFE", "SEALED_MALFORMED", "SEAL_OPEN_FAILED", "TOKEN_UNAVAILABLE" (the token is gone or
 * unreadable right now; the pool keeps trying to get it back — answer 503 / OCSP tryLater). Messages never contain PINs. Errors an
 * operator must act on at start-up (a missing token, no PIN) also carry `messageJa`, which the CLI
 * prints under the English message.
 */
export class HsmError extends Error {
  override readonly name = "HsmError";
  /** The message in Japanese, when the error is meant for an operator. */
  readonly messageJa?: string;
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown; messageJa?: string },
  ) {
    super(message, options);
    if (options?.messageJa) this.messageJa = options.messageJa;
  }
}

/** Human wording for the CKR_ values a user can cause (PIN entry) or fix (token state). */
const FRIENDLY: Readonly<Record<string, string>> = {
  CKR_PIN_INCORRECT: "PIN incorrect",
  CKR_PIN_LOCKED: "PIN locked: too many wrong attempts, the SO must unblock it",
  CKR_PIN_EXPIRED: "PIN expired: it must be changed",
  CKR_PIN_LEN_RANGE: "PIN length out of range",
  CKR_USER_PIN_NOT_INITIALIZED: "user PIN not initialised on this token",
  CKR_TOKEN_NOT_PRESENT: "token not present",
  CKR_TOKEN_NOT_RECOGNIZED: "token not recognised",
  CKR_ATTRIBUTE_SENSITIVE: "attribute is sensitive and cannot be read",
};

/**
 * Wraps a PKCS#11 error for a caller: `context` says what was attempted (e.g. `token "hpki-ca"`);
 * the message reads "<context>: PIN incorrect (CKR_PIN_INCORRECT)". Non-PKCS#11 errors pass unchanged.
 */
export function toHsmError(err: unknown, context: string): unknown {
  if (err instanceof HsmError) return err;
  const name = pkcs11ErrorName(err);
  if (!name) return err;
  const text = FRIENDLY[name] ?? "PKCS#11 call failed";
  return new HsmError(`${context}: ${text} (${name})`, name, { cause: err });
}
