/** Pure rules of the SSO center's sessions (issue 14): acr requests, login account ids, ui_locales. */
import { describe, expect, it } from "vitest";
import { certRefOf, loginAccountId, parseAccountId } from "../../src/sso/login-binding.ts";
import { ACR_CARD_PIN, ACR_CERTIFICATE, acrSatisfies, requestedAcrs } from "../../src/sso/provider.ts";
import { isRefusalCode, refusalText } from "../../src/sso/refusals.ts";
import { languageOf } from "../../src/sso/views.ts";

describe("acr requests (OIDC Core §3.1.2.1 acr_values, §5.5.1.1 essential acr)", () => {
  it("reads acr_values, else an essential acr from the claims parameter; a voluntary claim asks nothing", () => {
    expect(requestedAcrs({ acr_values: ` ${ACR_CARD_PIN}  ${ACR_CERTIFICATE} ` })).toEqual([ACR_CARD_PIN, ACR_CERTIFICATE]);
    expect(requestedAcrs({ claims: JSON.stringify({ id_token: { acr: { essential: true, value: ACR_CARD_PIN } } }) })).toEqual([ACR_CARD_PIN]);
    expect(requestedAcrs({ claims: JSON.stringify({ id_token: { acr: { essential: true, values: ["a", "b"] } } }) })).toEqual(["a", "b"]);
    expect(requestedAcrs({ claims: JSON.stringify({ id_token: { acr: { value: ACR_CARD_PIN } } }) })).toBeUndefined();
    expect(requestedAcrs({ claims: "{not json" })).toBeUndefined();
    expect(requestedAcrs({})).toBeUndefined();
  });

  it("card + PIN meets a request for either class; a certificate alone does not meet card + PIN", () => {
    expect(acrSatisfies(ACR_CARD_PIN, [ACR_CERTIFICATE])).toBe(true);
    expect(acrSatisfies(ACR_CERTIFICATE, [ACR_CARD_PIN])).toBe(false);
    expect(acrSatisfies(ACR_CERTIFICATE, undefined)).toBe(true);
    expect(acrSatisfies(undefined, [ACR_CERTIFICATE])).toBe(false);
  });
});

describe("login account ids", () => {
  it("name the person and the certificate; ids from before issue 14 name no certificate", () => {
    const ref = certRefOf(Buffer.from("certificate DER"));
    expect(ref).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(parseAccountId(loginAccountId("p-0123", ref))).toEqual({ personId: "p-0123", certRef: ref });
    expect(parseAccountId("p-0123")).toEqual({ personId: "p-0123" });
  });
});

describe("language of SSO pages and error descriptions", () => {
  it("?lang=, then the cookie, then ui_locales (first supported tag), else Japanese", () => {
    expect(languageOf({ lang: "en" }, "hpki_lang=ja", "ja")).toBe("en");
    expect(languageOf({}, "a=b; hpki_lang=en", "ja")).toBe("en");
    expect(languageOf({}, undefined, "fr-CA en-US ja")).toBe("en");
    expect(languageOf({}, undefined, "ja-JP")).toBe("ja");
    expect(languageOf({}, undefined, "fr")).toBe("ja");
    expect(languageOf({}, undefined, undefined)).toBe("ja");
  });

  it("refusal texts exist in both languages; unknown codes read as a cancel", () => {
    expect(refusalText("hcrole-not-allowed", "ja")).toBe("この資格ではこのサービスにログインできません。");
    expect(refusalText("acr-not-met", "en")).toContain("PIN");
    expect(isRefusalCode("revoked")).toBe(true);
    expect(isRefusalCode("<script>")).toBe(false);
    expect(refusalText("<script>", "en")).toBe("The login was cancelled.");
  });
});
