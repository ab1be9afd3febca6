/**
 * Path validation and the revocation index on the real HPKI certificates and CRLs
 * (test/fixtures/hpki-real), at the CRLs' own dates, plus hand-made failures of each check.
 */
import { execFileSync } from "node:child_process";
import fs, { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseCrl } from "../../src/pki/crl-parse.ts";
import { verifiedCrlRevocations } from "../../src/pki/crl-verify.ts";
import { OID } from "../../src/pki/oids.ts";
import { AUTH_PERSON_POLICY, SIGNATURE_POLICY, TrustStore, validateCertificatePath, type PathValidationPolicy } from "../../src/pki/path-validation.ts";
import { DigestListBuilder, RevocationIndex, serialDigest } from "../../src/pki/revocation-index.ts";
import { parseCertificate } from "../../src/pki/x509-parse.ts";
import { tempDir } from "../helpers/openssl.ts";
import { realCert } from "./helpers/real-certs.ts";

const CRL_DIR = fileURLToPath(new URL("../fixtures/hpki-real/crls/", import.meta.url));
const crl = (name: string) => readFileSync(`${CRL_DIR}${name}.crl`);

const root = realCert("mhlw-hpki-root-ca-v2");
const medisSign = realCert("medis-sign-ca2");
const jmaSign = realCert("jma-sign-ca-jv2");
const store = new TrustStore([root], [medisSign, jmaSign, realCert("medis-auth-ca2")]);
const at = new Date("2022-09-07T00:00:00Z");

function indexAt(...crls: string[]): RevocationIndex {
  const idx = new RevocationIndex();
  for (const name of crls) {
    const v = verifiedCrlRevocations(crl(name), store, name);
    idx.set(v.issuerKeyId, v.list);
  }
  return idx;
}
const idx = indexAt("medis-sign-ca2-2022-09-06", "jma-sign-ca-jv2-2022-09-05", "mhlw-root-v2-arl-2022-09-05");

const code = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
};

describe("validateCertificatePath on the real HPKI hierarchy", () => {
  it("accepts every real signature certificate valid at the CRL date, with its hcRole path", () => {
    for (const name of ["medis-ee-sign-doctor-015e", "medis-ee-sign-pharmacist-0164", "jma-ee-sign-doctor-8090", "jma-ee-sign-pharmacist-83e3"]) {
      const p = validateCertificatePath(realCert(name), store, SIGNATURE_POLICY, at, idx);
      expect(p.issuers.map((i) => i.anchor)).toEqual([false, true]);
      expect(p.issuers[1].name).toContain("MHLW HPKI Root CA V2");
    }
  });

  it("refuses an expired certificate, a wrong policy and a wrong key usage", () => {
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-006f"), store, SIGNATURE_POLICY, at, idx))).toBe("expired");
    // A signature certificate is not an authentication certificate.
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), store, AUTH_PERSON_POLICY, at, idx))).toBe("wrong-key-usage");
    const wrongPolicy: PathValidationPolicy = { ...SIGNATURE_POLICY, endEntityPolicy: OID.hpkiAuthPersonEePolicy };
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), store, wrongPolicy, at, idx))).toBe("wrong-policy");
    const wrongCaPolicy: PathValidationPolicy = { ...SIGNATURE_POLICY, issuingCaPolicy: OID.hpkiAuthPersonCaPolicy };
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), store, wrongCaPolicy, at, idx))).toBe("wrong-policy");
  });

  it("fails closed without a current CRL: missing issuer list, or past nextUpdate", () => {
    const noJma = indexAt("medis-sign-ca2-2022-09-06", "mhlw-root-v2-arl-2022-09-05");
    expect(code(() => validateCertificatePath(realCert("jma-ee-sign-doctor-8090"), store, SIGNATURE_POLICY, at, noJma))).toBe("revocation-unknown");
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), store, SIGNATURE_POLICY, new Date("2022-09-11T00:00:00Z"), idx))).toBe("revocation-unknown");
    // Without the ARL the issuing CA's own status is unknown.
    const noArl = indexAt("medis-sign-ca2-2022-09-06");
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), store, SIGNATURE_POLICY, at, noArl))).toBe("revocation-unknown");
  });

  it("answers revoked for every serial listed on a real CRL, good for the real certificates", () => {
    const jma = verifiedCrlRevocations(crl("jma-sign-ca-jv2-2022-09-29"), store, "jma");
    expect(jma.crlEntries).toBeGreaterThan(300);
    const r = new RevocationIndex();
    r.set(jma.issuerKeyId, jma.list);
    const when = new Date("2022-09-30T00:00:00Z");
    const listed: Uint8Array[] = [];
    parseCrl(crl("jma-sign-ca-jv2-2022-09-29")).forEachSerial((s) => listed.push(Buffer.from(s)));
    expect(listed).toHaveLength(jma.crlEntries);
    expect(listed.every((s) => r.status(jma.issuerKeyId, s, when) === "revoked")).toBe(true);
    expect(r.status(jma.issuerKeyId, parseCertificate(realCert("jma-ee-sign-doctor-8090")).serial, when)).toBe("good");
  });

  it("refuses an unconfigured CA, a tampered signature and a tampered CRL", () => {
    const onlyJma = new TrustStore([root], [jmaSign]);
    expect(code(() => validateCertificatePath(realCert("medis-ee-sign-doctor-015e"), onlyJma, SIGNATURE_POLICY, at, idx))).toBe("untrusted-issuer");
    const tampered = Buffer.from(realCert("medis-ee-sign-doctor-015e"));
    tampered[tampered.length - 5] ^= 1;
    expect(code(() => validateCertificatePath(tampered, store, SIGNATURE_POLICY, at, idx))).toBe("bad-signature");
    const badCrl = Buffer.from(crl("medis-sign-ca2-2022-09-06"));
    badCrl[badCrl.length - 3] ^= 1;
    expect(() => verifiedCrlRevocations(badCrl, store, "bad")).toThrow(/does not verify/);
    expect(code(() => validateCertificatePath(Buffer.from("junk"), store, SIGNATURE_POLICY, at, idx))).toBe("malformed-certificate");
  });

  it("remembers a verified end-entity signature only for the same bytes; a parsed certificate validates as its DER does", () => {
    const fresh = new TrustStore([root], [medisSign]);
    const good = realCert("medis-ee-sign-doctor-015e");
    expect(code(() => validateCertificatePath(good, fresh, SIGNATURE_POLICY, at, idx))).toBe("ok");
    // Remembered now: a copy with one bit of the signature changed is still verified, and refused.
    const tampered = Buffer.from(good);
    tampered[tampered.length - 5] ^= 1;
    expect(code(() => validateCertificatePath(tampered, fresh, SIGNATURE_POLICY, at, idx))).toBe("bad-signature");
    // The memo skips only the signature: validity and revocation are checked again at each call.
    expect(code(() => validateCertificatePath(good, fresh, SIGNATURE_POLICY, new Date("2022-09-11T00:00:00Z"), idx))).toBe("revocation-unknown");
    const parsed = parseCertificate(good);
    expect(validateCertificatePath(parsed, fresh, SIGNATURE_POLICY, at, idx).leaf).toBe(parsed);
    expect(code(() => validateCertificatePath(parseCertificate(realCert("medis-ee-sign-doctor-006f")), fresh, SIGNATURE_POLICY, at, idx))).toBe("expired");
  });
});

describe("RevocationIndex", () => {
  it("treats 0x00FF and 0xFF as one serial and answers by binary search", () => {
    const b = new DigestListBuilder(4);
    for (let i = 0; i < 1000; i++) b.add(Buffer.from([i >> 8, i & 0xff, 7]));
    const digests = b.finish();
    const r = new RevocationIndex();
    r.set("k", { digests, thisUpdate: new Date(0), goodUntil: new Date(8.64e15), source: "t" });
    expect(r.status("k", Buffer.from([0, 5, 7]), new Date())).toBe("revoked");
    expect(r.status("k", Buffer.from([5, 7]), new Date())).toBe("revoked");
    expect(r.status("k", Buffer.from([9, 9, 9, 9]), new Date())).toBe("good");
    expect(r.status("other", Buffer.from([5, 7]), new Date())).toBe("unknown");
    expect(serialDigest(Buffer.from([0, 0, 1]))).toBe(serialDigest(Buffer.from([1])));
    expect(r.footprint()).toEqual({ issuers: 1, entries: 1000, bytes: 8000 });
  });

  it("answers from the issuer's newest list current at the instant: a stale database read does not hide a current CRL", () => {
    const held = new DigestListBuilder();
    held.add(Buffer.from([0x42]));
    const r = new RevocationIndex();
    const day = 86_400_000;
    // The CRL (older, good for a week) lists 0x42 on hold; the database read (newer) has it released.
    r.set("k", { digests: held.finish(), thisUpdate: new Date(0), goodUntil: new Date(7 * day), source: "crl:http://repo/ca.crl" });
    r.set("k", { digests: new DigestListBuilder().finish(), thisUpdate: new Date(day), goodUntil: new Date(day + 120_000), source: "database" });
    expect(r.status("k", Buffer.from([0x42]), new Date(day + 60_000))).toBe("good"); // both current: the newer wins
    expect(r.status("k", Buffer.from([0x42]), new Date(2 * day))).toBe("revoked"); // database stale: the CRL answers
    expect(r.status("k", Buffer.from([0x42]), new Date(8 * day))).toBe("unknown"); // nothing current
    expect(r.get("k", "database")?.thisUpdate).toEqual(new Date(day));
    expect(r.footprint()).toEqual({ issuers: 1, entries: 1, bytes: 8 });
  });

  it("parses the strict fields path validation needs", () => {
    const c = parseCertificate(realCert("medis-ee-sign-doctor-015e"));
    expect(Buffer.from(c.serial).toString("hex")).toBe("015e");
    expect(c.extensions.get(OID.certificatePolicies)?.critical).toBe(true);
  });
});

describe("validateCertificatePath refusals on hand-made hierarchies (OpenSSL test CAs, software keys)", () => {
  const dir = tempDir("hpki-pv-");
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const der = (name: string) => execFileSync("openssl", ["x509", "-in", `${dir}/${name}.pem`, "-outform", "DER"]);
  /** A certificate `name` signed by `issuer` (or self-signed) with the extension lines `ext`. */
  const make = (name: string, subject: string, issuer: string | null, ext: string[]) => {
    fs.writeFileSync(`${dir}/${name}.ext`, `${ext.join("\n")}\n`);
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    const signer = issuer ? ["-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`] : ["-key", `${name}.key`];
    run("x509", "-req", "-in", `${name}.csr`, ...signer, "-out", `${name}.pem`, "-days", "2", "-sha256", "-extfile", `${name}.ext`);
    return der(name);
  };
  const caExt = (bc: string) => [`basicConstraints=critical,${bc}`, "keyUsage=critical,keyCertSign,cRLSign", `certificatePolicies=${OID.hpkiAuthPersonCaPolicy}`];
  const eeExt = (...more: string[]) => ["keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth", `certificatePolicies=critical,${OID.hpkiAuthPersonEePolicy}`, ...more];
  const root = make("root", "/C=JP/CN=Test Root", null, ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]);
  const ca = make("ca", "/C=JP/CN=Test Auth CA", "root", caExt("CA:TRUE,pathlen:0"));
  const notCa = make("notca", "/C=JP/CN=Not A CA", "root", caExt("CA:FALSE"));
  const sub = make("sub", "/C=JP/CN=Sub CA below pathlen 0", "ca", caExt("CA:TRUE"));
  const trust = new TrustStore([root], [ca, notCa, sub]);
  const everyoneGood = new RevocationIndex();
  for (const c of trust.all()) everyoneGood.set(c.keyId, { digests: new BigUint64Array(0), thisUpdate: new Date(0), goodUntil: new Date(8.64e15), source: "test" });
  // openssl x509 -req starts validity at the second it signs: validate just after it.
  const now = () => new Date(Date.now() + 2000);

  it("accepts a well-formed auth certificate (EC P-256 path)", () => {
    expect(code(() => validateCertificatePath(make("ok", "/C=JP/CN=Ok/serialNumber=T1", "ca", eeExt()), trust, AUTH_PERSON_POLICY, now(), everyoneGood))).toBe("ok");
  });
  it("refuses an issuer without cA, a path beyond pathLenConstraint and an unknown critical extension", () => {
    expect(code(() => validateCertificatePath(make("e1", "/C=JP/CN=E1/serialNumber=T2", "notca", eeExt()), trust, AUTH_PERSON_POLICY, now(), everyoneGood))).toBe("not-a-ca");
    expect(code(() => validateCertificatePath(make("e2", "/C=JP/CN=E2/serialNumber=T3", "sub", eeExt()), trust, AUTH_PERSON_POLICY, now(), everyoneGood))).toBe("path-too-long");
    expect(code(() => validateCertificatePath(make("e3", "/C=JP/CN=E3/serialNumber=T4", "ca", eeExt("1.2.3.4=critical,ASN1:NULL")), trust, AUTH_PERSON_POLICY, now(), everyoneGood))).toBe("unknown-critical-extension");
  });
  it("refuses an auth certificate without clientAuth in its extKeyUsage, and one not yet valid", () => {
    const serverOnly = make("e4", "/C=JP/CN=E4/serialNumber=T5", "ca", ["keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", `certificatePolicies=critical,${OID.hpkiAuthPersonEePolicy}`]);
    expect(code(() => validateCertificatePath(serverOnly, trust, AUTH_PERSON_POLICY, now(), everyoneGood))).toBe("wrong-key-usage");
    expect(code(() => validateCertificatePath(make("e5", "/C=JP/CN=E5/serialNumber=T6", "ca", eeExt()), trust, AUTH_PERSON_POLICY, new Date(Date.now() - 86400_000 * 3), everyoneGood))).toBe("not-yet-valid");
  });
});
