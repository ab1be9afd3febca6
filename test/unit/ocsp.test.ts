/**
 * OCSP encoders (src/pki/ocsp-*.ts) against OpenSSL: requests made by `openssl ocsp` for the real
 * HPKI certificates are decoded (serial, CertID hashes, nonce); malformed requests are refused;
 * responses signed with a software key are read back by `openssl ocsp -respin -resp_text`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign as nodeSign } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { encodeCertificate } from "../../src/pki/certificate.ts";
import { derNull, explicit, octetString, oid, sequence, smallInteger } from "../../src/pki/der.ts";
import { encodeHpkiName } from "../../src/pki/name.ts";
import { parseOcspPolicy } from "../../src/pki/ocsp-policy.ts";
import { OcspRequestError, parseOcspRequest } from "../../src/pki/ocsp-request.ts";
import { buildResponderTbsCertificate } from "../../src/pki/ocsp-responder-certificate.ts";
import {
  certificateSubjectAndSpki,
  encodeCertId,
  encodeOcspResponse,
  encodeResponseData,
  issuerHashes,
  ocspErrorResponse,
  subjectPublicKeyBits,
} from "../../src/pki/ocsp-response.ts";
import { toPem } from "../../src/pki/pem.ts";
import { tempDir } from "../helpers/openssl.ts";

const CERT_DIR = fileURLToPath(new URL("../fixtures/hpki-real/certs/", import.meta.url));
const work = tempDir("hpki-ocsp-unit-");
const pemOf = (name: string) => {
  const f = path.join(work, `${name}.pem`);
  if (!fs.existsSync(f)) fs.writeFileSync(f, toPem(fs.readFileSync(path.join(CERT_DIR, `${name}.der`))));
  return f;
};
const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const request = (extra: string[], certs: string[]): Buffer => {
  const out = path.join(work, `req-${Math.random().toString(36).slice(2)}.der`);
  openssl("ocsp", "-issuer", pemOf("medis-sign-ca2"), ...extra, ...certs.flatMap((c) => ["-cert", pemOf(c)]), "-reqout", out);
  return fs.readFileSync(out);
};
const serialOf = (name: string) => openssl("x509", "-in", pemOf(name), "-noout", "-serial").trim().replace("serial=", "").replace(/^(00)+(?=..)/, "");

describe("parseOcspRequest", () => {
  const ca = fs.readFileSync(path.join(CERT_DIR, "medis-sign-ca2.der"));
  const { subject, spki } = certificateSubjectAndSpki(ca);

  it("decodes openssl's SHA-1 request with a nonce: serial, issuerNameHash, issuerKeyHash, nonce", () => {
    const der = request([], ["medis-ee-sign-doctor-015e"]);
    const req = parseOcspRequest(der);
    expect(req.requests).toHaveLength(1);
    const [r] = req.requests;
    expect(r.hashAlgorithm).toBe("sha1");
    expect(r.serialHex).toBe(serialOf("medis-ee-sign-doctor-015e"));
    const h = issuerHashes("sha1", subject, spki);
    expect(Buffer.from(r.issuerNameHash).equals(h.issuerNameHash)).toBe(true);
    expect(Buffer.from(r.issuerKeyHash).equals(h.issuerKeyHash)).toBe(true);
    // The key hash is over the BIT STRING value, which is also what the CA's SKI hashes (RFC 5280 method 1).
    expect(h.issuerKeyHash.equals(createHash("sha1").update(subjectPublicKeyBits(spki)).digest())).toBe(true);
    fs.writeFileSync(path.join(work, "n.der"), der);
    const text = openssl("ocsp", "-reqin", path.join(work, "n.der"), "-req_text");
    const nonceHex = /OCSP Nonce: \s*\n\s*([0-9A-F]+)/.exec(text)![1];
    expect(Buffer.from(req.nonce!).toString("hex").toUpperCase()).toBe(nonceHex);
  });

  it("decodes SHA-256 CertIDs, several CertIDs, and no nonce with -no_nonce", () => {
    const req = parseOcspRequest(request(["-sha256", "-no_nonce"], ["medis-ee-sign-doctor-015e", "medis-ee-sign-pharmacist-0164"]));
    expect(req.nonce).toBeNull();
    expect(req.requests.map((r) => r.hashAlgorithm)).toEqual(["sha256", "sha256"]);
    expect(req.requests.map((r) => r.serialHex)).toEqual([serialOf("medis-ee-sign-doctor-015e"), serialOf("medis-ee-sign-pharmacist-0164")]);
    expect(Buffer.from(req.requests[0].issuerKeyHash).equals(issuerHashes("sha256", subject, spki).issuerKeyHash)).toBe(true);
    // The CertID is kept as sent and re-encodes identically from its parts.
    const r = req.requests[0];
    expect(Buffer.from(r.der).equals(encodeCertId("sha256", r.issuerNameHash, r.issuerKeyHash, Buffer.from(r.serialHex!, "hex")))).toBe(true);
  });

  const certId = (alg = oid("1.3.14.3.2.26"), serial = Buffer.from([0x02, 0x01, 0x05])) =>
    sequence(sequence(alg, derNull()), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), serial);
  const wrap = (...tbs: Buffer[]) => sequence(sequence(...tbs));

  it("reports a negative serial as no serial (unknown) and an unsupported hash as no hash (unauthorized)", () => {
    expect(parseOcspRequest(wrap(sequence(sequence(certId(undefined, Buffer.from([0x02, 0x01, 0x85])))))).requests[0].serialHex).toBeNull();
    expect(parseOcspRequest(wrap(sequence(sequence(certId(undefined, Buffer.from([0x02, 0x02, 0x00, 0x85])))))).requests[0].serialHex).toBe("85");
    const md5 = sequence(sequence(sequence(oid("1.2.840.113549.2.5"), derNull()), octetString(Buffer.alloc(16)), octetString(Buffer.alloc(16)), smallInteger(5)));
    expect(parseOcspRequest(wrap(sequence(md5))).requests[0].hashAlgorithm).toBeNull();
  });

  it("refuses what is not a DER OCSPRequest", () => {
    const good = request(["-no_nonce"], ["medis-ee-sign-doctor-015e"]);
    const bad: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["text", Buffer.from("hello")],
      ["truncated", good.subarray(0, good.length - 1)],
      ["trailing byte", Buffer.concat([good, Buffer.from([0])])],
      ["empty requestList", wrap(sequence())],
      ["version v2", wrap(explicit(0, smallInteger(1)), sequence(sequence(certId())))],
      ["CertID with three fields", wrap(sequence(sequence(sequence(sequence(oid("1.3.14.3.2.26")), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20))))))],
      ["short SHA-1 hash", wrap(sequence(sequence(sequence(sequence(oid("1.3.14.3.2.26")), octetString(Buffer.alloc(19)), octetString(Buffer.alloc(20)), smallInteger(1)))))],
      ["33 CertIDs", wrap(sequence(...Array.from({ length: 33 }, () => sequence(certId()))))],
      ["indefinite length", Buffer.from([0x30, 0x80, 0x00, 0x00])],
    ];
    for (const [what, der] of bad) expect(() => parseOcspRequest(der), what).toThrow(OcspRequestError);
  });
});

describe("OCSPResponse encoding, judged by openssl ocsp -respin", () => {
  it("good, revoked with reason and time, unknown, nonce, responderID byKey, signature over tbsResponseData", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const spki = publicKey.export({ type: "spki", format: "der" });
    const keyHash = createHash("sha1").update(subjectPublicKeyBits(spki)).digest();
    const thisUpdate = new Date("2026-11-22T01:02:03Z");
    const nextUpdate = new Date("2026-11-23T01:02:03Z");
    const id = (n: number) => encodeCertId("sha1", Buffer.alloc(20, 1), Buffer.alloc(20, 2), Buffer.from([n]));
    const tbs = encodeResponseData({
      responderKeyHash: keyHash,
      producedAt: thisUpdate,
      nonce: octetString(Buffer.from("0123456789abcdef")),
      responses: [
        { certId: id(1), status: { kind: "good" }, thisUpdate, nextUpdate },
        { certId: id(2), status: { kind: "revoked", revocationTime: new Date("2026-11-20T10:00:00Z"), revocationReason: 1 }, thisUpdate, nextUpdate },
        { certId: id(3), status: { kind: "unknown" }, thisUpdate, nextUpdate },
      ],
    });
    const der = encodeOcspResponse(tbs, "sha256WithRSAEncryption", nodeSign("sha256", tbs, privateKey), []);
    const f = path.join(work, "resp.der");
    fs.writeFileSync(f, der);
    const text = openssl("ocsp", "-respin", f, "-resp_text", "-noverify");
    expect(text).toContain("OCSP Response Status: successful (0x0)");
    expect(text).toContain("Response Type: Basic OCSP Response");
    expect(text).toContain(`Responder Id: ${keyHash.toString("hex").toUpperCase()}`);
    expect(text).toContain("Produced At: Nov 22 01:02:03 2026 GMT");
    expect(text).toMatch(/Serial Number: 01\s+Cert Status: good\s+This Update: Nov 22 01:02:03 2026 GMT\s+Next Update: Nov 23 01:02:03 2026 GMT/);
    expect(text).toMatch(/Serial Number: 02\s+Cert Status: revoked\s+Revocation Time: Nov 20 10:00:00 2026 GMT\s+Revocation Reason: keyCompromise \(0x1\)/);
    expect(text).toMatch(/Serial Number: 03\s+Cert Status: unknown/);
    expect(text).toMatch(/OCSP Nonce: \s+0410303132333435363738396162636465/);
    expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
  });

  it("error responses are the bare status (RFC 6960 §4.2.1)", () => {
    expect(ocspErrorResponse("malformedRequest").toString("hex")).toBe("30030a0101");
    expect(ocspErrorResponse("unauthorized").toString("hex")).toBe("30030a0106");
    fs.writeFileSync(path.join(work, "err.der"), ocspErrorResponse("internalError"));
    // openssl exits 1 on an unsuccessful response; it still prints it.
    const r = spawnSync("openssl", ["ocsp", "-respin", path.join(work, "err.der"), "-resp_text", "-noverify"], { encoding: "utf8" });
    expect(`${r.stdout}${r.stderr}`).toContain("Responder Error: internalerror (2)");
  });
});

describe("responder certificate and OCSP policy", () => {
  it("carries OCSPSigning, ocsp-nocheck, digitalSignature, AKI/SKI and no CRLDP", () => {
    const ca = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const responder = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const request = {
      issuerName: encodeHpkiName({ o: "Test", cn: "Test CA" }),
      issuerKeyIdentifier: Buffer.alloc(20, 7),
      signatureAlgorithm: "sha256WithRSAEncryption" as const,
      serialNumber: Buffer.from([0x42]),
      subjectName: encodeHpkiName({ o: "Test", cn: "Test CA OCSP Responder" }),
      subjectPublicKeyInfo: responder.publicKey.export({ type: "spki", format: "der" }),
      notBefore: new Date("2026-11-22T00:00:00Z"),
      notAfter: new Date("2026-12-22T00:00:00Z"),
    };
    const tbs = buildResponderTbsCertificate(request);
    const f = path.join(work, "responder.pem");
    fs.writeFileSync(f, toPem(encodeCertificate(tbs, "sha256WithRSAEncryption", nodeSign("sha256", tbs, ca.privateKey))));
    const text = openssl("x509", "-in", f, "-noout", "-text");
    expect(text).toMatch(/X509v3 Extended Key Usage: \s+OCSP Signing/);
    expect(text).toContain("OCSP No Check");
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Authority Key Identifier: \s+(keyid:)?07:07/);
    expect(text).not.toContain("CRL Distribution");
    expect(() => buildResponderTbsCertificate({ ...request, notAfter: request.notBefore })).toThrow(RangeError);
  });

  it("policy: refuses renewal or refresh windows as long as the validity", () => {
    const base = "version: 1\nresponder: {keyAlgorithm: RSA-2048, validityDays: 30, renewBeforeDays: 7, organization: X}\nresponses: {validityHours: 24, refreshBeforeHours: 12}\nrepository: {crlMaxAgeSeconds: 300}\n";
    expect(parseOcspPolicy(base, "t.yaml").responses.validityHours).toBe(24);
    expect(() => parseOcspPolicy(base.replace("renewBeforeDays: 7", "renewBeforeDays: 30"), "t.yaml")).toThrow(/renewBeforeDays: must be less/);
    expect(() => parseOcspPolicy(base.replace("refreshBeforeHours: 12", "refreshBeforeHours: 24"), "t.yaml")).toThrow(/refreshBeforeHours: must be less/);
    expect(() => parseOcspPolicy(base.replace("organization: X", "organization: X, extra: 1"), "t.yaml")).toThrow(/t\.yaml: invalid OCSP policy/);
  });
});
