/**
 * The light read of a reader's certificate used when sealing (src/pki/recipient-certificate.ts)
 * gives the same issuer, serial, SPKI, keyUsage and subjectKeyIdentifier as the strict parser, on
 * the real HPKI certificates of test/fixtures/hpki-real, and refuses what is not a certificate.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readRecipientCertificate } from "../../src/pki/recipient-certificate.ts";
import { parseCertificate } from "../../src/pki/x509-parse.ts";

const DIR = path.resolve(import.meta.dirname, "../fixtures/hpki-real/certs");
const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".der"));
const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : undefined);

describe("readRecipientCertificate", () => {
  it.each(files)("%s: the fields parseCertificate reads", (file) => {
    const der = fs.readFileSync(path.join(DIR, file));
    const light = readRecipientCertificate(der);
    const full = parseCertificate(der);
    expect(hex(light.issuer)).toBe(hex(full.issuer));
    expect(hex(light.serial)).toBe(hex(full.serial));
    expect(hex(light.spki)).toBe(hex(full.spki));
    for (const oid of ["2.5.29.15", "2.5.29.14"]) {
      expect(hex(light.extensions.get(oid)?.value)).toBe(hex(full.extensions.get(oid)?.value));
      expect(light.extensions.get(oid)?.critical).toBe(full.extensions.get(oid)?.critical);
    }
  });

  it("refuses truncated input, trailing bytes and a non-certificate", () => {
    const der = fs.readFileSync(path.join(DIR, files[0]));
    expect(() => readRecipientCertificate(der.subarray(0, der.length - 1))).toThrow();
    expect(() => readRecipientCertificate(Buffer.concat([der, Buffer.from([0])]))).toThrow();
    expect(() => readRecipientCertificate(Buffer.from("300302010a", "hex"))).toThrow();
  });
});
