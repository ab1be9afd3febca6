/**
 * The pure parts of corrections (issue 12 §1, §2): the one-digit-off registration numbers and the
 * 異体字 folding that propose nearest register entries, and the IA failure explained with the form
 * field it names.
 */
import { describe, expect, it } from "vitest";
import { explainIssuanceFailure } from "../../src/pipeline/issuance-failure.ts";
import { foldKanjiName, oneDigitOff } from "../../src/pipeline/licence-nearest.ts";
import { loadPolicies } from "../../src/policies.ts";

describe("nearest register entries", () => {
  it("lists the numbers one digit off: changed, added, dropped, neighbours swapped — never leading zeros or the number itself", () => {
    const v = oneDigitOff("442817");
    for (const x of ["442818", "4428170", "44817", "448217", "942817"]) expect(v).toContain(x);
    expect(v).not.toContain("442817");
    expect(v.some((x) => x.startsWith("0"))).toBe(false);
    expect(new Set(v).size).toBe(v.length);
  });

  it("reads common 異体字 as their usual form and ignores spaces", () => {
    expect(foldKanjiName("山﨑　太郎")).toBe(foldKanjiName("山崎 太郎"));
    expect(foldKanjiName("髙橋　誠")).toBe("高橋誠");
    expect(foldKanjiName("渡邉　恵")).toBe(foldKanjiName("渡辺恵"));
    expect(foldKanjiName("山田　太郎")).not.toBe(foldKanjiName("山口　太郎"));
  });
});

describe("an IA failure explained for the RA", () => {
  const policies = loadPolicies();
  const app = { name_kanji: "鈴木　一郎", name_latin: "Ichiro Suzuki", qualification: "Medical Doctor", organization_kanji: "鈴木内科クリニック", organization_latin: null, manager_role: null, request_sign: true, request_auth: true, subscriber_id: "HP00000001" };

  it("names the form field of a subject refusal in Japanese and English, with the dry run on the data now", () => {
    const f = explainIssuanceFailure("invalid subject: organization.latin: is required when organization.kanji is given", app, ["sign", "auth-person"], policies);
    expect(f.fields).toEqual([{ field: "organizationLatin", ja: "施設名（英字）", en: "organisation name (Latin)" }]);
    expect(f.messageJa).toContain("施設名（英字）");
    expect(f.messageJa).toContain("訂正してから");
    expect(f.problems.map((p) => p.field)).toEqual(["organizationLatin"]);
    expect(f.problems[0].messageJa).toContain("署名用証明書");
    expect(f.problems[0].messageJa).not.toContain("組織名");
    const fixed = explainIssuanceFailure("invalid subject: organization.latin: is required when organization.kanji is given", { ...app, organization_latin: "Suzuki Naika Clinic" }, ["sign"], policies);
    expect(fixed.problems).toEqual([]);
    expect(fixed.messageJa).toContain("訂正済み");
  });

  it("explains an IA-side failure without blaming a field", () => {
    const f = explainIssuanceFailure('card "card-1": PIN incorrect (CKR_PIN_INCORRECT)', { ...app, organization_latin: "Suzuki Naika Clinic" }, ["sign"], policies);
    expect(f.fields).toEqual([]);
    expect(f.messageJa).toContain("カード");
  });
});
