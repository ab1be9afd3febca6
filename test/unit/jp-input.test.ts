/** Japanese input normalisers (issue 12 §4): src/pipeline/jp-input.ts and src/pipeline/wareki.ts, pure. */
import { describe, expect, it } from "vitest";
import { asciiNumericText, canonicalPhone, canonicalPostalCode, HYPHEN_LOOKALIKES } from "../../src/pipeline/jp-input.ts";
import { canonicalDate } from "../../src/pipeline/licence-check.ts";
import { ERAS, formatWareki, parseJapaneseDate } from "../../src/pipeline/wareki.ts";

describe("numeric fields typed the Japanese way", () => {
  it("takes every hyphen look-alike, full-width digits and spaces", () => {
    for (const dash of HYPHEN_LOOKALIKES) expect(canonicalPostalCode(`１２３${dash}４５６７`), `U+${dash.codePointAt(0)!.toString(16)}`).toBe("123-4567");
    expect(canonicalPostalCode("〒１００　０００１".replace("　", ""))).toBe("100-0001");
    expect(canonicalPostalCode("1000001")).toBe("100-0001");
    expect(canonicalPostalCode(" 100 - 0001 ")).toBe("100-0001");
    expect(canonicalPostalCode("100-001")).toBeUndefined();
    expect(canonicalPostalCode("１２３－４５６")).toBeUndefined();
  });
  it("phone numbers", () => {
    expect(canonicalPhone("０３ー１２３４ー５６７８")).toBe("03-1234-5678");
    expect(canonicalPhone("03−1234−5678")).toBe("03-1234-5678");
    expect(canonicalPhone("（０３）１２３４　５６７８")).toBe("(03)12345678");
    expect(canonicalPhone("+81 3 1234 5678")).toBe("+81312345678");
    expect(canonicalPhone("03-1234-abcd")).toBeUndefined();
    expect(canonicalPhone("---")).toBeUndefined();
  });
  it("leaves letters alone but folds width", () => {
    expect(asciiNumericText("ＡＢ　１")).toBe("AB1");
  });
});

describe("dates: Western and 和暦", () => {
  const cases: [string, string][] = [
    ["2025-04-01", "2025-04-01"], ["２０２５／４／１", "2025-04-01"], ["2025.4.1", "2025-04-01"], ["20250401", "2025-04-01"],
    ["2025年4月1日", "2025-04-01"], ["２０２５－０４－０１", "2025-04-01"], ["2025ー4ー1", "2025-04-01"],
    ["令和7年4月1日", "2025-04-01"], ["令和７年４月１日", "2025-04-01"], ["R7.4.1", "2025-04-01"], ["r07/04/01", "2025-04-01"], ["Ｒ７．４．１", "2025-04-01"],
    ["令和元年5月1日", "2019-05-01"], ["令和1年5月1日", "2019-05-01"], ["平成31年4月30日", "2019-04-30"], ["H31.4.30", "2019-04-30"],
    ["昭和64年1月7日", "1989-01-07"], ["平成元年1月8日", "1989-01-08"], ["S55.1.2", "1980-01-02"], ["昭和元年12月25日", "1926-12-25"],
    ["大正15年12月24日", "1926-12-24"], ["T1.7.30", "1912-07-30"], ["明治45年7月29日", "1912-07-29"], ["M6.1.1", "1873-01-01"],
  ];
  it.each(cases)("%s → %s", (input, iso) => {
    expect(parseJapaneseDate(input)).toBe(iso);
    expect(canonicalDate(input)).toBe(iso);
  });
  it("refuses dates outside their era and unreal dates", () => {
    for (const bad of ["平成31年5月1日", "令和元年4月30日", "昭和64年1月8日", "平成元年1月7日", "大正15年12月25日", "明治45年7月30日", "明治5年1月1日",
      "2025-02-29", "令和7年2月29日", "2025-13-01", "X7.4.1", "令和7年", "", "7.4.1"]) {
      expect(parseJapaneseDate(bad), bad).toBeUndefined();
    }
  });
  it("writes era dates, 元年 for the first year", () => {
    expect(formatWareki("2025-04-01")).toBe("令和7年4月1日");
    expect(formatWareki("2019-05-01")).toBe("令和元年5月1日");
    expect(formatWareki("2019-04-30")).toBe("平成31年4月30日");
    expect(formatWareki("1989-01-07")).toBe("昭和64年1月7日");
    expect(formatWareki("1989-01-08")).toBe("平成元年1月8日");
    expect(formatWareki("1873-01-01")).toBe("明治6年1月1日");
    expect(formatWareki("1872-12-31")).toBeUndefined();
  });
  it("round-trips every era's first and last day", () => {
    for (const [i, e] of ERAS.entries()) {
      expect(parseJapaneseDate(formatWareki(e.start)!)).toBe(e.start);
      if (i > 0) {
        const last = new Date(Date.parse(`${ERAS[i - 1].start}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
        expect(parseJapaneseDate(formatWareki(last)!)).toBe(last);
        expect(formatWareki(last)!.startsWith(e.name)).toBe(true);
      }
    }
  });
});
