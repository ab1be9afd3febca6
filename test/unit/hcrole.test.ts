import { describe, expect, it } from "vitest";
import * as pkijs from "pkijs";
import { decodeHcRoleExtension, encodeHcRoleExtension, extractHcRoles, HcRoleDecodeError } from "../../src/pki/hcrole.ts";
import { explicit, oid, sequence, set, tlv, utf8String } from "../../src/pki/der.ts";
import { realCert, realCerts } from "./helpers/real-certs.ts";

const sdaValue = (der: Buffer): Uint8Array | undefined =>
  pkijs.Certificate.fromBER(new Uint8Array(der))
    .extensions?.find((e) => e.extnID === "2.5.29.9")
    ?.extnValue.valueBlock.valueHexView;

const expectedRole: Record<string, string | null> = {
  "jma-ee-sign-doctor-8090": "Medical Doctor",
  "jma-ee-sign-pharmacist-83e3": "Pharmacist",
  "medis-ee-sign-doctor-006f": "Medical Doctor",
  "medis-ee-sign-doctor-015e": "Medical Doctor",
  "medis-ee-sign-pharmacist-0164": "Pharmacist",
  "jma-sign-ca-jv2": null,
  "medis-auth-ca2": null,
  "medis-sign-ca2": null,
  "mhlw-hpki-root-ca-v2": null,
};

/** Builds an SDA extnValue around one CodedData body (for negative and alternative-string tests). */
const wrap = (codedData: Buffer, attrType = "1.0.17090.0.1") =>
  sequence(sequence(oid(attrType), set(set(sequence(explicit(0, codedData))))));
const scheme = explicit(0, oid("1.2.392.100495.1.6.1.1"));

describe("hcRole decoding against real HPKI certificates", () => {
  it("covers every fixture", () => {
    expect(realCerts.map((c) => c.name).sort()).toEqual(Object.keys(expectedRole).sort());
  });

  for (const { name, der } of realCerts) {
    it(`${name}: decode → re-encode is byte-identical`, () => {
      const want = expectedRole[name];
      const roles = extractHcRoles(der);
      if (want === null) {
        expect(roles).toEqual([]);
        expect(sdaValue(der)).toBeUndefined();
        return;
      }
      expect(roles).toEqual([
        { codingSchemeReference: "1.2.392.100495.1.6.1.1", codeDataFreeText: want, freeTextType: "UTF8String" },
      ]);
      const original = Buffer.from(sdaValue(der)!);
      expect(encodeHcRoleExtension(roles[0].codeDataFreeText, roles[0].codingSchemeReference).equals(original)).toBe(true);
    });
  }
});

describe("decodeHcRoleExtension", () => {
  it("round-trips the encoder", () => {
    expect(decodeHcRoleExtension(encodeHcRoleExtension("Director of Hospital"))[0].codeDataFreeText).toBe(
      "Director of Hospital",
    );
  });

  it("accepts every DirectoryString choice", () => {
    const cases: [number, Buffer, string][] = [
      [0x13, Buffer.from("Nurse"), "PrintableString"],
      [0x1e, Buffer.from("\u0000N\u0000u\u0000r\u0000s\u0000e", "latin1"), "BMPString"],
      [0x14, Buffer.from("Nurs\u00e9", "latin1"), "TeletexString"],
      [0x1c, Buffer.from([0, 0, 0, 0x4e, 0, 0, 0, 0x75]), "UniversalString"],
    ];
    const texts = ["Nurse", "Nurse", "Nursé", "Nu"];
    cases.forEach(([tag, body, type], i) => {
      const [r] = decodeHcRoleExtension(wrap(set(scheme, explicit(2, tlv(tag, body)))));
      expect(r).toEqual({ codingSchemeReference: "1.2.392.100495.1.6.1.1", codeDataFreeText: texts[i], freeTextType: type });
    });
  });

  it("reads an optional NumericString codeDataValue and tolerates regionalHCActorData", () => {
    const coded = set(scheme, explicit(1, tlv(0x12, Buffer.from("12 3"))), explicit(2, utf8String("Dentist")));
    const ext = sequence(sequence(oid("1.0.17090.0.1"), set(set(sequence(explicit(0, coded), explicit(1, sequence()))))));
    expect(decodeHcRoleExtension(ext)).toEqual([
      { codingSchemeReference: "1.2.392.100495.1.6.1.1", codeDataValue: "12 3", codeDataFreeText: "Dentist", freeTextType: "UTF8String" },
    ]);
  });

  it("ignores other attributes and returns several roles in order", () => {
    const other = sequence(oid("1.3.6.1.5.5.7.9.1"), set(tlv(0x18, Buffer.from("19700101000000Z"))));
    const r1 = sequence(oid("1.0.17090.0.1"), set(set(sequence(explicit(0, set(scheme, explicit(2, utf8String("A"))))))));
    const r2 = sequence(oid("1.0.17090.0.1"), set(set(sequence(explicit(0, set(scheme, explicit(2, utf8String("B"))))))));
    expect(decodeHcRoleExtension(sequence(other, r1, r2)).map((r) => r.codeDataFreeText)).toEqual(["A", "B"]);
    expect(decodeHcRoleExtension(sequence(other))).toEqual([]);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ["empty input", Buffer.alloc(0), /empty/],
    ["garbage", Buffer.from("hello world"), /not valid DER|expected/],
    ["trailing bytes", Buffer.concat([encodeHcRoleExtension("Nurse"), Buffer.from([0])]), /trailing/],
    ["truncated", encodeHcRoleExtension("Nurse").subarray(0, 20), /not valid DER/],
    ["empty SEQUENCE", sequence(), /SIZE/],
    ["missing free text", wrap(set(scheme)), /codeDataFreeText \[2\] missing/],
    ["missing scheme", wrap(set(explicit(2, utf8String("X")))), /codingSchemeReference \[0\] missing/],
    ["duplicate field", wrap(set(scheme, scheme, explicit(2, utf8String("X")))), /twice/],
    ["IA5String free text", wrap(set(scheme, explicit(2, tlv(0x16, Buffer.from("X"))))), /not a DirectoryString/],
    ["invalid UTF-8", wrap(set(scheme, explicit(2, tlv(0x0c, Buffer.from([0xc3, 0x28]))))), /UTF-8/],
    ["odd BMPString", wrap(set(scheme, explicit(2, tlv(0x1e, Buffer.from([0, 0x41, 0]))))), /odd|multiple of 2/],
    ["non-numeric code", wrap(set(scheme, explicit(1, tlv(0x12, Buffer.from("1a"))), explicit(2, utf8String("X")))), /NumericString/],
    ["scheme not an OID", wrap(set(explicit(0, utf8String("x")), explicit(2, utf8String("X")))), /OBJECT IDENTIFIER/],
    ["a child overrunning its parent", Buffer.from("300301020304", "hex"), /overrun/],
    ["long-form length", Buffer.from("3081" + encodeHcRoleExtension("Nurse").subarray(1).toString("hex"), "hex"), /non-minimal|not valid/],
  ];
  for (const [label, bytes, re] of bad) {
    it(`rejects ${label}`, () => {
      expect(() => decodeHcRoleExtension(bytes)).toThrow(HcRoleDecodeError);
      expect(() => decodeHcRoleExtension(bytes)).toThrow(re);
    });
  }

  it("extractHcRoles rejects a non-certificate", () => {
    expect(() => extractHcRoles(Buffer.from("nope"))).toThrow(HcRoleDecodeError);
  });
});
