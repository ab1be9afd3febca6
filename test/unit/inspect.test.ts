import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CertificateDescribeError, describeCertificate, formatCertificateDescription } from "../../src/pki/inspect.ts";
import { parseHcRoleTable } from "../../src/pki/hcrole-table.ts";
import { realCert, realCerts } from "./helpers/real-certs.ts";

const table = parseHcRoleTable(readFileSync(new URL("../../policies/hcrole-codes.yaml", import.meta.url), "utf8"));
const openssl = (file: string, ...args: string[]) =>
  execFileSync("openssl", ["x509", "-inform", "der", "-in", file, "-noout", ...args], { encoding: "utf8" });
const utc = (s: string) => new Date(s.trim()).toISOString().replace(".000Z", "Z");

const EE_ROLES: Record<string, string> = {
  "medis-ee-sign-doctor-015e": "Medical Doctor",
  "medis-ee-sign-doctor-006f": "Medical Doctor",
  "medis-ee-sign-pharmacist-0164": "Pharmacist",
  "jma-ee-sign-doctor-8090": "Medical Doctor",
  "jma-ee-sign-pharmacist-83e3": "Pharmacist",
};
const SIGN_EE_POLICY = "1.2.392.100495.1.5.1.1.0.1";

describe("describeCertificate agrees with openssl on every real certificate", () => {
  for (const { name, der, file } of realCerts) {
    it(name, () => {
      const d = describeCertificate(der);
      const o = openssl(file, "-serial", "-fingerprint", "-sha256", "-startdate", "-enddate", "-ext", "subjectKeyIdentifier");
      expect(o).toContain(`serial=${d.serialNumber}\n`);
      expect(o).toContain(`sha256 Fingerprint=${d.fingerprintSha256}\n`);
      expect(utc(/notBefore=(.*)/.exec(o)![1])).toBe(d.validity.notBefore);
      expect(utc(/notAfter=(.*)/.exec(o)![1])).toBe(d.validity.notAfter);
      expect(o.replace(/[\s:]/g, "")).toContain(d.subjectKeyIdentifier);
      expect(d.version).toBe(3);
      expect(d.signatureAlgorithm).toEqual({ oid: "1.2.840.113549.1.1.11", name: "sha256WithRSAEncryption" });
      expect(d.publicKey).toEqual({ oid: "1.2.840.113549.1.1.1", algorithm: "RSA", bits: 2048, publicExponent: 65537 });
      expect(d.authorityKeyIdentifier?.issuer).toEqual([
        "C=JP, O=Ministry of Health\\, Labour and Welfare, OU=Director-General for Policy Planning and Evaluation, OU=MHLW HPKI Root CA V2",
      ]);
      // HPKI §2: SKI present; EE validity runs from 00:00:00 JST to 23:59:59 JST.
      const role = EE_ROLES[name];
      if (role) {
        expect(d.hcRole).toBe(role);
        expect(d.isCa).toBe(false);
        expect(d.basicConstraints).toBeNull();
        expect(d.keyUsage).toEqual({ critical: true, names: ["nonRepudiation"] });
        expect(d.certificatePolicies?.critical).toBe(true);
        expect(d.certificatePolicies?.policies.map((p) => p.oid)).toEqual([SIGN_EE_POLICY]);
        expect(d.validity.notBeforeJst).toMatch(/ 00:00:00 JST$/);
        expect(d.validity.notAfterJst).toMatch(/ 23:59:59 JST$/);
        expect(d.subscriberSerialNumber).toMatch(/^T/);
        expect(d.crlDistributionPoints?.uris).toHaveLength(1);
      } else {
        expect(d.hcRole).toBeNull();
        expect(d.hcRoles).toEqual([]);
        expect(d.isCa).toBe(true);
        expect(d.basicConstraints).toEqual({ critical: true, ca: true });
        expect(d.keyUsage).toEqual({ critical: true, names: ["keyCertSign", "cRLSign"] });
        expect(d.crlDistributionPoints?.uris[0]).toMatch(/^http:\/\/hpki\.mhlw\.go\.jp\/repository\/rlist\/[rs]arl2\.crl$/);
      }
      for (const lang of ["ja", "en"] as const) expect(formatCertificateDescription(d, lang, table)).toContain(d.fingerprintSha256);
    });
  }
});

describe("describeCertificate concrete values", () => {
  it("MEDIS doctor 015e", () => {
    const d = describeCertificate(realCert("medis-ee-sign-doctor-015e"));
    expect(d.serialNumber).toBe("015E");
    expect(d.issuer.text).toBe("C=JP, O=MEDIS, OU=MEDIS HPKI CA, CN=HPKI-01-MedisSignCA2-forNonRepudiation");
    expect(d.subject.text).toBe("C=JP, O=MEDIS UNIVERSITY HOSPITAL, CN=Sanjushi Kagurazaka, serialNumber=Test117120");
    expect(d.subject.rdns[2][0]).toEqual({ type: "2.5.4.3", shortName: "CN", value: "Sanjushi Kagurazaka", stringType: "UTF8String" });
    expect(d.subscriberSerialNumber).toBe("Test117120");
    expect(d.kanji).toMatchObject({ name: "神楽坂\u3000三十四", organization: "医療情報大学病院", serialNumber: "Test117120" });
    expect(d.hcRole).toBe("Medical Doctor");
    expect(d.hcRoles).toEqual([{ codingSchemeReference: "1.2.392.100495.1.6.1.1", codeDataFreeText: "Medical Doctor", freeTextType: "UTF8String" }]);
    expect(d.validity).toEqual({
      notBefore: "2022-02-06T15:00:00Z",
      notAfter: "2027-02-07T14:59:59Z",
      notBeforeJst: "2022-02-07 00:00:00 JST",
      notAfterJst: "2027-02-07 23:59:59 JST",
    });
    expect(d.certificatePolicies).toEqual({
      critical: true,
      policies: [{ oid: SIGN_EE_POLICY, label: "HPKI signature CP (subscriber certificate)", cpsUris: ["http://www.medis.or.jp/8_hpki/"] }],
    });
    expect(d.crlDistributionPoints).toEqual({ uris: ["http://cert.medis.or.jp/sign/crl-sign2.crl"], directoryNames: [] });
    expect(d.authorityKeyIdentifier).toMatchObject({ keyId: "9DD6135245EFBD5E7852C8588E78BC541E3F96E6", serialNumber: "04" });
    expect(d.subjectKeyIdentifier).toBe("C142183333F10225FA33072104D58AADC00BE145");
    expect(d.extKeyUsage).toBeNull();
    expect(d.extensions.map((e) => e.oid)).toEqual(["2.5.29.35", "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.31", "2.5.29.9", "2.5.29.32"]);
    expect(d.fingerprintSha256).toBe("36:A7:9E:A6:45:E4:31:34:E7:6E:7D:AC:DD:6D:7D:ED:FA:4E:A1:FD:2D:8F:E4:5D:F0:92:C8:23:A0:68:7E:64");
    expect(JSON.parse(JSON.stringify(d)).hcRole).toBe("Medical Doctor");
  });

  it("pharmacists (MEDIS 0164 with kanji SAN, JMA 83e3 without SAN or O)", () => {
    const m = describeCertificate(realCert("medis-ee-sign-pharmacist-0164"));
    expect(m.hcRole).toBe("Pharmacist");
    expect(m.kanji?.name).toBe("神楽坂\u3000四十");
    const j = describeCertificate(realCert("jma-ee-sign-pharmacist-83e3"));
    expect(j.hcRole).toBe("Pharmacist");
    expect(j.kanji).toBeNull();
    expect(j.serialNumber).toBe("83E3"); // DER 00 83 E3: sign octet dropped
    expect(j.subject.text).toBe("C=JP, CN=20024 JPATEST, serialNumber=T20024-jpa");
    expect(j.certificatePolicies?.policies[0].cpsUris).toEqual(["http://www.pki.med.or.jp/certpolicy/"]);
  });

  it("the MHLW root: self-issued CA with a kanji SAN and two CRL DPs", () => {
    const d = describeCertificate(realCert("mhlw-hpki-root-ca-v2"));
    expect(d.isCa).toBe(true);
    expect(d.selfIssued).toBe(true);
    expect(d.serialNumber).toBe("01");
    expect(d.certificatePolicies).toBeNull();
    expect(d.subscriberSerialNumber).toBeNull();
    expect(d.kanji?.directoryName.text).toBe("C=JP, O=厚生労働省, OU=政策統括官, OU=厚生労働省ＨＰＫＩルート認証局Ｖ２");
    expect(d.kanji?.name).toBeNull();
    expect(d.subjectKeyIdentifier).toBe(d.authorityKeyIdentifier?.keyId);
    expect(d.crlDistributionPoints?.directoryNames[0]).toMatch(/, CN=RARL$/);
    expect(d.validity.notAfterJst).toBe("2044-01-16 23:59:59 JST");
  });

  it("issuing CAs carry the CA policy OIDs", () => {
    expect(describeCertificate(realCert("medis-sign-ca2")).certificatePolicies?.policies[0]).toMatchObject({
      oid: "1.2.392.100495.1.5.1.1.3.1",
      cpsUris: ["http://hpki.mhlw.go.jp/repository/"],
    });
    expect(describeCertificate(realCert("medis-auth-ca2")).certificatePolicies?.policies[0].oid).toBe("1.2.392.100495.1.5.1.2.3.1");
    expect(describeCertificate(realCert("jma-sign-ca-jv2")).selfIssued).toBe(false);
  });

  it("rejects non-certificates and trailing bytes", () => {
    expect(() => describeCertificate(Buffer.from("not a cert"))).toThrow(CertificateDescribeError);
    expect(() => describeCertificate(Buffer.concat([realCert("medis-sign-ca2"), Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => describeCertificate(Buffer.from("3003020101", "hex"))).toThrow(/not an X.509 certificate/);
  });
});

describe("describeCertificate on a generated EC certificate", () => {
  it("reports P-256, ecdsa-with-SHA256, extKeyUsage names and pathLenConstraint", () => {
    const dir = mkdtempSync(join(tmpdir(), "hpki-inspect-"));
    try {
      const out = join(dir, "c.der");
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k.pem"),
        "-subj", "/C=JP/O=Test/CN=Leaf", "-days", "1", "-outform", "DER", "-out", out,
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "extendedKeyUsage=clientAuth,1.2.3.4",
      ], { stdio: "pipe" });
      const d = describeCertificate(readFileSync(out));
      expect(d.publicKey).toEqual({ oid: "1.2.840.10045.2.1", algorithm: "EC", namedCurve: "P-256", bits: 256 });
      expect(d.signatureAlgorithm.name).toBe("ecdsa-with-SHA256");
      expect(d.extKeyUsage).toEqual({ critical: false, oids: ["1.3.6.1.5.5.7.3.2", "1.2.3.4"], names: ["clientAuth", "1.2.3.4"] });
      expect(d.basicConstraints).toEqual({ critical: true, ca: true, pathLenConstraint: 0 });
      expect(d.hcRole).toBeNull();
      expect(d.kanji).toBeNull();
      expect(formatCertificateDescription(d, "en")).toMatch(/^Extended key usage\s+: clientAuth, 1\.2\.3\.4$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("formatCertificateDescription", () => {
  const d = describeCertificate(realCert("medis-ee-sign-doctor-015e"));

  it("renders Japanese labels and the Japanese role name from the table", () => {
    const s = formatCertificateDescription(d, "ja", table);
    expect(s).toMatch(/^発行者\s+: C=JP, O=MEDIS, OU=MEDIS HPKI CA, CN=HPKI-01-MedisSignCA2-forNonRepudiation$/m);
    expect(s).toMatch(/^主体者\s+: C=JP, O=MEDIS UNIVERSITY HOSPITAL/m);
    expect(s).toMatch(/^有効期間\s+: 2022-02-07 00:00:00 JST 〜 2027-02-07 23:59:59 JST$/m);
    expect(s).toMatch(/^資格 \(hcRole\)\s+: Medical Doctor \(医師\)$/m);
    expect(s).toMatch(/^氏名 \(漢字\)\s+: 神楽坂　三十四$/m);
    expect(s).toMatch(/^鍵用途\s+: nonRepudiation \(重要\)$/m);
    expect(s).toContain("1.2.392.100495.1.5.1.1.0.1 — HPKI signature CP (subscriber certificate) (重要)");
    expect(s).toContain("CPS: http://www.medis.or.jp/8_hpki/");
    expect(s).toContain("主体者鍵識別子");
  });

  it("renders English labels; without a table the role is the bare string", () => {
    const s = formatCertificateDescription(d, "en");
    expect(s).toMatch(/^Issuer\s+: C=JP, O=MEDIS/m);
    expect(s).toMatch(/^Role \(hcRole\)\s+: Medical Doctor$/m);
    expect(s).toMatch(/^Serial number\s+: 01:5E \(0x15E\)$/m);
    expect(s).toMatch(/^Basic constraints\s+: end entity$/m);
  });

  it("flags unverified table entries and shows CA basic constraints", () => {
    const fake = { ...d, hcRoles: [{ ...d.hcRoles[0], codeDataFreeText: "Dentist" }] };
    expect(formatCertificateDescription(fake, "ja", table)).toContain("Dentist (歯科医師, 英語名未確認)");
    expect(formatCertificateDescription(describeCertificate(realCert("mhlw-hpki-root-ca-v2")), "en")).toMatch(/^Basic constraints\s+: CA \(critical\)$/m);
  });
});
