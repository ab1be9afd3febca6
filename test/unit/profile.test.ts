import { describe, expect, it } from "vitest";
import { ProfileError, parseProfile, profileExtension } from "../../src/pki/profile.ts";
import { loadProfile, profileYaml } from "./helpers/pki-fixtures.ts";

const errorOf = (yaml: string, source = "test.yaml"): ProfileError => {
  try {
    parseProfile(yaml, source);
  } catch (e) {
    if (e instanceof ProfileError) return e;
    throw e;
  }
  throw new Error("expected a ProfileError");
};

describe("the five profiles", () => {
  it("parse, with the real HPKI extension order", () => {
    const order = (n: string) => loadProfile(n).extensions.map((e) => e.name);
    expect(order("sign")).toEqual([
      "authorityKeyIdentifier",
      "subjectKeyIdentifier",
      "keyUsage",
      "subjectAltName",
      "cRLDistributionPoints",
      "subjectDirectoryAttributes",
      "certificatePolicies",
    ]);
    expect(order("root")).toEqual(["authorityKeyIdentifier", "subjectKeyIdentifier", "basicConstraints", "keyUsage", "cRLDistributionPoints"]);
    expect(order("issuing-ca")).toEqual([
      "authorityKeyIdentifier",
      "subjectKeyIdentifier",
      "basicConstraints",
      "certificatePolicies",
      "keyUsage",
      "cRLDistributionPoints",
    ]);
    expect(order("auth-person")).toContain("subjectDirectoryAttributes");
    expect(order("auth-org")).not.toContain("subjectDirectoryAttributes");
  });

  it("carry the HPKI policies, keyUsage and key rules", () => {
    const sign = loadProfile("sign");
    expect(profileExtension(sign, "certificatePolicies")).toMatchObject({ critical: true, policies: [{ oid: "1.2.392.100495.1.5.1.1.0.1" }] });
    expect(profileExtension(sign, "keyUsage")).toEqual({ name: "keyUsage", critical: true, bits: ["nonRepudiation"] });
    expect(sign.keyAlgorithms).toEqual(["RSA-2048"]);
    expect(sign.validity).toEqual({ years: 5, notBefore: "jst-start-of-day", notAfter: "jst-end-of-day" });
    const ap = loadProfile("auth-person");
    expect(profileExtension(ap, "certificatePolicies")!.policies[0]).toMatchObject({ oid: "1.2.392.100495.1.5.1.2.0.1", inferred: true });
    expect(profileExtension(ap, "keyUsage")!.bits).not.toContain("nonRepudiation");
    expect(profileExtension(loadProfile("auth-org"), "certificatePolicies")!.policies[0].oid).toBe("1.2.392.100495.1.5.1.3.0.1");
    expect(profileExtension(loadProfile("root"), "basicConstraints")).toEqual({ name: "basicConstraints", critical: true, cA: true });
    expect(profileExtension(loadProfile("issuing-ca"), "basicConstraints")!.pathLenConstraint).toBe(0);
    expect(loadProfile("root").validity.years).toBe(30);
    expect(loadProfile("issuing-ca").validity.years).toBe(20);
    expect(loadProfile("issuing-ca").keyAlgorithms).toContain("P-256");
  });

  it("say in a header comment what is confirmed and what is inferred", () => {
    for (const n of ["root", "issuing-ca", "sign", "auth-person", "auth-org"]) {
      const head = profileYaml(n).split("\nname:")[0];
      expect(head).toMatch(/\[CERT\]/);
      expect(head).toMatch(/[Ii]nferred|INF/);
    }
  });
});

describe("parseProfile errors", () => {
  const sign = profileYaml("sign");

  it("names the file and the field", () => {
    const e = errorOf(sign.replace("years: 5", "years: five"), "policies/profiles/sign.yaml");
    expect(e.message).toContain("policies/profiles/sign.yaml");
    expect(e.issues.some((i) => i.startsWith("validity.years:"))).toBe(true);
  });

  it("rejects unknown keys, bad OIDs and YAML syntax errors", () => {
    expect(errorOf(sign + "\nextra: 1\n").issues.join()).toMatch(/extra/);
    expect(errorOf(sign.replace("oid: 1.2.392.100495.1.5.1.1.0.1", "oid: 1.2.x")).issues.join()).toMatch(/extensions\.6\.policies\.0\.oid/);
    expect(errorOf("name: [unclosed").issues[0]).toMatch(/^YAML/);
    expect(errorOf(sign.replace("bits: [nonRepudiation]", "bits: [nonRepudation]")).issues.join()).toMatch(/extensions\.2\.bits/);
  });

  it("refuses an end-entity validity over 5 years", () => {
    expect(errorOf(sign.replace("years: 5", "years: 6")).issues.join()).toMatch(/at most 5 years/);
  });

  it("refuses duplicate extensions and subject attributes out of HPKI order", () => {
    expect(errorOf(sign.replace("  - { name: subjectKeyIdentifier, critical: false }", "  - { name: subjectKeyIdentifier, critical: false }\n  - { name: subjectKeyIdentifier, critical: false }")).issues.join()).toMatch(/duplicate extension/);
    expect(errorOf(sign.replace("  - { attribute: O, presence: optional }\n", "").replace("  - { attribute: CN, presence: required }\n", "  - { attribute: CN, presence: required }\n  - { attribute: O, presence: optional }\n")).issues.join()).toMatch(/out of HPKI order/);
  });

  it("refuses a CA profile without basicConstraints cA or keyCertSign, and an EE profile with cA", () => {
    const root = profileYaml("root");
    expect(errorOf(root.replace("  - { name: basicConstraints, critical: true, cA: true }\n", "")).issues.join()).toMatch(/basicConstraints/);
    expect(errorOf(root.replace("bits: [keyCertSign, cRLSign]", "bits: [cRLSign]")).issues.join()).toMatch(/keyCertSign/);
    expect(errorOf(sign.replace("  - { name: subjectKeyIdentifier, critical: false }\n", "  - { name: subjectKeyIdentifier, critical: false }\n  - { name: basicConstraints, critical: true, cA: true }\n")).issues.join()).toMatch(/cA/);
  });

  it("refuses a serverAuth profile without a required SAN dNSName (RFC 6125 §6.4.4), and dNSName in a person profile", () => {
    const org = profileYaml("auth-org");
    expect(errorOf(org.replace("  - { name: subjectAltName, critical: false, dNSName: required }\n", "")).issues.join()).toMatch(/dNSName: must be required in a serverAuth profile/);
    expect(errorOf(org.replace("dNSName: required", "dNSName: optional")).issues.join()).toMatch(/serverAuth/);
    const person = profileYaml("auth-person").replace("kanjiDirectoryName: optional", "kanjiDirectoryName: optional, dNSName: optional");
    expect(errorOf(person).issues.join()).toMatch(/host names are for organization profiles/);
  });

  it("refuses hcRole in an organization profile", () => {
    const org = profileYaml("auth-org").replace("  - name: certificatePolicies", "  - { name: subjectDirectoryAttributes, critical: false, hcRole: optional }\n  - name: certificatePolicies");
    expect(errorOf(org).issues.join()).toMatch(/hcRole is carried only by person profiles/);
  });
});
