/** Which scopes need the person's consent (issue 14 §7; src/sso/consent.ts): pure logic. */
import { describe, expect, it } from "vitest";
import { DEFAULT_SCOPES } from "../../src/sso/clients.ts";
import { scopesNeedingConsent, scopesOfClaims } from "../../src/sso/consent.ts";

const client = { defaultScopes: [...DEFAULT_SCOPES] };

describe("scopesNeedingConsent", () => {
  it("asks nothing for the center's defaults", () => {
    expect(scopesNeedingConsent(["openid", "profile", "hcrole", "organization"], client, [])).toEqual([]);
  });
  it("asks for subscriber and offline_access, once each, in the order requested", () => {
    expect(scopesNeedingConsent(["openid", "offline_access", "hcrole", "subscriber", "offline_access"], client, [])).toEqual(["offline_access", "subscriber"]);
  });
  it("does not ask again for what the person approved, and asks for a new scope", () => {
    expect(scopesNeedingConsent(["openid", "subscriber", "offline_access"], client, ["subscriber"])).toEqual(["offline_access"]);
  });
  it("a client's registered defaults replace the center's (openid is always granted)", () => {
    expect(scopesNeedingConsent(["openid", "profile", "subscriber"], { defaultScopes: ["subscriber"] }, [])).toEqual(["profile"]);
  });
});

describe("scopesOfClaims (claims requested one by one)", () => {
  const table = { openid: ["sub", "acr"], hcrole: ["hcRole"], subscriber: ["subscriberId", "issuer_dn"] };
  it("maps each claim to the scope that releases it, once", () => {
    expect(scopesOfClaims(["subscriberId", "issuer_dn", "hcRole"], table)).toEqual(["subscriber", "hcrole"]);
  });
  it("a claim of no scope needs none", () => {
    expect(scopesOfClaims(["email", "acr"], table)).toEqual(["openid"]);
    expect(scopesOfClaims([], table)).toEqual([]);
  });
});
