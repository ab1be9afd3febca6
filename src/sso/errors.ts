/** Refusals of SSO administration and account-link operations: a stable code, English and Japanese text. */
export class SsoRequestError<Code extends string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly messageJa: string,
  ) {
    super(message);
  }
}
