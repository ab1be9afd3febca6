/**
 * Validity periods (RFC 5280 §4.1.2.5) the way real HPKI certificates have them [CERT]:
 * end entities run from 00:00:00 JST (15:00:00Z the previous day) of the issuance day to 23:59:59
 * JST (14:59:59Z) of the day before the anniversary; CA certificates start at the issuance time
 * and end the same way. JST is UTC+9 all year (no daylight saving).
 */
import type { CertificateProfile } from "./profile.ts";

export const JST_OFFSET_MS = 9 * 3600_000;

/** Thrown when no valid period fits (e.g. the issuer expires before the certificate could start). */
export class ValidityError extends Error {
  override name = "ValidityError";
}

/** 00:00:00 JST of the JST calendar day containing `t`, as a UTC instant. */
export function jstStartOfDay(t: Date): Date {
  const j = new Date(t.getTime() + JST_OFFSET_MS);
  return new Date(Date.UTC(j.getUTCFullYear(), j.getUTCMonth(), j.getUTCDate()) - JST_OFFSET_MS);
}

/** The latest 23:59:59 JST instant at or before `t` (t's milliseconds ignored). */
export function jstEndOfDayAtOrBefore(t: Date): Date {
  const s = Math.floor(t.getTime() / 1000) * 1000;
  return new Date(jstStartOfDay(new Date(s + 1000)).getTime() - 1000);
}

/** `t` plus whole calendar `years` in JST (Feb 29 + 1 year → Mar 1, as Date.UTC rolls over). */
export function addJstYears(t: Date, years: number): Date {
  const j = new Date(t.getTime() + JST_OFFSET_MS);
  return new Date(
    Date.UTC(j.getUTCFullYear() + years, j.getUTCMonth(), j.getUTCDate(), j.getUTCHours(), j.getUTCMinutes(), j.getUTCSeconds()) -
      JST_OFFSET_MS,
  );
}

/**
 * Validity for a certificate issued at `now` under `profile`:
 * notBefore = 00:00:00 JST of now's JST day ("jst-start-of-day") or now truncated to the second
 * ("issuance-time"); notAfter = 23:59:59 JST of the day before the `validity.years` anniversary
 * of notBefore's JST date. `opts.notAfterCap` (the issuer's notAfter) caps notAfter, rounded down
 * to a 23:59:59 JST boundary so the shape stays. Dates have whole seconds. Throws ValidityError if
 * the cap leaves no period (notAfter ≤ notBefore) or `now` is not a valid Date.
 */
export function computeValidity(profile: CertificateProfile, now: Date, opts: { notAfterCap?: Date } = {}): { notBefore: Date; notAfter: Date } {
  if (Number.isNaN(now.getTime())) throw new ValidityError("now is not a valid Date");
  const notBefore = profile.validity.notBefore === "jst-start-of-day" ? jstStartOfDay(now) : new Date(Math.floor(now.getTime() / 1000) * 1000);
  const anniversary = addJstYears(jstStartOfDay(notBefore), profile.validity.years);
  let notAfter = new Date(anniversary.getTime() - 1000);
  if (opts.notAfterCap && notAfter > opts.notAfterCap) notAfter = jstEndOfDayAtOrBefore(opts.notAfterCap);
  if (notAfter <= notBefore) {
    throw new ValidityError(`no validity period left: the issuer's notAfter ${opts.notAfterCap?.toISOString()} is before ${notBefore.toISOString()}`);
  }
  return { notBefore, notAfter };
}
