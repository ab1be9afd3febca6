/** KEN_ALL.CSV parsing (src/registration/postcodes.ts, issue 12 §4) on lines written in its format here (Shift_JIS, CRLF). */
import { describe, expect, it } from "vitest";
import { kenAllTown, parseKenAll } from "../../src/registration/postcodes.ts";
import { encodeShiftJis, KEN_ALL_SAMPLE } from "../helpers/ken-all.ts";

describe("KEN_ALL.CSV", () => {
  it("decodes Shift_JIS and cleans town names", () => {
    const rows = parseKenAll(encodeShiftJis(KEN_ALL_SAMPLE));
    const by = (code: string) => rows.filter((r) => r.postalCode === code).map((r) => `${r.prefecture}${r.city}${r.town}`);
    expect(by("1000000")).toEqual(["東京都千代田区"]);
    expect(by("1000005")).toEqual(["東京都千代田区丸の内"]);
    expect(by("0600042")).toEqual(["北海道札幌市中央区大通西"]);
    expect(by("6048000")).toEqual(["京都府京都市中京区テスト町"]);
    expect(by("1500002")).toEqual(["東京都渋谷区渋谷", "東京都渋谷区渋谷駅前"]);
    expect(by("3890100")).toEqual(["長野県北佐久郡軽井沢町"]);
    expect(rows).toHaveLength(7);
  });
  it("refuses a file that is not KEN_ALL", () => {
    expect(() => parseKenAll(encodeShiftJis("qualification,registration_number\r\nMedical Doctor,1\r\n"))).toThrow(/KEN_ALL/);
    expect(() => parseKenAll(new TextEncoder().encode(KEN_ALL_SAMPLE))).toThrow();
  });
  it("town rules", () => {
    expect(kenAllTown("一円", "犬上郡多賀町")).toBe("一円");
    expect(kenAllTown("大手町の次に番地がくる場合", "千代田区")).toBe("");
  });
});
