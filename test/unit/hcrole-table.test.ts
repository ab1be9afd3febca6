import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HcRoleTableError, parseHcRoleTable } from "../../src/pki/hcrole-table.ts";

const yamlText = readFileSync(new URL("../../policies/hcrole-codes.yaml", import.meta.url), "utf8");
// The shared HPKI data sits beside the checkout on the project's machines (../shared), not in the
// repository: compared when present, skipped on a plain clone.
const sharedJson = new URL("../../../shared/hpki/hcrole-codes.json", import.meta.url);
const json = existsSync(sharedJson) ? (JSON.parse(readFileSync(sharedJson, "utf8")) as { code: string }[]) : undefined;

describe("policies/hcrole-codes.yaml", () => {
  const table = parseHcRoleTable(yamlText);

  it.skipIf(!json)("keeps all 32 entries of the shared JSON, in order, unchanged", () => {
    expect(table.size).toBe(32);
    expect([...table.values()]).toEqual(json);
  });

  it("has 27 national qualifications and 5 manager roles", () => {
    const kinds = [...table.values()].map((r) => r.kind);
    expect(kinds.filter((k) => k === "national-qualification")).toHaveLength(27);
    expect(kinds.filter((k) => k === "manager")).toHaveLength(5);
  });

  it("marks the two certificate-confirmed codes", () => {
    expect(table.get("Medical Doctor")).toMatchObject({ ja: "医師", status: "confirmed" });
    expect(table.get("Pharmacist")).toMatchObject({ ja: "薬剤師", status: "confirmed" });
    expect(table.get("Director of Hospital")).toMatchObject({ ja: "病院長", kind: "manager", status: "confirmed-secondary" });
    expect(table.get("Dentist")?.status).toBe("unverified");
  });

  it("carries the header warning about unverified entries", () => {
    expect(yamlText).toMatch(/^# .*\n(#.*\n)*#.*unverified.*\n(#.*\n)*codes:/);
    expect(yamlText).toContain("CP 1.91");
  });
});

describe("parseHcRoleTable validation", () => {
  const row = (code: string, extra = "") =>
    `  - code: ${JSON.stringify(code)}\n    ja: 医師\n    kind: national-qualification\n    status: confirmed\n${extra}`;

  it("NFC-normalises codes and rejects NFC duplicates", () => {
    const decomposed = "Cafe\u0301";
    const t = parseHcRoleTable(`codes:\n${row(decomposed)}`);
    expect([...t.keys()]).toEqual(["Caf\u00e9"]);
    expect(() => parseHcRoleTable(`codes:\n${row(decomposed)}${row("Caf\u00e9")}`)).toThrow(/duplicate code/);
  });

  it("omits note when absent", () => {
    const r = parseHcRoleTable(`codes:\n${row("X")}`).get("X")!;
    expect("note" in r).toBe(false);
    expect(r).toEqual({
      code: "X",
      ja: "医師",
      kind: "national-qualification",
      status: "confirmed",
    });
  });

  const bad: [string, string, RegExp][] = [
    ["invalid YAML", "codes: [", /invalid YAML/],
    ["no codes key", "roles: []", /codes|Unrecognized/],
    ["empty list", "codes: []", /codes/],
    ["unknown kind", `codes:\n${row("X").replace("national-qualification", "licence")}`, /kind/],
    ["unknown status", `codes:\n${row("X").replace("status: confirmed", "status: maybe")}`, /status/],
    ["unknown key", `codes:\n${row("X", "    colour: red\n")}`, /colour|Unrecognized/],
    ["empty code", `codes:\n${row("")}`, /code/],
    ["padded code", `codes:\n${row(" Nurse")}`, /whitespace/],
    ["exact duplicate", `codes:\n${row("Nurse")}${row("Nurse")}`, /duplicate code "Nurse"/],
  ];
  for (const [label, text, re] of bad) {
    it(`rejects ${label}`, () => {
      expect(() => parseHcRoleTable(text)).toThrow(HcRoleTableError);
      expect(() => parseHcRoleTable(text)).toThrow(re);
    });
  }
});
