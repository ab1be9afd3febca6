/**
 * The card-side refusal of a card login (issue 5 §2: "Wrong PIN … a clear page and an audit
 * record"). The PIN is checked by the card (PKCS#11 C_Login), never by the server, so the server
 * learns of a wrong PIN only when the agent (`hpki card login`) reports it: a small JSON object
 * posted or pasted to the same endpoint as a signed challenge. Shared by the SSO center and the
 * consoles' card sign-in, so neither imports the other. The report is the client's word — it is
 * recorded as such and never attributed to a person.
 */
import { pkcs11ErrorName } from "../hsm/errors.ts";

/**
 * What the agent reports when the card itself refused the PIN (PKCS#11 C_Login): posted or pasted
 * to the same endpoint as a SignedChallenge, so the server can answer with a clear page and keep an
 * audit record (issue 5 §2). It carries no PIN and no certificate (the card was never opened).
 */
export interface CardLoginFailure {
  challenge: string;
  error: CardLoginFailureCode;
}

/** The card-side refusals an agent reports: CKR_PIN_INCORRECT, CKR_PIN_LOCKED (PKCS#11 v2.40 §5.6). */
export type CardLoginFailureCode = "pin-incorrect" | "pin-locked";

/**
 * The report for `err` thrown by signLoginChallenge when the card refused the PIN, or undefined
 * for every other error (those are the agent's own problem, not a login attempt).
 */
export function cardLoginFailure(err: unknown, challengeText: string): CardLoginFailure | undefined {
  const name = pkcs11ErrorName(err);
  if (name === "CKR_PIN_INCORRECT" || name === "CKR_PIN_LEN_RANGE") return { challenge: challengeText, error: "pin-incorrect" };
  if (name === "CKR_PIN_LOCKED") return { challenge: challengeText, error: "pin-locked" };
  return undefined;
}

/** True when `body` (a parsed POST) is a CardLoginFailure report. */
export function isCardLoginFailure(body: Record<string, unknown>): body is Record<string, unknown> & CardLoginFailure {
  return typeof body.challenge === "string" && (body.error === "pin-incorrect" || body.error === "pin-locked");
}

/**
 * The fields of a card-login POST (SSO center and consoles alike): sent as fields (challenge,
 * certificate, signature) or, from a login page, as `response` holding the JSON `hpki card login`
 * printed (a signed challenge or a CardLoginFailure), merged over the other fields. Unreadable JSON
 * drops `certificate`, so the attempt fails as one without a signed response.
 */
export function agentResponseFields(body: Record<string, unknown>): Record<string, unknown> {
  if (typeof body.response !== "string") return body;
  try {
    const parsed = JSON.parse(body.response) as unknown;
    if (parsed && typeof parsed === "object") return { ...body, ...(parsed as Record<string, unknown>) };
  } catch {
    // fall through
  }
  return { ...body, certificate: undefined };
}
