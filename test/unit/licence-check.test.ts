import { describe, expect, it } from "vitest";
import {
  canonicalDate,
  canonicalKana,
  canonicalRegistrationNumber,
  compareLicence,
  type LicenceApplication,
  type LicenceRecord,
} from "../../src/pipeline/licence-check.ts";

const registered: LicenceRecord = {
  qualification: "Medical Doctor",
  registrationNumber: "351094",
  registrationDate: "1993-05-17",
  nameKanji: "髙橋\u3000誠",
  nameKana: "タカハシ\u3000マコト",
  birthDate: "1968-02-27",
};
const application: LicenceApplication = { ...registered };

describe("compareLicence", () => {
  it("matches the same data and lists every field", () => {
    const r = compareLicence(application, registered);
    expect(r.result).toBe("match");
    expect(r.fields.map((f) => f.field)).toEqual(["qualification", "registrationNumber", "registrationDate", "nameKanji", "nameKana", "birthDate"]);
    expect(r.fields.every((f) => f.match)).toBe(true);
  });

  it("matches what an applicant types differently: width, zeros, 第…号, hiragana, half-width kana, spaces, slashes", () => {
    const typed = {
      qualification: " Medical Doctor ",
      registrationNumber: "第　０３５１０９４　号",
      registrationDate: "1993/5/17",
      nameKanji: "髙橋 誠",
      nameKana: "たかはし まこと",
      birthDate: "１９６８-０２-２７",
    };
    const r = compareLicence(typed, registered);
    expect(r.result).toBe("match");
    // The applied values are shown as typed, for the reviewer to see.
    expect(r.fields[1]).toEqual({ field: "registrationNumber", applied: "第　０３５１０９４　号", registered: "351094", match: true });
    expect(compareLicence({ ...application, nameKana: "ﾀｶﾊｼﾏｺﾄ" }, registered).result).toBe("match");
    expect(compareLicence({ ...application, nameKanji: "髙橋誠" }, registered).result).toBe("match");
  });

  it("reports a variant kanji as a mismatch of that field only (髙 is not 高)", () => {
    const r = compareLicence({ ...application, nameKanji: "高橋　誠" }, registered);
    expect(r.result).toBe("mismatch");
    expect(r.fields.filter((f) => !f.match)).toEqual([{ field: "nameKanji", applied: "高橋　誠", registered: "髙橋\u3000誠", match: false }]);
  });

  it("reports wrong dates and voiced kana as mismatches; an unreadable date never matches", () => {
    expect(compareLicence({ ...application, birthDate: "1968-02-28" }, registered).fields.find((f) => f.field === "birthDate")?.match).toBe(false);
    expect(compareLicence({ ...application, nameKana: "タカハジ　マコト" }, registered).result).toBe("mismatch");
    const r = compareLicence({ ...application, registrationDate: "平成5年5月32日" }, registered);
    expect(r.fields.find((f) => f.field === "registrationDate")).toMatchObject({ match: false, registered: "1993-05-17" });
    // 和暦 is read with the era boundaries (issue 12 §4): the same day matches.
    const w = compareLicence({ ...application, registrationDate: "平成5年5月17日" }, registered);
    expect(w.fields.find((f) => f.field === "registrationDate")).toMatchObject({ match: true, registered: "1993-05-17" });
  });

  it("says not_found without a register row, every field unmatched", () => {
    const r = compareLicence(application, undefined);
    expect(r.result).toBe("not_found");
    expect(r.fields.every((f) => !f.match && f.registered === null)).toBe(true);
  });
});

describe("canonical forms", () => {
  it("registration numbers: digits without leading zeros, else undefined", () => {
    expect(canonicalRegistrationNumber("012345")).toBe("12345");
    expect(canonicalRegistrationNumber("１２３ ４５６")).toBe("123456");
    expect(canonicalRegistrationNumber("第123456号")).toBe("123456");
    for (const bad of ["", "000", "12a", "1-2", "12345678901", "第号"]) expect(canonicalRegistrationNumber(bad)).toBeUndefined();
  });

  it("dates: real calendar dates only, Western or 和暦", () => {
    expect(canonicalDate("2000-02-29")).toBe("2000-02-29");
    expect(canonicalDate("2001/4/1")).toBe("2001-04-01");
    expect(canonicalDate("H13.4.1")).toBe("2001-04-01");
    expect(canonicalDate("2001年4月1日")).toBe("2001-04-01");
    for (const bad of ["1900-02-29", "2001-13-01", "2001-04-31", "2001-4/1", "01-04-01", "H13.4.31", "平成31年5月1日"]) expect(canonicalDate(bad)).toBeUndefined();
  });

  it("kana: full-width katakana with one U+3000, or undefined", () => {
    expect(canonicalKana("  やまだ　 たろう ")).toBe("ヤマダ\u3000タロウ");
    expect(canonicalKana("ｶﾞｯｺｳ")).toBe("ガッコウ");
    expect(canonicalKana("ゞ")).toBe("ヾ");
    for (const bad of ["山田", "Yamada", "", "ヤマダ1"]) expect(canonicalKana(bad)).toBeUndefined();
  });
});
