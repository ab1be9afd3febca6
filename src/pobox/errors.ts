/** Refusals of the PO box: a stable code, English and Japanese text, an HTTP status. */
import { HpkiError } from "../pipeline/errors.ts";

const STATUS: Record<string, number> = {
  NOT_FOUND: 404, FORBIDDEN: 403, FORWARD_FORBIDDEN: 403, NOT_DESIGNATED: 403, QUOTA_EXCEEDED: 413, TOO_LARGE: 413,
  CONTENT_CHANGED: 422, NOT_AN_ENVELOPE: 422, RECIPIENTS_MISSING: 422, ERASED: 410, UNAUTHENTICATED: 401,
  JPKI_REFUSED: 403, CHALLENGE_INVALID: 401, PATIENT_NOT_REGISTERED: 422,
};

export class PoboxError extends HpkiError {
  constructor(code: string, message: string, messageJa: string) {
    super(message, messageJa, STATUS[code] ?? 400, code);
  }
}
