import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Tag, derBoolean, derNull, oid, octetString, printableString, sequence, set, tlv, utf8String } from "../../src/pki/der.ts";
import { childrenOf, readSingle } from "../../src/pki/der-cursor.ts";
import { extension, keyUsageValue } from "../../src/pki/extensions.ts";
import { encodeHcRoleExtension } from "../../src/pki/hcrole.ts";
import { LintError, assertLintClean, lintTbsCertificate } from "../../src/pki/lint.ts";
import { encodeHpkiName, encodeName } from "../../src/pki/name.ts";
import { OID } from "../../src/pki/oids.ts";
import type { CertificateProfile } from "../../src/pki/profile.ts";
import { compileTbsTemplate, type IssuerContext } from "../../src/pki/tbs.ts";
import { computeValidity } from "../../src/pki/validity.ts";
import { MEDIS_LIKE_SUBJECT, buildTestChain, loadProfile, realCert, testKey } from "./helpers/pki-fixtures.ts";

const { root, ca } = buildTestChain(new Date("2026-01-10T03:00:00Z"));
const sign = loadProfile("sign");
const now = new Date("2026-06-01T03:00:00Z");
const good = compileTbsTemplate(sign, ca.issuer)({
  serialNumber: Buffer.from("0123456789abcdef", "hex"),
  subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT },
  subjectPublicKeyInfo: testKey("rsa2048").spki,
  validity: computeValidity(sign, now),
});

/** Field TLVs of a tbs: 0 version, 1 serial, 2 signature, 3 issuer, 4 validity, 5 subject, 6 SPKI, 7 [3] extensions. */
function fields(tbs: Buffer): Buffer[] {
  return childrenOf(tbs, readSingle(tbs)).map((t) => tbs.subarray(t.start, t.end));
}
const withField = (i: number, der: Uint8Array, tbs = good): Buffer => sequence(...fields(tbs).map((f, j) => (j === i ? der : f)));
const extensionsOf = (tbs = good): Buffer[] => {
  const e = Buffer.from(fields(tbs)[7]);
  const inner = childrenOf(e, readSingle(e))[0];
  return childrenOf(e, inner).map((t) => e.subarray(t.start, t.end));
};
const withExtensions = (edit: (exts: Buffer[]) => Buffer[], tbs = good): Buffer => withField(7, tlv(0xa3, sequence(...edit(extensionsOf(tbs)))), tbs);
/** Replaces the extension with `extnId` by `der`. */
const replaceExt = (extnId: string, der: Buffer): Buffer =>
  withExtensions((exts) => exts.map((x) => (x.includes(oid(extnId)) && x.indexOf(oid(extnId)) === 2 ? der : x)));
const codes = (tbs: Uint8Array, profile: CertificateProfile = sign, issuer: IssuerContext = ca.issuer): string[] =>
  lintTbsCertificate(tbs, profile, issuer).map((v) => v.code);
const validity = (nb: string, na: string) => sequence(tlv(Tag.UTCTime, Buffer.from(nb)), tlv(Tag.UTCTime, Buffer.from(na)));
const subjectRdns = (...rdns: Buffer[]) => sequence(...rdns);
const atv = (type: string, value: Buffer) => set(sequence(oid(type), value));
const C = atv(OID.countryName, printableString("JP"));
const CN = atv(OID.commonName, utf8String("Sanjushi Kagurazaka"));
const SN = atv(OID.serialNumber, printableString("Test117120"));

describe("lintTbsCertificate: clean certificates", () => {
  it("passes the builder's output for every profile and the chain's CA certificates", () => {
    expect(lintTbsCertificate(good, sign, ca.issuer)).toEqual([]);
    expect(() => assertLintClean(good, sign, ca.issuer)).not.toThrow();
  });

  it("assertLintClean throws LintError carrying the violations", () => {
    try {
      assertLintClean(withField(1, tlv(Tag.INTEGER, Buffer.from([0]))), sign, ca.issuer);
      throw new Error("no throw");
    } catch (e) {
      expect(e).toBeInstanceOf(LintError);
      expect((e as LintError).violations.map((v) => v.code)).toContain("serial.zero");
    }
  });

  it("flags the real MEDIS 015e certificate only for its 5 years + 1 day validity", () => {
    // its issuer context, CPS and CRL URL, as the real MEDIS CA would configure them
    const real = realCert("medis-ee-sign-doctor-015e");
    const tbsT = childrenOf(real, readSingle(real))[0];
    const tbs = real.subarray(tbsT.start, tbsT.end);
    const medisCa = realCert("medis-sign-ca2");
    const caT = childrenOf(medisCa, childrenOf(medisCa, readSingle(medisCa))[0]);
    const issuer: IssuerContext = {
      caName: "medis",
      name: medisCa.subarray(caT[5].start, caT[5].end),
      keyIdentifier: Buffer.from("9DD6135245EFBD5E7852C8588E78BC541E3F96E6", "hex"),
      authorityCertIssuer: medisCa.subarray(caT[3].start, caT[3].end),
      authorityCertSerialNumber: Buffer.from([4]),
      signatureAlgorithm: "sha256WithRSAEncryption",
      crlDistributionPointUrl: "http://cert.medis.or.jp/sign/crl-sign2.crl",
    };
    const profile: CertificateProfile = {
      ...sign,
      extensions: sign.extensions.map((e) => (e.name === "certificatePolicies" ? { ...e, policies: [{ oid: e.policies[0].oid, cpsUri: "http://www.medis.or.jp/8_hpki/" }] } : e)),
    };
    expect(codes(tbs, profile, issuer)).toEqual(["validity.too-long", "validity.ee-over-5-years"]);
  });
});

describe("lint rules catch tampered tbsCertificates", () => {
  it("der.*: truncated, trailing bytes, non-minimal length", () => {
    expect(codes(good.subarray(0, good.length - 1))).toEqual(["der.malformed"]);
    expect(codes(Buffer.concat([good, Buffer.from([0])]))).toEqual(["der.malformed"]);
    // version [0] with a long-form length 0x81 0x03 (BER, not DER)
    expect(codes(withField(0, Buffer.from([0xa0, 0x81, 0x03, 0x02, 0x01, 0x02])))).toEqual(["der.malformed"]);
  });

  it("version.not-v3", () => {
    expect(codes(withField(0, Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x01])))).toContain("version.not-v3");
  });

  it("serial.*: zero, negative, too long, not minimal", () => {
    expect(codes(withField(1, tlv(Tag.INTEGER, Buffer.from([0]))))).toContain("serial.zero");
    expect(codes(withField(1, tlv(Tag.INTEGER, Buffer.from([0x80, 1]))))).toContain("serial.negative");
    expect(codes(withField(1, tlv(Tag.INTEGER, Buffer.alloc(21, 0x11))))).toContain("serial.too-long");
    expect(codes(withField(1, tlv(Tag.INTEGER, Buffer.from([0, 0x11]))))).toContain("serial.not-minimal");
  });

  it("signature.*: algorithm differs from the issuer's, or the profile does not allow it", () => {
    expect(codes(good, sign, { ...ca.issuer, signatureAlgorithm: "ecdsa-with-SHA256" })).toContain("signature.mismatch");
    expect(codes(good, { ...sign, signatureAlgorithms: ["ecdsa-with-SHA256"] })).toContain("signature.not-allowed");
  });

  it("issuer.mismatch", () => {
    expect(codes(good, sign, { ...ca.issuer, name: encodeHpkiName({ o: "Other", cn: "Other CA" }) })).toContain("issuer.mismatch");
  });

  it("validity.*: order, profile maximum, 5-year EE cap, JST boundaries, time encoding", () => {
    expect(codes(withField(4, validity("260601150000Z", "260531145959Z")))).toContain("validity.order");
    expect(codes(withField(4, validity("260531150000Z", "310601145959Z")))).toEqual(["validity.too-long", "validity.ee-over-5-years"]);
    expect(codes(good, { ...sign, validity: { ...sign.validity, years: 1 } })).toEqual(["validity.too-long"]);
    expect(codes(withField(4, validity("260531150000Z", "310601145959Z")), { ...sign, validity: { ...sign.validity, years: 10 } })).toEqual(["validity.ee-over-5-years"]);
    expect(codes(withField(4, validity("260601030000Z", "310530145959Z")))).toEqual(["validity.not-jst-midnight"]);
    expect(codes(withField(4, validity("260531150000Z", "310530150000Z")))).toEqual(["validity.not-jst-end-of-day"]);
    const gen = sequence(tlv(Tag.GeneralizedTime, Buffer.from("20260531150000Z")), tlv(Tag.UTCTime, Buffer.from("310530145959Z")));
    expect(codes(withField(4, gen))).toEqual(["validity.encoding"]);
    expect(codes(withField(4, validity("260531150000", "310530145959Z")))).toEqual(["validity.encoding"]);
  });

  it("subject.*: multi-valued RDN, order, string types, missing and unexpected attributes", () => {
    expect(codes(withField(5, subjectRdns(set(sequence(oid(OID.countryName), printableString("JP")), sequence(oid(OID.commonName), utf8String("X"))), SN)))).toContain("subject.multi-valued-rdn");
    expect(codes(withField(5, subjectRdns(C, SN, CN)))).toContain("subject.order");
    expect(codes(withField(5, subjectRdns(atv(OID.countryName, utf8String("JP")), CN, SN)))).toContain("subject.string-type");
    expect(codes(withField(5, subjectRdns(C, CN)))).toContain("subject.missing-attribute");
    expect(codes(withField(5, subjectRdns(C, CN, SN, atv("2.5.4.7", utf8String("Tokyo")))))).toContain("subject.unexpected-attribute");
    expect(codes(withField(5, subjectRdns(atv(OID.countryName, printableString("US")), CN, SN)))).toContain("subject.country");
  });

  it("subject.*: NFC, control characters, length, PrintableString alphabet, empty values, Director rule", () => {
    expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, tlv(Tag.UTF8String, Buffer.from("Cafe\u0301"))), SN)))).toContain("subject.not-nfc");
    expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, utf8String("A\u0007B")), SN)))).toContain("subject.control-char");
    // The intake rule set (text-rules.ts): bidi and invisible characters too (issue 10 §7).
    for (const c of ["\u202e", "\u200b", "\ufeff", "\u00ad", "\u2066"]) {
      expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, utf8String(`A${c}B`)), SN)))).toContain("subject.control-char");
    }
    expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, utf8String("a".repeat(65))), SN)))).toContain("subject.too-long");
    expect(codes(withField(5, subjectRdns(C, CN, atv(OID.serialNumber, tlv(Tag.PrintableString, Buffer.from("a_b"))))))).toContain("subject.printable");
    expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, tlv(Tag.UTF8String, Buffer.alloc(0))), SN)))).toContain("subject.empty-value");
    expect(codes(withField(5, subjectRdns(C, atv(OID.commonName, tlv(Tag.UTF8String, Buffer.from([0xc3, 0x28]))), SN)))).toContain("subject.utf8");
    const ou = (v: string) => atv(OID.organizationalUnitName, utf8String(v));
    expect(codes(withField(5, subjectRdns(C, ou("Director"), CN, SN)))).toContain("subject.director");
    expect(codes(withField(5, subjectRdns(C, atv(OID.organizationName, utf8String("H")), ou("Doctors"), CN, SN)))).toContain("subject.director");
    // and encodeName output with OU=Director + O is fine
    const ok = encodeName([
      { type: OID.countryName, value: "JP", stringType: "printable" },
      { type: OID.organizationName, value: "H", stringType: "utf8" },
      { type: OID.organizationalUnitName, value: "Director", stringType: "utf8" },
      { type: OID.commonName, value: "Sanjushi Kagurazaka", stringType: "utf8" },
      { type: OID.serialNumber, value: "Test117120", stringType: "printable" },
    ]);
    expect(codes(withField(5, ok))).toEqual([]);
  });

  it("spki.*: key not allowed by the profile (P-256, RSA-1024, RSA-3072), bad exponent, params, curve, algorithm", () => {
    const withKey = (spki: Uint8Array) => compileTbsTemplate(sign, ca.issuer)({
      serialNumber: Buffer.from([1]),
      subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT },
      subjectPublicKeyInfo: spki,
      validity: computeValidity(sign, now),
    });
    expect(codes(withKey(testKey("p256").spki))).toEqual(["spki.key-not-allowed"]);
    expect(codes(withKey(testKey("rsa1024").spki))).toEqual(["spki.key-not-allowed"]);
    expect(codes(withKey(testKey("p384").spki), { ...sign, keyAlgorithms: ["P-256"] })).toEqual(["spki.key-not-allowed"]);
    const rsa = (e: number[], params: Buffer = Buffer.from([5, 0])) =>
      sequence(sequence(oid(OID.rsaEncryption), params), tlv(Tag.BIT_STRING, Buffer.from([0]), sequence(tlv(Tag.INTEGER, Buffer.concat([Buffer.from([0, 0xc1]), Buffer.alloc(255, 7)])), tlv(Tag.INTEGER, Buffer.from(e)))));
    expect(codes(withKey(rsa([1, 0, 1])))).toEqual([]);
    expect(codes(withKey(rsa([1, 0, 0])))).toEqual(["spki.rsa-exponent"]);
    expect(codes(withKey(rsa([1])))).toEqual(["spki.rsa-exponent"]);
    expect(codes(withKey(rsa([1, 0, 1], oid("1.2.3"))))).toEqual(["spki.rsa-params"]);
    const ec = (curve: string, point: Buffer) => sequence(sequence(oid(OID.idEcPublicKey), oid(curve)), tlv(Tag.BIT_STRING, Buffer.from([0]), point));
    expect(codes(withKey(ec("1.3.132.0.10", Buffer.alloc(65, 4))), { ...sign, keyAlgorithms: ["P-256"] })).toEqual(["spki.ec-curve"]);
    expect(codes(withKey(ec(OID.secp256r1, Buffer.alloc(64, 4))), { ...sign, keyAlgorithms: ["P-256"] })).toEqual(["spki.ec-point"]);
    expect(codes(withKey(sequence(sequence(oid("1.3.101.112")), tlv(Tag.BIT_STRING, Buffer.alloc(33)))))).toEqual(["spki.algorithm"]);
  });

  it("uniqueid.present", () => {
    const f = fields(good);
    expect(codes(sequence(...f.slice(0, 7), tlv(0x81, Buffer.from([0, 1])), f[7]))).toContain("uniqueid.present");
  });

  it("ext.*: missing, unexpected, duplicate, criticality, DEFAULT FALSE encoded, order, malformed value", () => {
    expect(codes(withExtensions((e) => e.filter((x) => !x.includes(oid(OID.keyUsage)))))).toEqual(["ext.missing"]);
    expect(codes(withExtensions((e) => [...e, extension(OID.basicConstraints, true, sequence())]))).toEqual(["ext.unexpected"]);
    expect(codes(withExtensions((e) => [...e, extension("1.2.3.4", false, sequence())]))).toEqual(["ext.unexpected"]);
    expect(codes(withExtensions((e) => [...e, e[2]]))).toContain("ext.duplicate");
    expect(codes(replaceExt(OID.keyUsage, extension(OID.keyUsage, false, keyUsageValue(["nonRepudiation"]))))).toEqual(["ext.criticality"]);
    expect(codes(replaceExt(OID.keyUsage, sequence(oid(OID.keyUsage), tlv(Tag.BOOLEAN, Buffer.from([0])), octetString(keyUsageValue(["nonRepudiation"])))))).toContain("ext.critical-default");
    expect(codes(withExtensions((e) => [e[1], e[0], ...e.slice(2)]))).toEqual(["ext.order"]);
    expect(codes(replaceExt(OID.keyUsage, extension(OID.keyUsage, true, Buffer.from([3, 0x81, 2, 6, 0x40]))))).toEqual(["ext.malformed"]);
  });

  it("ext.missing is not raised for the optional kanji SAN", () => {
    expect(codes(withExtensions((e) => e.filter((x) => !x.includes(oid(OID.subjectAltName)))))).toEqual([]);
  });

  it("aki.*: keyid, issuer dirName, serial, form", () => {
    expect(codes(good, sign, { ...ca.issuer, keyIdentifier: Buffer.alloc(20, 1) })).toEqual(["aki.keyid"]);
    expect(codes(good, sign, { ...ca.issuer, authorityCertIssuer: encodeHpkiName({ o: "X", cn: "Y" }) })).toEqual(["aki.issuer"]);
    expect(codes(good, sign, { ...ca.issuer, authorityCertSerialNumber: Buffer.from([5]) })).toEqual(["aki.serial"]);
    const keyidOnly = compileTbsTemplate(
      { ...sign, extensions: sign.extensions.map((e) => (e.name === "authorityKeyIdentifier" ? { ...e, form: "keyid" as const } : e)) },
      ca.issuer,
    )({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(sign, now) });
    expect(codes(keyidOnly)).toEqual(["aki.form"]);
  });

  it("ski.mismatch", () => {
    expect(codes(replaceExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, octetString(Buffer.alloc(20)))))).toEqual(["ski.mismatch"]);
  });

  it("ku.*: wrong bits and non-DER named bit string", () => {
    expect(codes(replaceExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(["digitalSignature", "nonRepudiation"]))))).toEqual(["ku.bits"]);
    expect(codes(replaceExt(OID.keyUsage, extension(OID.keyUsage, true, Buffer.from([3, 2, 0, 0x40]))))).toEqual(["ku.not-der"]);
  });

  it("eku.purposes and bc.* (auth-person / issuing-ca profiles)", () => {
    const ap = loadProfile("auth-person");
    const apTbs = compileTbsTemplate(ap, ca.issuer)({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(ap, now) });
    expect(codes(apTbs, ap)).toEqual([]);
    const wrongEku = withExtensions((e) => e.map((x) => (x.indexOf(oid(OID.extKeyUsage)) === 2 ? extension(OID.extKeyUsage, false, sequence(oid(OID.idKpServerAuth))) : x)), apTbs);
    // serverAuth also needs a SAN dNSName, whatever the profile says.
    expect(codes(wrongEku, ap)).toEqual(["eku.purposes", "san.server-auth-dns"]);

    const caProfile = loadProfile("issuing-ca");
    const caTbs = childrenOf(ca.cert, readSingle(ca.cert))[0];
    const caTbsDer = ca.cert.subarray(caTbs.start, caTbs.end);
    expect(codes(caTbsDer, caProfile, root.issuer)).toEqual([]);
    const bc = (v: Buffer) => withExtensions((e) => e.map((x) => (x.indexOf(oid(OID.basicConstraints)) === 2 ? extension(OID.basicConstraints, true, v) : x)), caTbsDer);
    expect(codes(bc(sequence(derBoolean(true))), caProfile, root.issuer)).toEqual(["bc.mismatch"]);
    expect(codes(bc(sequence(tlv(Tag.BOOLEAN, Buffer.from([0])), tlv(Tag.INTEGER, Buffer.from([0])))), caProfile, root.issuer)).toEqual(["bc.not-der", "bc.mismatch"]);
  });

  it("crldp.url and cp.mismatch", () => {
    expect(codes(good, sign, { ...ca.issuer, crlDistributionPointUrl: "http://elsewhere/x.crl" })).toEqual(["crldp.url"]);
    const cp = sign.extensions.map((e) => (e.name === "certificatePolicies" ? { ...e, policies: [{ oid: "1.2.392.100495.1.5.1.2.0.1", cpsUri: "http://localhost:8080/cps/" }] } : e));
    expect(codes(good, { ...sign, extensions: cp })).toEqual(["cp.mismatch"]);
  });

  it("san.*: form, serialNumber, string types", () => {
    const san = (gn: Buffer) => replaceExt(OID.subjectAltName, extension(OID.subjectAltName, false, gn));
    expect(codes(san(sequence(tlv(0x82, Buffer.from("example.jp")))))).toEqual(["san.form"]);
    expect(codes(san(sequence(tlv(0xa4, encodeHpkiName({ cn: "神楽坂\u3000三十四", serialNumber: "Other1" })))))).toEqual(["san.serial-number"]);
    expect(codes(san(sequence(tlv(0xa4, sequence(C, atv(OID.commonName, tlv(Tag.BIT_STRING, Buffer.from([0]))), SN)))))).toContain("san.string-type");
  });

  it("hcrole.*: missing, malformed, not NFC", () => {
    const sda = (v: Buffer) => replaceExt(OID.subjectDirectoryAttributes, extension(OID.subjectDirectoryAttributes, false, v));
    expect(codes(withExtensions((e) => e.filter((x) => x.indexOf(oid(OID.subjectDirectoryAttributes)) !== 2)))).toEqual(["hcrole.missing"]);
    expect(codes(sda(sequence(sequence(oid("2.5.4.3"), set(utf8String("x"))))))).toEqual(["hcrole.missing"]);
    const printableRole = Buffer.from(encodeHcRoleExtension("Medical Doctor"));
    printableRole[printableRole.length - 16] = Tag.PrintableString; // codeDataFreeText as PrintableString
    expect(codes(sda(printableRole))).toEqual(["hcrole.missing"]);
    const twoRoles = sequence(...[encodeHcRoleExtension("Nurse"), encodeHcRoleExtension("Pharmacist")].map((r) => r.subarray(2)));
    expect(codes(sda(twoRoles))).toEqual(["hcrole.malformed"]);
    const nfd = Buffer.from(encodeHcRoleExtension("Medical Doctor").toString("hex").replace(Buffer.from("Medical Doctor").toString("hex"), Buffer.from("Me\u0301dical Doct").toString("hex")), "hex");
    expect(codes(sda(nfd))).toContain("hcrole.not-nfc");
  });

  it("aia.mismatch when the profile asks for an OCSP URL", () => {
    const withAia: CertificateProfile = { ...sign, extensions: [...sign.extensions, { name: "authorityInfoAccess", critical: false, ocspUrlTemplate: "http://localhost:8080/ocsp/{caName}" }] };
    const tbs = compileTbsTemplate(withAia, ca.issuer)({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(sign, now) });
    expect(codes(tbs, withAia)).toEqual([]);
    expect(codes(tbs, { ...withAia, extensions: [...sign.extensions, { name: "authorityInfoAccess", critical: false, ocspUrlTemplate: "http://other/ocsp" }] })).toEqual(["aia.mismatch"]);
  });

  it("*.malformed: wrong shapes of serial, validity, subject, RSA key, keyUsage, basicConstraints", () => {
    expect(codes(withField(1, octetString(Buffer.from([1]))))).toContain("serial.malformed");
    expect(codes(withField(4, sequence(tlv(Tag.UTCTime, Buffer.from("260531150000Z")))))).toContain("validity.malformed");
    expect(codes(withField(5, set(C, CN, SN)))).toContain("subject.malformed");
    expect(codes(withField(5, subjectRdns(C, set(sequence(oid(OID.commonName))), SN)))).toContain("subject.malformed");
    const badRsa = sequence(sequence(oid(OID.rsaEncryption), Buffer.from([5, 0])), tlv(Tag.BIT_STRING, Buffer.from([0]), octetString(Buffer.from([1]))));
    expect(codes(withField(6, badRsa))).toContain("spki.malformed");
    expect(codes(withField(6, sequence(sequence(oid(OID.rsaEncryption)))))).toContain("spki.malformed");
    expect(codes(replaceExt(OID.keyUsage, extension(OID.keyUsage, true, octetString(Buffer.from([0x40])))))).toEqual(["ku.malformed"]);
    const caTbs = childrenOf(ca.cert, readSingle(ca.cert))[0];
    const caTbsDer = ca.cert.subarray(caTbs.start, caTbs.end);
    const bcExtra = withExtensions((e) => e.map((x) => (x.indexOf(oid(OID.basicConstraints)) === 2 ? extension(OID.basicConstraints, true, sequence(derBoolean(true), tlv(Tag.INTEGER, Buffer.from([0])), derNull())) : x)), caTbsDer);
    expect(codes(bcExtra, loadProfile("issuing-ca"), root.issuer)).toEqual(["bc.malformed"]);
  });
});


describe("lint rule coverage", () => {
  it("san.* for the TLS server certificate (auth-org): dNSName required, valid host names only", () => {
    const org = loadProfile("auth-org");
    const orgSubject = { kind: "organization" as const, subscriberId: "ORG0001", name: { latin: "Example EMR" }, organization: { latin: "Example Hospital" }, director: false, dnsNames: ["emr.example.jp"] };
    const orgTbs = compileTbsTemplate(org, ca.issuer)({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: orgSubject }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(org, now) });
    expect(codes(orgTbs, org)).toEqual([]);
    const sanOid = oid(OID.subjectAltName);
    const withSan = (value: Buffer | undefined) =>
      withExtensions((e) => e.flatMap((x) => (x.indexOf(sanOid) === 2 ? (value ? [extension(OID.subjectAltName, false, value)] : []) : [x])), orgTbs);
    const dns = (h: string) => tlv(0x82, Buffer.from(h, "latin1"));
    // No SAN at all: the profile's required extension and the serverAuth rule both fire.
    expect(codes(withSan(undefined), org)).toEqual(["ext.missing", "san.server-auth-dns"]);
    // A SAN without a dNSName (an rfc822Name instead).
    expect(codes(withSan(sequence(tlv(0x81, Buffer.from("it@example.jp")))), org)).toEqual(["san.form", "san.dns-missing", "san.server-auth-dns"]);
    for (const bad of ["*.example.jp", "localhost", "emr_1.example.jp", "-emr.example.jp", "10.0.0.1", "EMR.example.jp", ""]) {
      expect(codes(withSan(sequence(dns(bad))), org), bad).toEqual(["san.dns-name"]);
    }
    expect(codes(withSan(sequence(dns("emr.example.jp"), dns("api.emr.example.jp"))), org)).toEqual([]);
  });

  it("url.not-public: in production every certificate URL (CRLDP, CPS) must name a public DNS host", () => {
    // The demo's {repoUrl} (http://localhost:8080) is fine outside production…
    expect(codes(good)).toEqual([]);
    // …and refused in production, for the CRL URL and the CPS URI alike.
    const strict = { ...ca.issuer, publicUrlsOnly: true };
    const v = lintTbsCertificate(good, sign, strict);
    expect(v.map((x) => x.code)).toEqual(["url.not-public", "url.not-public"]);
    expect(v[0].message).toContain("localhost");
    for (const repoUrl of ["http://127.0.0.1:8080", "http://[::1]", "http://203.0.113.7/repo", "http://repo"]) {
      const issuer = { ...ca.issuer, repoUrl, publicUrlsOnly: true };
      const tbs = compileTbsTemplate(sign, issuer)({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(sign, now) });
      expect(codes(tbs, sign, issuer), repoUrl).toContain("url.not-public");
    }
    const pub = { ...ca.issuer, repoUrl: "https://repo.hpki.example.jp/", publicUrlsOnly: true };
    const pubTbs = compileTbsTemplate(sign, pub)({ serialNumber: Buffer.from([1]), subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT }, subjectPublicKeyInfo: testKey("rsa2048").spki, validity: computeValidity(sign, now) });
    expect(codes(pubTbs, sign, pub)).toEqual([]);
    expect(pubTbs.includes(Buffer.from("https://repo.hpki.example.jp/crl/test-ca.crl"))).toBe(true);
    expect(pubTbs.includes(Buffer.from("https://repo.hpki.example.jp/cps/"))).toBe(true);
  });

  it("every violation code the lint can report is exercised in this file", () => {
    const src = ["lint.ts", "lint-name.ts", "lint-extensions.ts"].map((f) => readFileSync(new URL(`../../src/pki/${f}`, import.meta.url), "utf8")).join("\n");
    const test = readFileSync(new URL(import.meta.url), "utf8");
    const codesInSource = new Set([...src.matchAll(/report\("([a-z0-9.-]+)"/g)].map((m) => m[1]));
    // lint-name prefixes its codes with "subject" / "san": expand the template literals
    for (const m of src.matchAll(/report\(`\$\{prefix\}\.([a-z0-9-]+)`/g)) codesInSource.add(`subject.${m[1]}`);
    expect(codesInSource.size).toBeGreaterThan(40);
    const untested = [...codesInSource].filter((c) => !test.includes(`"${c}"`));
    expect(untested).toEqual([]);
  });
});
