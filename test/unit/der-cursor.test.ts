import { describe, expect, it } from "vitest";
import {
  DerReadError,
  assertDerTree,
  childrenOf,
  decodeOid,
  decodeString,
  isContext,
  isUniversal,
  oidOf,
  parseDer,
  readDer,
  readSingle,
  readTlv,
  utf8Text,
  type Fail,
} from "../../src/pki/der-cursor.ts";
import { oid, sequence, tlv, utf8String } from "../../src/pki/der.ts";

class TestError extends Error {}
const fail: Fail = (m) => {
  throw new TestError(m);
};
const hex = (h: string) => Buffer.from(h, "hex");

describe("der-cursor: the strict DER reader", () => {
  it("reads short, long and high-tag-number forms", () => {
    expect(readTlv(hex("0403616263"), 0)).toEqual({ tag: 0x04, start: 0, contentStart: 2, end: 5 });
    const long = Buffer.concat([hex("048180"), Buffer.alloc(0x80)]);
    expect(readSingle(long)).toEqual({ tag: 0x04, start: 0, contentStart: 3, end: 0x83 });
    expect(readSingle(hex("9f2001ff"))).toEqual({ tag: 0x9f, start: 0, contentStart: 3, end: 4 });
  });

  const bad: [string, string, RegExp][] = [
    ["indefinite length", "3080020100 0000", /indefinite/],
    ["long form for a short length", "04810100", /non-minimal length/],
    ["a zero-led long length", "0482000100", /non-minimal length/],
    ["a high tag number below 31", "9f1e0100", /non-minimal tag/],
    ["a 0x80-led tag number", "9f802001ff", /non-minimal tag/],
    ["truncation", "0405616263", /overruns/],
    ["trailing bytes", "050000", /trailing/],
  ];
  for (const [label, h, re] of bad) {
    it(`readDer rejects ${label} (DerReadError)`, () => {
      const b = hex(h.replace(/ /g, ""));
      expect(() => readDer(b)).toThrow(DerReadError);
      expect(() => readDer(b)).toThrow(re);
    });
  }

  it("assertDerTree rejects a child overrunning its parent (asn1js accepts it)", () => {
    const b = hex("3003010203");
    expect(() => assertDerTree(b, readSingle(b))).toThrow(/overruns/);
    expect(() => childrenOf(b, readTlv(b, 0))).toThrow(DerReadError);
    expect(() => readDer(hex("300301020304"))).toThrow(/overruns/); // the tree is checked before trailing bytes
  });

  it("parseDer fails through the caller's error with the DER reason", () => {
    expect(() => parseDer(Buffer.alloc(0), "X", fail)).toThrow(/X: empty input/);
    expect(() => parseDer(hex("300301020304"), "X", fail)).toThrow(/X: not valid DER \(element overruns/);
    expect(() => parseDer(hex("30000000"), "X", fail)).toThrow(/X: not valid DER \(2 trailing byte\(s\)/);
    expect(() => parseDer(hex("3080"), "X", fail)).toThrow(TestError);
    const t = parseDer(sequence(oid("2.5.4.3"), utf8String("名前")), "X", fail);
    expect(isUniversal(t, 16)).toBe(true);
    expect(isContext(t, 16, true)).toBe(false);
  });

  it("decodes OIDs, including arcs beyond 2^53, and rejects bad arcs", () => {
    expect(decodeOid(oid("1.2.840.113549.1.1.11").subarray(2))).toBe("1.2.840.113549.1.1.11");
    expect(decodeOid(hex("550403"))).toBe("2.5.4.3");
    const uuid = "2.25.329800735698586629295641978511506172918";
    expect(decodeOid(oid(uuid).subarray(2))).toBe(uuid);
    expect(() => decodeOid(hex("2a8001"))).toThrow(/non-minimal OID arc/);
    expect(() => decodeOid(hex("2a86"))).toThrow(/truncated OID arc/);
    const b = Buffer.from(sequence(utf8String("x")));
    expect(() => oidOf(b, childrenOf(b, readSingle(b))[0], "type", fail)).toThrow(/type: expected an OBJECT IDENTIFIER/);
  });

  it("decodes character strings strictly", () => {
    const str = (tag: number, body: Buffer) => {
      const b = tlv(tag, body);
      return decodeString(b, readSingle(b), "v", fail);
    };
    expect(str(0x0c, Buffer.from("医師"))).toEqual({ value: "医師", stringType: "UTF8String" });
    expect(str(0x1e, hex("533b5e2b"))).toEqual({ value: "医師", stringType: "BMPString" });
    expect(() => str(0x0c, hex("ff"))).toThrow(/v: UTF8String is not valid UTF-8/);
    expect(() => str(0x13, hex("e9"))).toThrow(/non-ASCII/);
    expect(() => str(0x04, hex("00"))).toThrow(/not a character string/);
    const constructed = tlv(0x2c, utf8String("a"));
    expect(() => decodeString(constructed, readSingle(constructed), "v", fail)).toThrow(/constructed UTF8String/);
    expect(utf8Text(Buffer.from("abc"))).toBe("abc");
    expect(utf8Text(hex("c328"))).toBeUndefined();
  });
});
