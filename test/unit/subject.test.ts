import { describe, expect, it } from "vitest";
import { SubjectError, parseSubscriberSubject, subscriberNameFields, withDnsNames, type SubjectIssue } from "../../src/pki/subject.ts";
import { HC_ROLES, loadProfile } from "./helpers/pki-fixtures.ts";

const sign = loadProfile("sign");
const authOrg = loadProfile("auth-org");
const doctor = {
  hcRole: "Medical Doctor",
  subscriberId: "Test117120",
  name: { latin: "Sanjushi Kagurazaka", kanji: "神楽坂　三十四" },
  organization: { latin: "MEDIS UNIVERSITY HOSPITAL", kanji: "医療情報大学病院" },
};

const issuesOf = (json: unknown, profile = sign): SubjectIssue[] => {
  try {
    parseSubscriberSubject(json, profile, HC_ROLES);
  } catch (e) {
    if (e instanceof SubjectError) return e.issues;
    throw e;
  }
  throw new Error("expected a SubjectError");
};

describe("parseSubscriberSubject", () => {
  it("accepts a MEDIS-like doctor and maps it to C, O, CN, serialNumber", () => {
    const s = parseSubscriberSubject(doctor, sign, HC_ROLES);
    expect(s).toMatchObject({ kind: "person", hcRole: "Medical Doctor", director: false, subscriberId: "Test117120" });
    expect(s.hcRoleEntry).toEqual({ kind: "national-qualification", status: "confirmed" });
    expect(subscriberNameFields(s)).toEqual({ c: "JP", o: "MEDIS UNIVERSITY HOSPITAL", cn: "Sanjushi Kagurazaka", serialNumber: "Test117120" });
  });

  it("organization is optional for a national qualification (JMA certs have no O)", () => {
    const s = parseSubscriberSubject({ hcRole: "Pharmacist", subscriberId: "T20024-jpa", name: { latin: "20024 JPATEST" } }, sign, HC_ROLES);
    expect(subscriberNameFields(s)).toEqual({ c: "JP", cn: "20024 JPATEST", serialNumber: "T20024-jpa" });
  });

  it("a manager (Director) role needs the organization and yields OU=Director", () => {
    const issues = issuesOf({ ...doctor, hcRole: "Director of Hospital", organization: undefined });
    expect(issues.map((i) => i.field)).toEqual(["organization.latin"]);
    expect(issues[0].messageJa).toMatch(/施設名/);
    const s = parseSubscriberSubject({ ...doctor, hcRole: "Director of Hospital" }, sign, HC_ROLES);
    expect(s.director).toBe(true);
    expect(subscriberNameFields(s).ou).toBe("Director");
  });

  it("rejects an unknown or missing hcRole", () => {
    expect(issuesOf({ ...doctor, hcRole: "Wizard" })).toEqual([expect.objectContaining({ field: "hcRole", message: 'unknown hcRole "Wizard"' })]);
    expect(issuesOf({ ...doctor, hcRole: undefined })[0]).toMatchObject({ field: "hcRole", message: "is required" });
  });

  it("rejects control characters, empty and over-long names, listing every issue in English and Japanese", () => {
    const issues = issuesOf({ ...doctor, subscriberId: "", name: { latin: "Taro\u0007 Yamada", kanji: "山".repeat(65) } });
    expect(issues.map((i) => i.field).sort()).toEqual(["name.kanji", "name.latin", "subscriberId"]);
    for (const i of issues) {
      expect(i.message).toMatch(/[a-z]/);
      expect(i.messageJa).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
    }
    expect(issuesOf({ ...doctor, name: { latin: "a".repeat(65) } })[0].message).toMatch(/longer than 64/);
    expect(issuesOf({ ...doctor, name: { latin: "A\u202eB" } })[0].message).toMatch(/control/);
  });

  it("accepts exactly 64 characters (X.520 ub-common-name) counted in code points", () => {
    expect(parseSubscriberSubject({ ...doctor, name: { latin: "a".repeat(64), kanji: "𠮷".repeat(64) } }, sign, HC_ROLES).name.latin).toHaveLength(64);
  });

  it("requires a PrintableString subscriberId", () => {
    expect(issuesOf({ ...doctor, subscriberId: "Test_117" })[0]).toMatchObject({ field: "subscriberId" });
    expect(issuesOf({ ...doctor, subscriberId: "テスト" })[0]).toMatchObject({ field: "subscriberId" });
  });

  it("NFC-normalises input and joins the kanji name with one U+3000", () => {
    const nfd = "\u30db\u309a"; // ホ + combining mark, NFC → ポ
    const s = parseSubscriberSubject({ ...doctor, name: { latin: " Taro Yamada ", kanji: `${nfd}山田 \u3000 太郎` }, organization: { latin: "Cafe\u0301" } }, sign, HC_ROLES);
    expect(s.name.kanji).toBe("\u30dd山田\u3000太郎");
    expect(s.name.latin).toBe("Taro Yamada");
    expect(s.organization!.latin).toBe("Caf\u00e9");
  });

  it("rejects unknown fields and wrong types", () => {
    expect(issuesOf({ ...doctor, extra: 1 })[0].field).toBe("(document)");
    expect(issuesOf({ ...doctor, name: { latin: 5 } })[0].field).toBe("name.latin");
    expect(issuesOf(null)[0].field).toBe("(document)");
  });
});

describe("parseSubscriberSubject, organization certificates (auth-org)", () => {
  it("requires organization.latin, takes name.latin as the system name and no hcRole", () => {
    const s = parseSubscriberSubject({ subscriberId: "ORG-0001", name: { latin: "emr.example-hospital.jp" }, organization: { latin: "Example Hospital" } }, authOrg, HC_ROLES);
    expect(s).toMatchObject({ kind: "organization", director: false });
    expect(s.hcRole).toBeUndefined();
    expect(subscriberNameFields(s)).toEqual({ c: "JP", o: "Example Hospital", cn: "emr.example-hospital.jp", serialNumber: "ORG-0001" });
    const issues = issuesOf({ hcRole: "Medical Doctor", subscriberId: "ORG-0001", name: { latin: "x" } }, authOrg);
    expect(issues.map((i) => i.field).sort()).toEqual(["hcRole", "organization.latin"]);
  });

  it("takes host names for SAN dNSName: lowercased, deduplicated, each a valid host name; only for organizations", () => {
    const org = { subscriberId: "ORG-0001", name: { latin: "Example EMR" }, organization: { latin: "Example Hospital" } };
    const s = parseSubscriberSubject({ ...org, dnsNames: ["EMR.Example-Hospital.jp.", "emr.example-hospital.jp", "api.example-hospital.jp"] }, authOrg, HC_ROLES);
    expect(s.dnsNames).toEqual(["emr.example-hospital.jp", "api.example-hospital.jp"]);
    const bad = issuesOf({ ...org, dnsNames: ["*.example.jp", "emr", "10.1.2.3", "emr_x.example.jp"] }, authOrg);
    expect(bad.map((i) => i.field)).toEqual(["dnsNames[0]", "dnsNames[1]", "dnsNames[2]", "dnsNames[3]"]);
    expect(bad[0].messageJa).toContain("ワイルドカード");
    expect(issuesOf({ ...doctor, dnsNames: ["emr.example.jp"] }, sign).map((i) => i.field)).toEqual(["dnsNames"]);
    // withDnsNames: the CSR's names join the file's; auth-org without any is refused in both languages.
    const plain = parseSubscriberSubject(org, authOrg, HC_ROLES);
    expect(withDnsNames(plain, authOrg, ["Portal.Example-Hospital.jp"]).dnsNames).toEqual(["portal.example-hospital.jp"]);
    try {
      withDnsNames(plain, authOrg, []);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(SubjectError);
      expect((e as SubjectError).issues[0]).toMatchObject({ field: "dnsNames", messageJa: expect.stringContaining("ホスト名が1つ以上必要です") });
    }
    expect(withDnsNames(parseSubscriberSubject(doctor, sign, HC_ROLES), sign, []).dnsNames).toBeUndefined();
  });

  it("refuses a CA profile", () => {
    expect(issuesOf(doctor, loadProfile("root"))[0].field).toBe("(profile)");
  });
});
