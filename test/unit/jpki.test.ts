/**
 * Pure parts of the patients' JPKI registration (issue 15 §8, src/pki/jpki.ts): the pseudonym is
 * keyed and per certificate (issuer + serial); the signed message binds box, challenge and the
 * encryption certificate; a patient's encryption certificate must be a current self-signed P-256
 * one. Certificates come from the project's test chain (software keys).
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkPatientEncryptionCertificate, jpkiPseudonym, PatientKeyError, patientChallengeMessage, patientEncryptionCertificate } from "../../src/pki/jpki.ts";
import { parseCertificate } from "../../src/pki/x509-parse.ts";
import { buildTestChain } from "./helpers/pki-fixtures.ts";

const chain = buildTestChain(new Date(), "p256");
const key = Buffer.alloc(32, 7);

async function selfSigned(curve: "P-256" | "P-384" = "P-256", notAfter = new Date(Date.now() + 86_400_000)) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: curve });
  return patientEncryptionCertificate({
    spki: publicKey.export({ format: "der", type: "spki" }), serial: Buffer.from([1, 2, 3]), notBefore: new Date(Date.now() - 60_000), notAfter,
    sign: (tbs) => sign("sha256", tbs, privateKey),
  });
}

describe("JPKI pseudonym", () => {
  it("is keyed, stable for one certificate, different for another serial or another key", () => {
    const root = parseCertificate(chain.root.cert);
    const ca = parseCertificate(chain.ca.cert);
    const p = jpkiPseudonym(key, ca);
    expect(p).toMatch(/^PT[0-9A-F]{24}$/);
    expect(jpkiPseudonym(key, parseCertificate(chain.ca.cert))).toBe(p);
    expect(jpkiPseudonym(key, root)).not.toBe(p);
    expect(jpkiPseudonym(Buffer.alloc(32, 8), ca)).not.toBe(p);
  });
});

describe("patient challenge message", () => {
  it("covers the box, the challenge and the encryption certificate", async () => {
    const cert = await selfSigned();
    const m = patientChallengeMessage({ box: "https://box/pobox", challenge: "c", encryptionCertificate: cert });
    expect(m.equals(patientChallengeMessage({ box: "https://other/pobox", challenge: "c", encryptionCertificate: cert }))).toBe(false);
    expect(m.equals(patientChallengeMessage({ box: "https://box/pobox", challenge: "d", encryptionCertificate: cert }))).toBe(false);
    expect(m.equals(patientChallengeMessage({ box: "https://box/pobox", challenge: "c", encryptionCertificate: await selfSigned() }))).toBe(false);
    expect(m.equals(patientChallengeMessage({ box: "https://box/pobox", challenge: "c" }))).toBe(false);
  });
});

describe("patient encryption certificate", () => {
  it("accepts a current self-signed P-256 certificate", async () => {
    expect(checkPatientEncryptionCertificate(await selfSigned(), new Date()).subject.length).toBeGreaterThan(0);
  });
  it("refuses another curve, a CA-signed certificate, an expired one, a tampered signature", async () => {
    expect(() => checkPatientEncryptionCertificate(Buffer.from([0x30, 0x00]), new Date())).toThrow(PatientKeyError);
    await expect((async () => checkPatientEncryptionCertificate(await selfSigned("P-384"), new Date()))()).rejects.toThrow(/P-256/);
    const expired = await selfSigned("P-256", new Date(Date.now() - 1000));
    expect(() => checkPatientEncryptionCertificate(expired, new Date())).toThrow(/not valid now/);
    const cert = await selfSigned();
    cert[cert.length - 5] ^= 1;
    expect(() => checkPatientEncryptionCertificate(cert, new Date())).toThrow(PatientKeyError);
    // Issued by a CA (not self-signed), or a CA certificate itself: refused.
    expect(() => checkPatientEncryptionCertificate(chain.ca.cert, new Date())).toThrow(/not self-signed/);
    expect(() => checkPatientEncryptionCertificate(chain.root.cert, new Date())).toThrow(/CA certificate/);
  });
});
