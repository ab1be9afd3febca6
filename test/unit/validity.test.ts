import { describe, expect, it } from "vitest";
import { ValidityError, computeValidity, jstEndOfDayAtOrBefore, jstStartOfDay } from "../../src/pki/validity.ts";
import { loadProfile } from "./helpers/pki-fixtures.ts";

const sign = loadProfile("sign");
const root = loadProfile("root");
const ca = loadProfile("issuing-ca");
const iso = (d: Date) => d.toISOString().replace(".000", "");

describe("computeValidity, end entities (JST day boundaries like the real certificates)", () => {
  it("issued during a JST day starts at 00:00:00 JST (15:00:00Z the previous UTC day) and ends 23:59:59 JST before the 5th anniversary", () => {
    // 2022-02-07 10:30 JST = 2022-02-07 01:30Z (MEDIS 015e started 2022-02-06 15:00:00Z)
    const v = computeValidity(sign, new Date("2022-02-07T01:30:00Z"));
    expect(iso(v.notBefore)).toBe("2022-02-06T15:00:00Z");
    expect(iso(v.notAfter)).toBe("2027-02-06T14:59:59Z");
  });

  it("uses the JST date, not the UTC date: 20:00Z is already the next JST day", () => {
    const v = computeValidity(sign, new Date("2022-03-15T20:00:00Z")); // 2022-03-16 05:00 JST
    expect(iso(v.notBefore)).toBe("2022-03-15T15:00:00Z"); // = MEDIS 006f
    expect(iso(v.notAfter)).toBe("2027-03-15T14:59:59Z");
  });

  it("handles the exact boundaries 14:59:59Z and 15:00:00Z", () => {
    expect(iso(computeValidity(sign, new Date("2024-01-01T14:59:59.999Z")).notBefore)).toBe("2023-12-31T15:00:00Z");
    expect(iso(computeValidity(sign, new Date("2024-01-01T15:00:00Z")).notBefore)).toBe("2024-01-01T15:00:00Z");
  });

  it("takes Feb 29 to Feb 28 of the end year", () => {
    const v = computeValidity(sign, new Date("2024-02-29T03:00:00Z"));
    expect(iso(v.notBefore)).toBe("2024-02-28T15:00:00Z");
    expect(iso(v.notAfter)).toBe("2029-02-28T14:59:59Z"); // 23:59:59 JST 2029-02-28
  });

  it("is capped by the issuer's notAfter, rounded down to 23:59:59 JST", () => {
    const v = computeValidity(sign, new Date("2030-06-01T00:00:00Z"), { notAfterCap: new Date("2032-01-10T08:00:00Z") });
    expect(iso(v.notAfter)).toBe("2032-01-09T14:59:59Z");
    const exact = computeValidity(sign, new Date("2030-06-01T00:00:00Z"), { notAfterCap: new Date("2032-01-10T14:59:59Z") });
    expect(iso(exact.notAfter)).toBe("2032-01-10T14:59:59Z");
  });

  it("throws ValidityError when the issuer expires before the certificate could start", () => {
    expect(() => computeValidity(sign, new Date("2030-06-01T00:00:00Z"), { notAfterCap: new Date("2030-05-30T00:00:00Z") })).toThrow(ValidityError);
    expect(() => computeValidity(sign, new Date("x"))).toThrow(ValidityError);
  });
});

describe("computeValidity, CA certificates", () => {
  it("root: 30 years from the issuance time to 23:59:59 JST the day before the anniversary (MHLW root shape)", () => {
    const v = computeValidity(root, new Date("2014-01-17T06:08:08.750Z"));
    expect(iso(v.notBefore)).toBe("2014-01-17T06:08:08Z");
    expect(iso(v.notAfter)).toBe("2044-01-16T14:59:59Z"); // = the real MHLW root
  });

  it("issuing CA: 20 years (MEDIS sign CA shape), capped by the root", () => {
    const v = computeValidity(ca, new Date("2015-04-20T04:40:30Z"));
    expect(iso(v.notAfter)).toBe("2035-04-19T14:59:59Z"); // = medis-sign-ca2
    const capped = computeValidity(ca, new Date("2030-01-01T00:00:00Z"), { notAfterCap: new Date("2044-01-16T14:59:59Z") });
    expect(iso(capped.notAfter)).toBe("2044-01-16T14:59:59Z");
  });
});

describe("JST helpers", () => {
  it("jstStartOfDay / jstEndOfDayAtOrBefore", () => {
    expect(iso(jstStartOfDay(new Date("2024-06-30T23:00:00Z")))).toBe("2024-06-30T15:00:00Z");
    expect(iso(jstEndOfDayAtOrBefore(new Date("2024-06-30T14:59:58Z")))).toBe("2024-06-29T14:59:59Z");
  });
});
