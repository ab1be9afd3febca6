/**
 * Refusals of SSO administration and account-link operations: a stable code, English and Japanese
 * text and an HTTP status. They are HpkiErrors, so the SSO admin console renders them like every
 * console error; the services' API (server.ts) maps client-authentication failures to 401 itself.
 */
import { HpkiError } from "../pipeline/errors.ts";

/** HTTP status of each code (anything else: 400). */
const STATUS: Record<string, number> = { CLIENT_EXISTS: 409, ACCOUNT_TAKEN: 409, UNKNOWN_CLIENT: 404, NO_SUCH_LINK: 404 };

export class SsoRequestError<Code extends string> extends HpkiError {
  declare readonly code: Code;
  constructor(code: Code, message: string, messageJa: string) {
    super(message, messageJa, STATUS[code] ?? 400, code);
  }
}
