import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import * as pkijs from "pkijs";
import { decodeName, formatName, NameDecodeError } from "../../src/pki/name-decode.ts";
import { oid, printableString, sequence, set, tlv, utf8String } from "../../src/pki/der.ts";
import { realCert, realCerts } from "./helpers/real-certs.ts";

const names = (der: Buffer) => {
  const c = pkijs.Certificate.fromBER(new Uint8Array(der));
  return { subject: new Uint8Array(c.subject.valueBeforeDecode), issuer: new Uint8Array(c.issuer.valueBeforeDecode) };
};
const opensslName = (file: string, which: "subject" | "issuer") =>
  execFileSync("openssl", ["x509", "-inform", "der", "-in", file, "-noout", `-${which}`, "-nameopt", "esc_2253,esc_ctrl,utf8,sep_comma_plus_space,sname"], {
    encoding: "utf8",
  })
    .trim()
    .replace(`${which}=`, "");
const atv = (type: string, value: Buffer) => set(sequence(oid(type), value));

describe("formatName matches openssl on every real certificate", () => {
  for (const { name, der, file } of realCerts) {
    it(name, () => {
      const n = names(der);
      expect(formatName(n.subject)).toBe(opensslName(file, "subject"));
      expect(formatName(n.issuer)).toBe(opensslName(file, "issuer"));
    });
  }
});

describe("decodeName", () => {
  it("decodes the MEDIS doctor's subject with string types", () => {
    expect(decodeName(names(realCert("medis-ee-sign-doctor-015e")).subject)).toEqual([
      [{ type: "2.5.4.6", shortName: "C", value: "JP", stringType: "PrintableString" }],
      [{ type: "2.5.4.10", shortName: "O", value: "MEDIS UNIVERSITY HOSPITAL", stringType: "UTF8String" }],
      [{ type: "2.5.4.3", shortName: "CN", value: "Sanjushi Kagurazaka", stringType: "UTF8String" }],
      [{ type: "2.5.4.5", shortName: "serialNumber", value: "Test117120", stringType: "PrintableString" }],
    ]);
  });

  it("decodes the root DN (no CN, two OUs, comma in O)", () => {
    const rdns = decodeName(names(realCert("mhlw-hpki-root-ca-v2")).subject);
    expect(rdns.map((r) => r[0].shortName)).toEqual(["C", "O", "OU", "OU"]);
    expect(rdns[1][0].value).toBe("Ministry of Health, Labour and Welfare");
    expect(formatName(names(realCert("mhlw-hpki-root-ca-v2")).subject)).toBe(
      "C=JP, O=Ministry of Health\\, Labour and Welfare, OU=Director-General for Policy Planning and Evaluation, OU=MHLW HPKI Root CA V2",
    );
  });

  it("handles multi-valued RDNs, BMP/Universal/Teletex strings, unknown and non-string attributes", () => {
    const der = sequence(
      set(sequence(oid("2.5.4.3"), utf8String("a")), sequence(oid("2.5.4.5"), printableString("1"))),
      atv("2.5.4.10", tlv(0x1e, Buffer.from([0x53, 0x3b, 0x5e, 0x2b]))), // 医師 (U+533B U+5E2B) as BMPString
      atv("2.5.4.11", tlv(0x1c, Buffer.from([0, 1, 0xf6, 0x00]))), // U+1F600 as UniversalString
      atv("2.5.4.7", tlv(0x14, Buffer.from([0x4d, 0xfc]))), // "Mü" as T61 (Latin-1)
      atv("1.2.3.4", utf8String("x")),
      atv("2.5.4.8", Buffer.from([0x02, 0x01, 0x05])), // INTEGER 5: not a string
    );
    const rdns = decodeName(der);
    expect(rdns[0]).toHaveLength(2);
    expect(rdns[1][0]).toEqual({ type: "2.5.4.10", shortName: "O", value: "医師", stringType: "BMPString" });
    expect(rdns[2][0].value).toBe("\u{1F600}");
    expect(rdns[3][0]).toMatchObject({ value: "Mü", stringType: "TeletexString" });
    expect(rdns[4][0]).toEqual({ type: "1.2.3.4", value: "x", stringType: "UTF8String" });
    expect(rdns[5][0]).toMatchObject({ value: "#020105", stringType: "DER" });
    expect(formatName(der)).toBe("CN=a + serialNumber=1, O=医師, OU=\u{1F600}, L=Mü, 1.2.3.4=x, ST=#020105");
  });

  it("escapes RFC 4514 specials like openssl esc_2253", () => {
    const der = sequence(atv("2.5.4.3", utf8String('#a+b;c"d<e>\\ ')), atv("2.5.4.10", utf8String(" x\u0001")));
    expect(formatName(der)).toBe('CN=\\#a\\+b\\;c\\"d\\<e\\>\\\\\\ , O=\\ x\\01');
  });

  it("decodes an empty Name to []", () => {
    expect(decodeName(sequence())).toEqual([]);
    expect(formatName(sequence())).toBe("");
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ["garbage", Buffer.from("xyz"), /DER|SEQUENCE/],
    ["trailing bytes", Buffer.concat([sequence(), Buffer.from([0])]), /trailing/],
    ["a SET at top", set(), /SEQUENCE/],
    ["an empty RDN", sequence(set()), /empty SET/],
    ["an RDN that is not a SET", sequence(sequence()), /expected a SET/],
    ["invalid UTF-8", sequence(atv("2.5.4.3", tlv(0x0c, Buffer.from([0xff])))), /UTF-8/],
    ["a type that is not an OID", sequence(set(sequence(utf8String("x"), utf8String("y")))), /OBJECT IDENTIFIER/],
    ["non-ASCII PrintableString", sequence(atv("2.5.4.6", tlv(0x13, Buffer.from([0xe9])))), /non-ASCII/],
  ];
  for (const [label, bytes, re] of bad) {
    it(`rejects ${label}`, () => {
      expect(() => decodeName(bytes)).toThrow(NameDecodeError);
      expect(() => decodeName(bytes)).toThrow(re);
    });
  }
});
