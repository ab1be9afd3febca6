import * as pkijs from "pkijs";
import { describe, expect, it } from "vitest";
import { encodeHpkiName, encodeKanjiDirectoryName, encodeName, type HpkiNameFields } from "../../src/pki/name.ts";
import { OID } from "../../src/pki/oids.ts";
import { parseCert, realCert } from "./helpers/pki-fixtures.ts";

const REAL = [
  "mhlw-hpki-root-ca-v2",
  "medis-sign-ca2",
  "medis-auth-ca2",
  "jma-sign-ca-jv2",
  "medis-ee-sign-doctor-015e",
  "medis-ee-sign-doctor-006f",
  "medis-ee-sign-pharmacist-0164",
  "jma-ee-sign-doctor-8090",
  "jma-ee-sign-pharmacist-83e3",
];

/** Decodes a Name with pkijs (independent of our code) into HPKI fields. */
function fieldsOf(name: pkijs.RelativeDistinguishedNames): HpkiNameFields {
  const f: { c?: string; o?: string; ou: string[]; cn?: string; serialNumber?: string } = { ou: [] };
  for (const tv of name.typesAndValues) {
    const v = (tv.value as unknown as { valueBlock: { value: string } }).valueBlock.value;
    if (tv.type === OID.countryName) f.c = v;
    else if (tv.type === OID.organizationName) f.o = v;
    else if (tv.type === OID.organizationalUnitName) f.ou.push(v);
    else if (tv.type === OID.commonName) f.cn = v;
    else if (tv.type === OID.serialNumber) f.serialNumber = v;
    else throw new Error(`unexpected attribute ${tv.type}`);
  }
  return { ...f, ou: f.ou.length ? f.ou : undefined };
}

describe("encodeHpkiName", () => {
  it.each(REAL)("reproduces the subject and issuer Name of %s byte for byte", (file) => {
    const der = realCert(file);
    const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
    const parsed = parseCert(der);
    expect(encodeHpkiName(fieldsOf(cert.subject)).equals(parsed.subject)).toBe(true);
    expect(encodeHpkiName(fieldsOf(cert.issuer)).equals(parsed.issuer)).toBe(true);
  });

  it("defaults C to JP and writes C and serialNumber as PrintableString, the rest UTF8String", () => {
    const der = encodeHpkiName({ cn: "Taro Yamada", serialNumber: "X1" });
    // 0x13 PrintableString "JP", 0x0c UTF8String CN, 0x13 serialNumber
    expect(der.toString("hex")).toContain("060355040613024a50");
    expect(der.toString("hex")).toContain("06035504030c0b");
    expect(der.toString("hex")).toContain("060355040513025831");
  });

  it("NFC-normalises text before encoding", () => {
    const nfd = "\u30db\u309a"; // ホ + combining semi-voiced mark → ポ
    const a = encodeHpkiName({ cn: nfd });
    const b = encodeHpkiName({ cn: "\u30dd" });
    expect(a.equals(b)).toBe(true);
  });

  it("rejects a serialNumber outside the PrintableString alphabet and empty values", () => {
    expect(() => encodeHpkiName({ cn: "A", serialNumber: "ID_1" })).toThrow(/PrintableString/);
    expect(() => encodeHpkiName({ cn: "" })).toThrow(/empty/);
  });
});

describe("encodeName", () => {
  it("puts exactly one AttributeTypeAndValue in each RDN SET", () => {
    const der = encodeName([
      { type: OID.countryName, value: "JP", stringType: "printable" },
      { type: OID.commonName, value: "X", stringType: "utf8" },
    ]);
    // SEQUENCE { SET { SEQ {C} }, SET { SEQ {CN} } }
    expect(der.toString("hex")).toBe("3019310b3009060355040613024a50310a300806035504030c0158");
  });
});

describe("encodeKanjiDirectoryName", () => {
  it.each(["medis-ee-sign-doctor-015e", "medis-ee-sign-doctor-006f", "medis-ee-sign-pharmacist-0164"])(
    "reproduces the SAN directoryName of %s",
    (file) => {
      const cert = pkijs.Certificate.fromBER(new Uint8Array(realCert(file)));
      const san = parseCert(realCert(file)).extensions.get(OID.subjectAltName)!.value;
      const gn = pkijs.GeneralNames.fromBER(new Uint8Array(san)).names[0];
      const f = fieldsOf(gn.value as pkijs.RelativeDistinguishedNames);
      expect(f.cn).toContain("\u3000");
      const dn = encodeKanjiDirectoryName({ organizationKanji: f.o, kanjiName: f.cn!, serialNumber: f.serialNumber! });
      // GeneralNames = SEQUENCE { [4] Name }
      expect(san.subarray(san.length - dn.length).equals(dn)).toBe(true);
      expect(f.serialNumber).toBe(fieldsOf(cert.subject).serialNumber);
    },
  );
});
