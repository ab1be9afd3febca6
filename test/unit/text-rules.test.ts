/**
 * The shared text rule set (src/pki/text-rules.ts, issue 10 §7): what intake (parseInput) refuses
 * is exactly what the certificate checks (parseSubscriberSubject, the Name lint) refuse, so nothing
 * passes the desk that the IA refuses.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ValidationError, cleanInputText, parseInput } from "../../src/pipeline/errors.ts";
import { SubjectError, parseSubscriberSubject } from "../../src/pki/subject.ts";
import { codePointLabel, hasUnstorableText, textViolation } from "../../src/pki/text-rules.ts";
import { HC_ROLES, loadProfile } from "./helpers/pki-fixtures.ts";

const sign = loadProfile("sign");
const doctor = (kanji: string) => ({ hcRole: "Medical Doctor", subscriberId: "T1", name: { latin: "Taro Yamada", kanji } });
const certificateRefuses = (kanji: string) => {
  try {
    parseSubscriberSubject(doctor(kanji), sign, HC_ROLES);
    return false;
  } catch (e) {
    if (e instanceof SubjectError) return e.issues.some((i) => i.field === "name.kanji");
    throw e;
  }
};
const intakeRefuses = (kanji: string) => {
  try {
    parseInput(z.object({ nameKanji: z.string() }), { nameKanji: kanji });
    return false;
  } catch (e) {
    if (e instanceof ValidationError) return e.issues.some((i) => i.field === "nameKanji");
    throw e;
  }
};

const REFUSED: [string, string][] = [
  ["\u202e", "bidi"], ["\u202a", "bidi"], ["\u2066", "bidi"], ["\u2069", "bidi"], ["\u200e", "bidi"], ["\u200f", "bidi"], ["\u061c", "bidi"],
  ["\u200b", "invisible"], ["\u200c", "invisible"], ["\u200d", "invisible"], ["\u2060", "invisible"], ["\ufeff", "invisible"], ["\u00ad", "invisible"], ["\u{e0041}", "invisible"],
  ["\u0000", "nul"], ["\u0007", "control"], ["\u0085", "control"], ["\u2028", "control"], ["\ud800", "lone-surrogate"], ["\udfff", "lone-surrogate"],
];

describe("text rules", () => {
  it("name each refused character by kind and code point", () => {
    for (const [c, kind] of REFUSED) {
      expect(textViolation(`山田${c}太郎`), codePointLabel(c.codePointAt(0)!)).toEqual({ kind, codePoint: c.codePointAt(0) });
    }
    expect(textViolation("山田\u3000太郎")).toBeUndefined();
    expect(textViolation("𠮷野家 👨‍⚕️".replace("\u200d", ""))).toBeUndefined();
    // Ideographic variation selectors (異体字) are marks, not format characters: kept.
    expect(textViolation("葛\u{e0100}飾")).toBeUndefined();
    expect(textViolation("a\nb\tc")?.kind).toBe("control");
    expect(textViolation("a\r\nb\tc", { lineBreaks: true })).toBeUndefined();
    expect(hasUnstorableText("a\u0000")).toBe(true);
    expect(hasUnstorableText("\ud83d\ude00")).toBe(false);
    expect(hasUnstorableText("\ude00\ud83d")).toBe(true);
  });

  it("intake and the certificate subject check refuse the same characters", () => {
    for (const [c] of REFUSED) {
      const s = `山田${c}太郎`;
      expect(intakeRefuses(s), codePointLabel(c.codePointAt(0)!)).toBe(true);
      expect(certificateRefuses(s), codePointLabel(c.codePointAt(0)!)).toBe(true);
    }
    for (const s of ["山田　太郎", "髙橋　𠮷男", "葛\u{e0100}飾　花子"]) {
      expect(intakeRefuses(s)).toBe(false);
      expect(certificateRefuses(s)).toBe(false);
    }
  });

  it("parseInput NFC-normalises every string, names nested fields, keeps passwords verbatim", () => {
    const r = cleanInputText({ a: "カ\u3099", list: ["ok", "x\u200by"], nested: { b: "\u202e" }, password: "pa\u0301ss\u200b" });
    expect(r.value).toMatchObject({ a: "ガ", password: "pa\u0301ss\u200b" });
    expect(r.issues.map((i) => i.field)).toEqual(["list.1", "nested.b"]);
    expect(r.issues[1].messageJa).toContain("U+202E");
    expect(r.issues[1].messageJa).toContain("nested.b");
    expect(cleanInputText({ password: "a\u0000" }).issues.map((i) => i.field)).toEqual(["password"]);
    const proto = cleanInputText(JSON.parse('{"__proto__": {"polluted": 1}}')).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(["__proto__"]);
  });
});
