import { describe, expect, it } from "vitest";
import { algorithmIdentifier, encodeCertificate } from "../../src/pki/certificate.ts";
import { childrenOf, readSingle } from "../../src/pki/der-cursor.ts";
import { lintTbsCertificate } from "../../src/pki/lint.ts";
import { OID } from "../../src/pki/oids.ts";
import type { CertificateProfile } from "../../src/pki/profile.ts";
import { newSerialNumber } from "../../src/pki/serial.ts";
import { parseSubscriberSubject, type SubscriberSubject } from "../../src/pki/subject.ts";
import { TbsError, buildTbsCertificate, compileTbsTemplate, subjectKeyIdentifier, type IssuerContext } from "../../src/pki/tbs.ts";
import { computeValidity } from "../../src/pki/validity.ts";
import {
  HC_ROLES,
  MEDIS_LIKE_SUBJECT,
  buildTestChain,
  loadProfile,
  openssl,
  parseCert,
  realCert,
  signTbs,
  tempDir,
  testKey,
  writePem,
} from "./helpers/pki-fixtures.ts";

/** The sign profile with one issuer's CPS URI, as MEDIS / JMA configure theirs. */
function signProfileWithCps(cpsUri: string): CertificateProfile {
  const p = loadProfile("sign");
  return {
    ...p,
    extensions: p.extensions.map((e) => (e.name === "certificatePolicies" ? { ...e, policies: [{ oid: e.policies[0].oid, cpsUri }] } : e)),
  };
}

/** IssuerContext for a real issuing CA certificate (its subject, SKI, the root DN, its serial). */
function realIssuer(caFile: string, caName: string, crlUrl: string): IssuerContext {
  const ca = parseCert(realCert(caFile));
  return {
    caName,
    name: ca.subject,
    keyIdentifier: ca.extensions.get(OID.subjectKeyIdentifier)!.value.subarray(2),
    authorityCertIssuer: ca.issuer,
    authorityCertSerialNumber: ca.serial,
    signatureAlgorithm: "sha256WithRSAEncryption",
    crlDistributionPointUrl: crlUrl,
  };
}

/** Rebuilds a real subscriber certificate's tbs from its own data through our builder. */
function rebuildReal(file: string, subject: SubscriberSubject, issuer: IssuerContext, cps: string) {
  const real = parseCert(realCert(file));
  const times = childrenOf(real.tbs, childrenOf(real.tbs, readSingle(real.tbs))[4]).map((t) => {
    const s = real.tbs.subarray(t.contentStart, t.end).toString("latin1");
    return new Date(`20${s.slice(0, 2)}-${s.slice(2, 4)}-${s.slice(4, 6)}T${s.slice(6, 8)}:${s.slice(8, 10)}:${s.slice(10, 12)}Z`);
  });
  const tbs = buildTbsCertificate({
    profile: signProfileWithCps(cps),
    issuer,
    serialNumber: real.serial,
    subject: { kind: "subscriber", subject },
    subjectPublicKeyInfo: real.spki,
    validity: { notBefore: times[0], notAfter: times[1] },
  });
  return { real, tbs, ours: parseCert(tbs, true) };
}

describe("buildTbsCertificate reproduces real HPKI signature certificates", () => {
  const medis = realIssuer("medis-sign-ca2", "medis", "http://cert.medis.or.jp/sign/crl-sign2.crl");
  const jma = realIssuer("jma-sign-ca-jv2", "jma", "http://crl.pki.med.or.jp/repository/crl/crl-sign2.crl");

  it("MEDIS 015e: KU, SDA (hcRole), CP, AKI, SKI, SAN, CRLDP identical, and the whole tbsCertificate byte for byte", () => {
    const { real, tbs, ours } = rebuildReal("medis-ee-sign-doctor-015e", MEDIS_LIKE_SUBJECT, medis, "http://www.medis.or.jp/8_hpki/");
    for (const id of [OID.keyUsage, OID.subjectDirectoryAttributes, OID.certificatePolicies, OID.authorityKeyIdentifier, OID.subjectKeyIdentifier, OID.subjectAltName, OID.cRLDistributionPoints]) {
      expect(ours.extensions.get(id)!.der.toString("hex"), id).toBe(real.extensions.get(id)!.der.toString("hex"));
    }
    expect(ours.extensionOrder).toEqual(real.extensionOrder);
    expect(tbs.toString("hex")).toBe(real.tbs.toString("hex"));
  });

  it("MEDIS 0164 (Pharmacist) and JMA 8090 (no O, no kanji SAN) byte for byte", () => {
    const pharm = parseSubscriberSubject(
      { hcRole: "Pharmacist", subscriberId: "Test317044", name: { latin: "Shiju Kagurazaka", kanji: "神楽坂 四十" }, organization: { latin: "MEDIS UNIVERSITY HOSPITAL", kanji: "医療情報大学病院" } },
      loadProfile("sign"),
      HC_ROLES,
    );
    const a = rebuildReal("medis-ee-sign-pharmacist-0164", pharm, medis, "http://www.medis.or.jp/8_hpki/");
    expect(a.tbs.equals(a.real.tbs)).toBe(true);
    const jmaDoctor = parseSubscriberSubject({ hcRole: "Medical Doctor", subscriberId: "TESTC20766", name: { latin: "JMACombi20766" } }, loadProfile("sign"), HC_ROLES);
    const b = rebuildReal("jma-ee-sign-doctor-8090", jmaDoctor, jma, "http://www.pki.med.or.jp/certpolicy/");
    expect(b.tbs.equals(b.real.tbs)).toBe(true);
  });
});

describe("subjectKeyIdentifier", () => {
  it.each(["mhlw-hpki-root-ca-v2", "medis-sign-ca2", "jma-sign-ca-jv2", "medis-ee-sign-doctor-015e", "jma-ee-sign-pharmacist-83e3"])(
    "equals the SKI of %s (RFC 5280 §4.2.1.2 method 1)",
    (file) => {
      const c = parseCert(realCert(file));
      expect(subjectKeyIdentifier(c.spki).equals(c.extensions.get(OID.subjectKeyIdentifier)!.value.subarray(2))).toBe(true);
    },
  );
});

describe("encodeCertificate / algorithmIdentifier", () => {
  it("uses NULL parameters for RSA and none for ECDSA", () => {
    expect(algorithmIdentifier("sha256WithRSAEncryption").toString("hex")).toBe("300d06092a864886f70d01010b0500");
    expect(algorithmIdentifier("ecdsa-with-SHA256").toString("hex")).toBe("300a06082a8648ce3d040302");
  });
  it("wraps tbs, algorithm and signature BIT STRING exactly as the real certificate", () => {
    const der = realCert("medis-ee-sign-doctor-015e");
    const top = readSingle(der);
    const [tbs, , sig] = childrenOf(der, top);
    const rebuilt = encodeCertificate(der.subarray(tbs.start, tbs.end), "sha256WithRSAEncryption", der.subarray(sig.contentStart + 1, sig.end));
    expect(rebuilt.equals(der)).toBe(true);
  });
});

describe("a root → issuing CA → EE chain from the five profiles passes openssl", () => {
  const subjects: Record<string, unknown> = {
    sign: { hcRole: "Medical Doctor", subscriberId: "HPKI0001", name: { latin: "Taro Yamada", kanji: "山田 太郎" }, organization: { latin: "Example Hospital", kanji: "例示病院" } },
    "auth-person": { hcRole: "Director of Hospital", subscriberId: "HPKI0002", name: { latin: "Hanako Sato", kanji: "佐藤　花子" }, organization: { latin: "Example Hospital" } },
    // CN a host name too, but not the SAN's: -verify_hostname must match the SAN and never the CN.
    "auth-org": { subscriberId: "ORG0001", name: { latin: "cn-only.example.jp" }, organization: { latin: "Example Hospital" }, dnsNames: ["EMR.Example.jp", "emr2.example.jp"] },
  };

  it.each([["rsa2048" as const], ["p256" as const]])("with %s CA keys: every certificate lints clean and verifies with -x509_strict", (caKey) => {
    const now = new Date();
    const { root, ca } = buildTestChain(now, caKey);
    const files: Record<string, Uint8Array> = { root: root.cert, ca: ca.cert };
    const tbsOf = (c: Buffer) => parseCert(c).tbs;
    expect(lintTbsCertificate(tbsOf(root.cert), loadProfile("root"), root.issuer)).toEqual([]);
    expect(lintTbsCertificate(tbsOf(ca.cert), loadProfile("issuing-ca"), root.issuer)).toEqual([]);
    for (const name of Object.keys(subjects)) {
      const profile = loadProfile(name);
      const tbs = compileTbsTemplate(profile, ca.issuer)({
        serialNumber: newSerialNumber(),
        subject: { kind: "subscriber", subject: parseSubscriberSubject(subjects[name], profile, HC_ROLES) },
        subjectPublicKeyInfo: testKey("rsa2048").spki,
        validity: computeValidity(profile, now, { notAfterCap: ca.notAfter }),
      });
      expect(lintTbsCertificate(tbs, profile, ca.issuer)).toEqual([]);
      files[name] = signTbs(tbs, ca.key);
    }
    const p = writePem(tempDir(), files);
    for (const name of Object.keys(subjects)) {
      const r = openssl(["verify", "-x509_strict", "-CAfile", p.root, "-untrusted", p.ca, p[name]]);
      expect(r.output, name).toContain(": OK");
      expect(r.status).toBe(0);
    }
    expect(openssl(["verify", "-x509_strict", "-CAfile", p.root, p.ca]).status).toBe(0);

    const text = (n: string) => openssl(["x509", "-in", p[n], "-noout", "-text", "-nameopt", "utf8,sep_comma_plus_space"]).output;
    const sign = text("sign");
    expect(sign).toMatch(/Key Usage: critical\s+Non Repudiation\n/);
    expect(sign).toMatch(/Certificate Policies: critical\s+Policy: 1\.2\.392\.100495\.1\.5\.1\.1\.0\.1/);
    expect(sign).toContain("Subject Directory Attributes");
    expect(sign).toContain("Medical Doctor");
    expect(sign).toContain("URI:http://localhost:8080/crl/test-ca.crl");
    expect(sign).toMatch(/DirName:\/C=JP\/O=hpki-ca test\/OU=Test Root\/CN=HPKI Test Root CA\s+serial:04/);
    expect(sign).toContain("Subject: C=JP, O=Example Hospital, CN=Taro Yamada, serialNumber=HPKI0001");
    expect(sign).not.toContain("Basic Constraints");
    expect(sign).not.toContain("Authority Information Access");
    const ap = text("auth-person");
    expect(ap).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(ap).toMatch(/Extended Key Usage: \s+TLS Web Client Authentication/);
    expect(ap).toContain("OU=Director");
    expect(ap).toContain("Director of Hospital");
    const org = text("auth-org");
    expect(org).toMatch(/Digital Signature, Key Encipherment/);
    expect(org).toContain("1.2.392.100495.1.5.1.3.0.1");
    expect(org).not.toContain("Subject Directory Attributes");
    expect(org).toMatch(/X509v3 Subject Alternative Name: \s+DNS:emr\.example\.jp, DNS:emr2\.example\.jp\n/);
    // RFC 6125 §6.4.4: with SAN dNSNames present OpenSSL matches them only (no CN fallback).
    const asServer = (host: string) => openssl(["verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname", host, "-CAfile", p.root, "-untrusted", p.ca, p["auth-org"]]);
    for (const host of ["emr.example.jp", "emr2.example.jp"]) expect(asServer(host).output, host).toContain(": OK");
    const byCn = asServer("cn-only.example.jp");
    expect(byCn.status).not.toBe(0);
    expect(byCn.output).toContain("hostname mismatch");
    const caText = text("ca");
    expect(caText).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(caText).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text("root")).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
  });
});

describe("compileTbsTemplate errors", () => {
  const { ca } = buildTestChain();
  const sign = loadProfile("sign");
  const v = {
    serialNumber: Buffer.from([1]),
    subject: { kind: "subscriber" as const, subject: MEDIS_LIKE_SUBJECT },
    subjectPublicKeyInfo: testKey("rsa2048").spki,
    validity: computeValidity(sign, new Date()),
  };

  it("equals buildTbsCertificate", () => {
    expect(compileTbsTemplate(sign, ca.issuer)(v).equals(buildTbsCertificate({ profile: sign, issuer: ca.issuer, ...v }))).toBe(true);
  });

  it("refuses a signature algorithm the profile does not allow", () => {
    expect(() => compileTbsTemplate({ ...sign, signatureAlgorithms: ["sha256WithRSAEncryption"] }, { ...ca.issuer, signatureAlgorithm: "ecdsa-with-SHA256" })).toThrow(TbsError);
  });

  it("needs the AKI issuer + serial for the full AKI form, and a CRL URL", () => {
    expect(() => compileTbsTemplate(sign, { ...ca.issuer, authorityCertIssuer: undefined })).toThrow(/authorityCertIssuer/);
    const noTemplate = { ...sign, extensions: sign.extensions.map((e) => (e.name === "cRLDistributionPoints" ? { name: e.name, critical: false } : e)) };
    expect(() => compileTbsTemplate(noTemplate, ca.issuer)).toThrow(/needs a URL/);
    expect(() => compileTbsTemplate(sign, { ...ca.issuer, crlDistributionPointUrl: "http://ä/x.crl" })).toThrow(/ASCII/);
  });

  it("issuer crlDistributionPointUrl overrides the profile template and {caName} is substituted", () => {
    const tbs = compileTbsTemplate(sign, { ...ca.issuer, crlDistributionPointUrl: "http://repo.example/{caName}/latest.crl" })(v);
    expect(tbs.toString("latin1")).toContain("http://repo.example/test-ca/latest.crl");
  });

  it("refuses the wrong subject kind, a zero or 21-octet serial, and a missing required hcRole", () => {
    const build = compileTbsTemplate(sign, ca.issuer);
    expect(() => build({ ...v, subject: { kind: "ca", name: { o: "x", cn: "y" } } })).toThrow(/expected a subscriber subject/);
    expect(() => build({ ...v, subject: { kind: "subscriber", subject: { ...MEDIS_LIKE_SUBJECT, kind: "organization" } } })).toThrow(/expected a person subscriber/);
    expect(() => build({ ...v, serialNumber: Buffer.from([0, 0]) })).toThrow(/nonzero/);
    expect(() => build({ ...v, serialNumber: Buffer.alloc(21, 0x7f) })).toThrow(/20 octets/);
    expect(() => build({ ...v, subject: { kind: "subscriber", subject: { ...MEDIS_LIKE_SUBJECT, hcRole: undefined } } })).toThrow(/hcRole is required/);
  });
});
