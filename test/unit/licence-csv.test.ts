import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CsvSyntaxError, parseCsv } from "../../src/pipeline/csv-rfc4180.ts";
import { parseLicenceCsv } from "../../src/pipeline/licence-csv.ts";
import { parseHcRoleTable } from "../../src/pki/hcrole-table.ts";

const hcRoles = parseHcRoleTable(readFileSync(new URL("../../policies/hcrole-codes.yaml", import.meta.url), "utf8"));
const HEADER = "qualification,registration_number,registration_date,name_kanji,name_kana,birth_date";
const TODAY = "2026-11-22";

describe("parseCsv (RFC 4180)", () => {
  it("reads quoted fields with commas, doubled quotes and line breaks, CRLF or LF, BOM dropped", () => {
    const text = '\ufeffa,b,c\r\n"x,1","say ""hi""","two\r\nlines"\n\nlast,,""\n';
    expect(parseCsv(text)).toEqual([
      { line: 1, fields: ["a", "b", "c"] },
      { line: 2, fields: ["x,1", 'say "hi"', "two\r\nlines"] },
      { line: 5, fields: ["last", "", ""] },
    ]);
  });

  it("a last record without a line break still counts", () => {
    expect(parseCsv("a,b\n1,2")).toEqual([{ line: 1, fields: ["a", "b"] }, { line: 2, fields: ["1", "2"] }]);
  });

  it("refuses stray quotes and an unterminated quote with the line", () => {
    const cases: [string, number][] = [['a\nab"c,d\n', 2], ['a\n"ab"c\n', 2], ['a\nb\n"open,\nstill\n', 3]];
    for (const [text, line] of cases) {
      const err = (() => { try { parseCsv(text); } catch (e) { return e; } })();
      expect(err).toBeInstanceOf(CsvSyntaxError);
      expect((err as CsvSyntaxError).line).toBe(line);
    }
  });
});

describe("parseLicenceCsv", () => {
  it("reads the demo register: 24 rows in canonical form, variant kanji kept in NFC", () => {
    const r = parseLicenceCsv(readFileSync(new URL("../../policies/demo/licence-register.csv", import.meta.url), "utf8"), hcRoles, TODAY);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rows).toHaveLength(24);
    const count = (q: string) => r.rows.filter((x) => x.qualification === q).length;
    expect([count("Medical Doctor"), count("Pharmacist"), count("Dentist"), count("Nurse")]).toEqual([16, 5, 2, 1]);
    const names = r.rows.map((x) => x.nameKanji);
    expect(names).toContain("髙橋\u3000誠");
    expect(names).toContain("山\ufa11\u3000翔");
    for (const n of names) expect(n.normalize("NFC")).toBe(n);
  });

  it("normalises: columns in any order, Japanese qualification name, full-width, hiragana, spaces", () => {
    const text = `birth_date,name_kana,name_kanji,registration_date,registration_number,qualification\n`
      + `１９７５/5/14, やまだ  たろう ,"山田 \u3000太郎",2001-05-10,"０４４２８１７",医師\n`;
    const r = parseLicenceCsv(text, hcRoles, TODAY);
    expect(r).toEqual({
      ok: true,
      rows: [{ line: 2, qualification: "Medical Doctor", registrationNumber: "442817", registrationDate: "2001-05-10", nameKanji: "山田\u3000太郎", nameKana: "ヤマダ\u3000タロウ", birthDate: "1975-05-14" }],
    });
  });

  it("lists every invalid row with its line, column and both languages", () => {
    const text = [
      HEADER,
      "Medical Doctor,442817,2001-05-10,山田　太郎,ヤマダ　タロウ,1975-05-14",
      "Wizard,12,平成12年4月1日,,Yamada,1990-01-01",
      "Director of Hospital,12x,2001-01-01,林　和子,ハヤシ　カズコ,1958-10-02",
      "Medical Doctor,1,2030-01-01,甲　乙,コウ　オツ,1958-10-02",
      "Medical Doctor,2,2001-01-01,甲　乙,コウ　オツ,1990-10-02",
      "Medical Doctor,0442817,2001-05-10,山田　太郎,ヤマダ　タロウ,1975-05-14",
      "Pharmacist,5,2001-01-01",
    ].join("\n");
    const r = parseLicenceCsv(text, hcRoles, TODAY);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.line} ${i.field}`)).toEqual([
      "3 qualification", "3 registration_date", "3 name_kanji", "3 name_kana",
      "4 qualification", "4 registration_number",
      "5 registration_date",
      "6 registration_date",
      "7 registration_number",
      "8 (row)",
    ]);
    for (const i of r.issues) expect(i.messageJa).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
    expect(r.issues.find((i) => i.line === 3 && i.field === "registration_date")?.message).toMatch(/Japanese era/);
    expect(r.issues.find((i) => i.line === 7)?.message).toMatch(/line 2/);
  });

  it("tells a Japanese era date from any other bad date", () => {
    const msg = (d: string) => {
      const r = parseLicenceCsv(`${HEADER}\nMedical Doctor,1,2001-05-10,甲　乙,コウ　オツ,${d}\n`, hcRoles, TODAY);
      return r.ok ? "" : r.issues[0].message;
    };
    for (const era of ["昭和50年5月14日", "H7.5.14", "R1/5/1", "平成元年1月8日", "1975年5月14日"]) expect(msg(era)).toMatch(/Japanese era date/);
    for (const other of ["unknown", "1975-02-30", "14/05/1975", "Heisei"]) expect(msg(other)).toMatch(/is not a date YYYY-MM-DD/);
  });

  it("refuses a wrong header, a header-only file, an empty file and a CSV syntax error", () => {
    const wrong = parseLicenceCsv("qualification,registration_number,registration_date,name_kanji,kana,birth_date,birth_date\n", hcRoles, TODAY);
    expect(wrong.ok ? [] : wrong.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/unknown column "kana"/), expect.stringMatching(/"birth_date" appears twice/), expect.stringMatching(/missing column "name_kana"/),
    ]);
    expect(parseLicenceCsv(`${HEADER}\n`, hcRoles, TODAY)).toMatchObject({ ok: false, issues: [{ line: 1, field: "(file)" }] });
    expect(parseLicenceCsv("", hcRoles, TODAY)).toMatchObject({ ok: false, issues: [{ line: 1, field: "(file)" }] });
    expect(parseLicenceCsv(`${HEADER}\nMedical Doctor,"1"2,x,y,z,w\n`, hcRoles, TODAY)).toMatchObject({ ok: false, issues: [{ line: 2, field: "(file)" }] });
  });
});
