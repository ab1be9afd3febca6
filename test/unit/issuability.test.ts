import { describe, expect, it } from "vitest";
import { loadPolicies } from "../../src/policies.ts";
import { issuabilityProblems } from "../../src/pipeline/issuability.ts";

const policies = loadPolicies();

/** An application row as applicationColumns stores it (the intake form, validated). */
const complete = {
  name_kanji: "鈴木\u3000一郎", name_kana: "スズキ イチロウ", name_latin: "Ichiro Suzuki", birth_date: "1970-04-01",
  postal_code: "100-0001", address: "東京都千代田区1-1", phone: "03-0000-0000", email: "suzuki@example.jp",
  qualification: "Medical Doctor", licence_number: "123456", licence_date: "1996-05-01",
  organization_kanji: "鈴木内科クリニック", organization_latin: "Suzuki Naika Clinic",
  manager_role: null, request_sign: true, request_auth: true,
};

describe("issuability dry run (issue 12 §1)", () => {
  it("finds nothing wrong with a complete application, for both profiles", () => {
    expect(issuabilityProblems(complete, ["sign", "auth-person"], policies)).toEqual([]);
    expect(issuabilityProblems({ ...complete, subscriber_id: "HP00000042" }, ["sign"], policies)).toEqual([]);
  });

  it("finds nothing wrong without any facility (no O in the subject)", () => {
    expect(issuabilityProblems({ ...complete, organization_kanji: null, organization_latin: null }, ["sign", "auth-person"], policies)).toEqual([]);
  });

  it("names 施設名（英字） when the clinic gave its kanji name but left the Latin name empty", () => {
    const problems = issuabilityProblems({ ...complete, organization_latin: null }, ["sign", "auth-person"], policies);
    expect(problems.length).toBe(1); // the same gap under both profiles is said once
    expect(problems[0].field).toBe("organizationLatin");
    expect(problems[0].messageJa).toContain("施設名（英字）");
    expect(problems[0].message).toContain("organisation name (Latin)");
  });

  it("names 施設名（英字） for a manager role without the Latin facility name", () => {
    const director = [...policies.hcRoles.values()].find((c) => c.kind === "manager")!.code;
    const problems = issuabilityProblems({ ...complete, manager_role: director, organization_latin: "", organization_kanji: "" }, ["sign"], policies);
    expect(problems.map((p) => p.field)).toContain("organizationLatin");
    expect(problems.find((p) => p.field === "organizationLatin")!.messageJa).toContain("施設名（英字）");
  });

  it("maps an over-long Latin name (X.520 ub-common-name) back to 氏名（ローマ字）", () => {
    const problems = issuabilityProblems({ ...complete, name_latin: "A".repeat(65) }, ["sign"], policies);
    expect(problems).toHaveLength(1);
    expect(problems[0].field).toBe("nameLatin");
    expect(problems[0].messageJa).toContain("氏名（ローマ字）");
  });
});
