/** What a form stash keeps (src/web/auth/form-resume.ts, issue 12 §5–§6): never secrets, tokens, the CSRF field or a 個人番号. */
import { describe, expect, it } from "vitest";
import { stashableValues } from "../../src/web/auth/form-resume.ts";

describe("form stash", () => {
  it("keeps typed fields and the form's idempotency key, drops secrets and 12-digit numbers", () => {
    expect(stashableValues({
      nameKanji: "山﨑　太郎", formToken: "abcdefghijklmnop", address: "東京都", requestSign: "on", tags: ["a", "b"],
      _csrf: "tok", _page: "/lra/applications/new", password: "pw", totp: "123456", pin: "1234", clientSecret: "s", accessToken: "t",
      documentNumber: "１２３４ ５６７８ ９０１２", note: "番号 1234-5678-9012", phone: "03-1234-5678", licenceNumber: "1234567890",
    })).toEqual({ nameKanji: "山﨑　太郎", formToken: "abcdefghijklmnop", address: "東京都", requestSign: "on", tags: ["a", "b"], phone: "03-1234-5678", licenceNumber: "1234567890" });
    expect(stashableValues(undefined)).toEqual({});
    expect(stashableValues({ nested: { a: 1 } })).toEqual({});
  });
});
