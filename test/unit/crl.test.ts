/**
 * The streaming CRL encoder against real HPKI CRLs (re-encoded from their parsed fields, compared
 * byte for byte) and against OpenSSL (a CRL signed with a software key, read back as text).
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CRL_REASON_CODES, CrlEncoder, encodeTbsCertList, type CrlEntry, type CrlHeader, type CrlReason } from "../../src/pki/crl.ts";
import { time } from "../../src/pki/der.ts";
import { tempDir } from "../helpers/openssl.ts";
import { parseCrl } from "./helpers/crl-asn1.ts";

const CRL_DIR = fileURLToPath(new URL("../fixtures/hpki-real/crls/", import.meta.url));
const realCrls = fs.readdirSync(CRL_DIR).filter((f) => f.endsWith(".crl")).sort();
const reasonName = (code: number) => (Object.entries(CRL_REASON_CODES).find(([, c]) => c === code)![0]) as CrlReason;
const numericOrder = (a: Buffer, b: Buffer) => a.length - b.length || Buffer.compare(a, b);

function headerOf(der: Buffer): { header: CrlHeader; parsed: ReturnType<typeof parseCrl> } {
  const parsed = parseCrl(der);
  const idp = parsed.extensions.get("2.5.29.28");
  const header: CrlHeader = {
    signatureAlgorithm: "sha256WithRSAEncryption",
    issuer: parsed.issuer,
    authorityKeyIdentifier: parsed.extensions.get("2.5.29.35")!.value,
    crlNumber: parsed.crlNumber,
    thisUpdate: parsed.thisUpdate,
    nextUpdate: parsed.nextUpdate,
  };
  if (idp) {
    // The real ARL's IDP: fullName = one directoryName, onlyContainsCACerts.
    const name = idp.value.subarray(idp.value.indexOf(0xa4));
    const nameDer = name.subarray(name[1] & 0x80 ? 2 + (name[1] & 0x7f) : 2, name.length - 3);
    header.issuingDistributionPoint = { fullName: { directoryName: nameDer }, onlyContainsCACerts: true };
  }
  return { header, parsed };
}

const toEntries = (parsed: ReturnType<typeof parseCrl>): CrlEntry[] =>
  parsed.entries.map((e) => ({ serial: e.serial, revocationDate: e.revocationDate, reason: e.reasonCode === undefined ? undefined : reasonName(e.reasonCode) }))
    .sort((a, b) => numericOrder(Buffer.from(a.serial), Buffer.from(b.serial)));

describe("CRL encoder vs real HPKI CRLs", () => {
  for (const file of realCrls) {
    it(`re-encodes the entries of ${file} to the same revokedCertificates bytes (sorted by serial)`, async () => {
      const { header, parsed } = headerOf(fs.readFileSync(path.join(CRL_DIR, file)));
      const ours = parseCrl((await encodeTbsCertList(header, toEntries(parsed))).certificateList(Buffer.alloc(256)));
      const realSorted = [...parsed.entries].sort((a, b) => numericOrder(a.serial, b.serial));
      expect(ours.entries.length).toBe(parsed.entries.length);
      if (parsed.entries.length === 0) expect(ours.revokedCertificates).toBeNull();
      else expect(ours.revokedCertificates!.equals(Buffer.concat(realSorted.map((e) => e.der)))).toBe(true);
      // Every other field too: issuer, times, AKI, cRLNumber, IDP (critical on the ARL).
      expect(ours.issuer.equals(parsed.issuer)).toBe(true);
      expect([ours.thisUpdate, ours.nextUpdate, ours.crlNumber]).toEqual([parsed.thisUpdate, parsed.nextUpdate, parsed.crlNumber]);
      expect([...ours.extensions.entries()]).toEqual([...parsed.extensions.entries()]);
    });
  }

  it("reproduces whole TBSCertLists byte for byte where the real entries were already sorted", async () => {
    let same = 0;
    for (const file of realCrls) {
      const { header, parsed } = headerOf(fs.readFileSync(path.join(CRL_DIR, file)));
      const sorted = parsed.entries.every((e, i, a) => i === 0 || numericOrder(a[i - 1].serial, e.serial) < 0);
      if (!sorted) continue;
      const { tbs } = await encodeTbsCertList(header, toEntries(parsed));
      expect(tbs.equals(parsed.tbs)).toBe(true);
      same++;
    }
    expect(same).toBeGreaterThanOrEqual(3); // the ARL and two MEDIS CRLs
  });
});

describe("CRL encoder rules", () => {
  const header: CrlHeader = {
    signatureAlgorithm: "sha256WithRSAEncryption",
    issuer: Buffer.from("30123110300e06035504030c0754657374204341", "hex"),
    authorityKeyIdentifier: Buffer.from("30168014" + "11".repeat(20), "hex"),
    crlNumber: 7n,
    thisUpdate: new Date("2026-11-22T00:00:00Z"),
    nextUpdate: new Date("2026-11-26T00:00:00Z"),
  };
  const at = new Date("2026-11-21T10:20:30.999Z");

  it("refuses unsorted or duplicate serials", () => {
    const enc = new CrlEncoder(header);
    enc.add({ serial: Buffer.from([0x02, 0x00]), revocationDate: at });
    expect(() => enc.add({ serial: Buffer.from([0xff]), revocationDate: at })).toThrow(/sorted/);
    expect(() => enc.add({ serial: Buffer.from([0x00, 0x02, 0x00]), revocationDate: at })).toThrow(/sorted/);
    enc.add({ serial: Buffer.from([0x02, 0x01]), revocationDate: at });
    expect(enc.finish().entries).toBe(2);
  });

  it("orders by numeric value: a high-bit serial (0x00 pad) sorts after a shorter one", async () => {
    const { tbs } = await encodeTbsCertList(header, [
      { serial: Buffer.from([0x7f]), revocationDate: at },
      { serial: Buffer.from([0x80]), revocationDate: at },
      { serial: Buffer.from([0x01, 0x00]), revocationDate: at },
    ]);
    expect(tbs.includes(Buffer.from("02020080170d", "hex"))).toBe(true);
  });

  it("rejects serials over 20 octets, unknown reasons and nextUpdate before thisUpdate", () => {
    expect(() => new CrlEncoder(header).add({ serial: Buffer.alloc(21, 1), revocationDate: at })).toThrow(/1–20 octets/);
    expect(() => new CrlEncoder(header).add({ serial: Buffer.from([1]), revocationDate: at, reason: "bogus" as CrlReason })).toThrow(/CRLReason/);
    expect(() => new CrlEncoder({ ...header, nextUpdate: header.thisUpdate })).toThrow(/nextUpdate/);
  });

  it("writes revocation times like der.time() (UTCTime 1950–2049, GeneralizedTime outside) for 2,000 random instants", () => {
    for (let k = 0; k < 2000; k++) {
      const seconds = Math.floor(-2_208_988_800 + Math.random() * 7_258_118_400); // 1900 … 2130
      const enc = new CrlEncoder(header);
      enc.add({ serial: Buffer.from([1]), revocationDate: new Date(seconds * 1000 + 999) });
      expect(enc.finish().tbs.includes(Buffer.concat([Buffer.from("020101", "hex"), time(new Date(seconds * 1000))])), String(seconds)).toBe(true);
    }
  });

  it("leaves the encoder unchanged when an entry is refused", async () => {
    const enc = new CrlEncoder(header);
    enc.add({ serial: Buffer.from([5]), revocationDate: at });
    expect(() => enc.addEntry(Buffer.from([6]), 0, 7, -1)).toThrow(/CRLReason code 7/);
    expect(() => enc.add({ serial: Buffer.from([6]), revocationDate: new Date(NaN) })).toThrow(/revocationDate/);
    enc.add({ serial: Buffer.from([6]), revocationDate: at });
    const ref = await encodeTbsCertList(header, [{ serial: Buffer.from([5]), revocationDate: at }, { serial: Buffer.from([6]), revocationDate: at }]);
    expect(enc.finish().tbs.equals(ref.tbs)).toBe(true);
  });

  it("gives the same bytes whether or not the arena had to grow", async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => ({ serial: Buffer.from([1, i >> 8, i & 0xff]), revocationDate: at, reason: "superseded" as const }));
    const small = await encodeTbsCertList(header, entries, 1);
    const sized = await encodeTbsCertList(header, entries, 3000);
    expect(small.tbs.equals(sized.tbs)).toBe(true);
    expect(small.certificateList(Buffer.alloc(256, 7)).equals(sized.certificateList(Buffer.alloc(256, 7)))).toBe(true);
  });

  it("is read by OpenSSL: v2, reason codes (none for unspecified), invalidityDate, signature covers the TBS", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const reasons: CrlReason[] = ["keyCompromise", "unspecified", "certificateHold", "privilegeWithdrawn", "affiliationChanged"];
    const entries: CrlEntry[] = reasons.map((reason, i) => ({
      serial: Buffer.from([0x40 + i, 0xaa]),
      revocationDate: at,
      reason,
      invalidityDate: i === 0 ? new Date("2026-11-20T08:00:00Z") : undefined,
    }));
    const enc = await encodeTbsCertList({ ...header, crlNumber: 2n ** 70n }, entries);
    const der = enc.certificateList(nodeSign("sha256", enc.tbs, privateKey));
    // asn1js reads back exactly what went in.
    expect(parseCrl(der).entries.map((e) => [e.serial.toString("hex"), e.revocationDate, e.reasonCode, e.invalidityDate])).toEqual(
      entries.map((e) => [Buffer.from(e.serial).toString("hex"), new Date("2026-11-21T10:20:30Z"), e.reason === "unspecified" ? undefined : CRL_REASON_CODES[e.reason!], e.invalidityDate]),
    );
    const dir = tempDir("hpki-crl-unit-");
    try {
      fs.writeFileSync(path.join(dir, "c.crl"), der);
            const text = execFileSync("openssl", ["crl", "-inform", "der", "-in", path.join(dir, "c.crl"), "-noout", "-text"], { encoding: "utf8" });
      expect(text).toContain("Version 2 (0x1)");
      expect(text).toMatch(/CRL Number: \n\s+1180591620717411303424/);
      expect(text).toMatch(/Serial Number: 40AA\s+Revocation Date: Nov 21 10:20:30 2026 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code: \n\s+Key Compromise\s+Invalidity Date: \n\s+Nov 20 08:00:00 2026 GMT/);
      expect(text).toMatch(/Serial Number: 41AA\s+Revocation Date: [^\n]+\n\s+Serial Number: 42AA/);
      expect(text).toMatch(/Certificate Hold/);
      expect(text).toMatch(/Privilege Withdrawn/);
      expect(text).toMatch(/Affiliation Changed/);
      // The signature covers exactly the TBSCertList the CRL carries (OpenSSL's -verify runs in the integration tests).
      expect(nodeVerify("sha256", parseCrl(der).tbs, publicKey, der.subarray(der.length - 256))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
