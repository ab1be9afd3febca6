/** CKU_USER login shared by the CA session pool and card sessions. */
import type graphene from "graphene-pk11";
import { HsmError, pkcs11ErrorName, toHsmError } from "./errors.ts";

/**
 * C_Login as CKU_USER (PKCS#11 v2.40 §5.6). CKR_USER_ALREADY_LOGGED_IN is success: login state
 * belongs to the token within this process, so the 2nd session of a token is already logged in.
 * `context` names the token for messages, e.g. `token "hpki-ca"` or `card "card-…"`.
 * @throws HsmError, e.g. code CKR_PIN_INCORRECT with message `<context>: PIN incorrect (CKR_PIN_INCORRECT)`.
 */
export function loginUser(session: graphene.Session, pin: string, context: string): void {
  try {
    session.login(pin);
  } catch (err) {
    if (pkcs11ErrorName(err) === "CKR_USER_ALREADY_LOGGED_IN") return;
    throw toHsmError(err, context);
  }
}

/** CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS (v2.40 §5.6 session states). */
const USER_STATES = new Set([1, 3]);

/**
 * Throws HsmError CKR_USER_NOT_LOGGED_IN when the session is not in a user state. Call it when a
 * private object is unexpectedly missing: after a logout, SoftHSM reports private keys as absent
 * (CKR_KEY_HANDLE_INVALID, empty C_FindObjects) rather than CKR_USER_NOT_LOGGED_IN, and the pool
 * heals only what it recognises.
 */
export function assertLoggedIn(session: graphene.Session, context: string): void {
  const { state } = session.lib.C_GetSessionInfo(session.handle);
  if (!USER_STATES.has(state)) {
    throw new HsmError(`${context}: session is not logged in (CKR_USER_NOT_LOGGED_IN)`, "CKR_USER_NOT_LOGGED_IN");
  }
}
