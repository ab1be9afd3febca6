/**
 * Shared fixtures for the profile-engine tests: real HPKI certificates, the five profiles, software
 * RSA/EC keys (node:crypto — unit tests only), a root → issuing CA → EE chain builder, openssl.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childrenOf, contentOf, decodeOid, readSingle, type Tlv } from "../../../src/pki/der-cursor.ts";
import { encodeCertificate, type SignatureAlgorithmName } from "../../../src/pki/certificate.ts";
import { encodeHpkiName } from "../../../src/pki/name.ts";
import { parseProfile, type CertificateProfile } from "../../../src/pki/profile.ts";
import type { HcRoleEntry, SubscriberSubject } from "../../../src/pki/subject.ts";
import { buildTbsCertificate, subjectKeyIdentifier, type IssuerContext, type TbsSubject } from "../../../src/pki/tbs.ts";
import { computeValidity } from "../../../src/pki/validity.ts";
import { toPem } from "../../../src/pki/pem.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/** A real HPKI certificate from test/fixtures/hpki-real/certs (file name without .der). */
export const realCert = (name: string): Buffer => readFileSync(join(ROOT, "test/fixtures/hpki-real/certs", `${name}.der`));

/** One of the five profiles in policies/profiles. */
export const loadProfile = (name: string): CertificateProfile =>
  parseProfile(readFileSync(join(ROOT, "policies/profiles", `${name}.yaml`), "utf8"), `${name}.yaml`);

/** The raw YAML text of a profile (for mutation tests). */
export const profileYaml = (name: string): string => readFileSync(join(ROOT, "policies/profiles", `${name}.yaml`), "utf8");

/** A small hcRole table (the real code table lives in policies/, owned elsewhere). */
export const HC_ROLES: ReadonlyMap<string, HcRoleEntry> = new Map([
  ["Medical Doctor", { kind: "national-qualification", status: "confirmed" }],
  ["Pharmacist", { kind: "national-qualification", status: "confirmed" }],
  ["Nurse", { kind: "national-qualification", status: "unverified" }],
  ["Director of Hospital", { kind: "manager", status: "unverified" }],
]);

/** The parts of a certificate we compare: tbs, its fields and extensions by OID. */
export interface ParsedCert {
  tbs: Buffer;
  fields: Tlv[];
  issuer: Buffer;
  subject: Buffer;
  serial: Buffer;
  spki: Buffer;
  extensions: Map<string, { critical: boolean; value: Buffer; der: Buffer }>;
  extensionOrder: string[];
}

/** Splits a certificate (or a bare tbsCertificate when `isTbs`) into its fields. */
export function parseCert(der: Uint8Array, isTbs = false): ParsedCert {
  const buf = Buffer.from(der);
  const tbsTlv = isTbs ? readSingle(buf) : childrenOf(buf, readSingle(buf))[0];
  const tbs = buf.subarray(tbsTlv.start, tbsTlv.end);
  const f = childrenOf(buf, tbsTlv);
  const at = (i: number) => buf.subarray(f[i].start, f[i].end);
  const extensions = new Map<string, { critical: boolean; value: Buffer; der: Buffer }>();
  const extensionOrder: string[] = [];
  const extField = f.find((t) => t.tag === 0xa3);
  if (extField) {
    for (const e of childrenOf(buf, childrenOf(buf, extField)[0])) {
      const p = childrenOf(buf, e);
      const id = decodeOid(contentOf(buf, p[0]));
      extensionOrder.push(id);
      extensions.set(id, {
        critical: p.length === 3,
        value: Buffer.from(contentOf(buf, p[p.length - 1])),
        der: Buffer.from(buf.subarray(e.start, e.end)),
      });
    }
  }
  return { tbs, fields: f, issuer: at(3), subject: at(5), serial: Buffer.from(contentOf(buf, f[1])), spki: at(6), extensions, extensionOrder };
}

/** A software key pair with its SPKI DER. RSA keys are cached per size (keygen is slow). */
export interface TestKey {
  privateKey: KeyObject;
  spki: Buffer;
  alg: SignatureAlgorithmName;
}
const keyCache = new Map<string, TestKey>();
export function testKey(kind: "rsa2048" | "rsa1024" | "rsa3072" | "p256" | "p384" = "rsa2048", fresh = false): TestKey {
  const hit = !fresh && keyCache.get(kind);
  if (hit) return hit;
  const kp =
    kind.startsWith("rsa")
      ? generateKeyPairSync("rsa", { modulusLength: Number(kind.slice(3)) })
      : generateKeyPairSync("ec", { namedCurve: kind === "p256" ? "P-256" : "P-384" });
  const key: TestKey = {
    privateKey: kp.privateKey,
    spki: kp.publicKey.export({ type: "spki", format: "der" }),
    alg: kind.startsWith("rsa") ? "sha256WithRSAEncryption" : "ecdsa-with-SHA256",
  };
  if (!fresh) keyCache.set(kind, key);
  return key;
}

/** Signs a tbs with a software key (PKCS#1 v1.5 / DER ECDSA) and assembles the certificate. */
export function signTbs(tbs: Uint8Array, key: TestKey): Buffer {
  return encodeCertificate(tbs, key.alg, nodeSign("sha256", tbs, key.privateKey));
}

/** A CA in a test chain: its certificate, key, and the IssuerContext for what it signs. */
export interface TestCa {
  cert: Buffer;
  key: TestKey;
  issuer: IssuerContext;
  notAfter: Date;
}

/** Subject like the MEDIS 015e test certificate. */
export const MEDIS_LIKE_SUBJECT: SubscriberSubject = {
  kind: "person",
  hcRole: "Medical Doctor",
  hcRoleEntry: { kind: "national-qualification", status: "confirmed" },
  subscriberId: "Test117120",
  name: { latin: "Sanjushi Kagurazaka", kanji: "神楽坂\u3000三十四" },
  organization: { latin: "MEDIS UNIVERSITY HOSPITAL", kanji: "医療情報大学病院" },
  director: false,
};

/**
 * Builds root → issuing CA with the root.yaml / issuing-ca.yaml profiles and software keys.
 * `caKey` picks the CA key type (both CAs use it).
 */
export function buildTestChain(now = new Date(), caKey: "rsa2048" | "p256" = "rsa2048"): { root: TestCa; ca: TestCa } {
  const rootProfile = loadProfile("root");
  const rootKey = testKey(caKey, true);
  const rootName = encodeHpkiName({ o: "hpki-ca test", ou: "Test Root", cn: "HPKI Test Root CA" });
  const rootSerial = Buffer.from([0x01]);
  const rootSki = subjectKeyIdentifier(rootKey.spki);
  const selfIssuer: IssuerContext = {
    caName: "test-root",
    name: rootName,
    keyIdentifier: rootSki,
    authorityCertIssuer: rootName,
    authorityCertSerialNumber: rootSerial,
    signatureAlgorithm: rootKey.alg,
  };
  const rootValidity = computeValidity(rootProfile, now);
  const rootTbs = buildTbsCertificate({
    profile: rootProfile,
    issuer: selfIssuer,
    serialNumber: rootSerial,
    subject: { kind: "ca", name: { o: "hpki-ca test", ou: "Test Root", cn: "HPKI Test Root CA" } },
    subjectPublicKeyInfo: rootKey.spki,
    validity: rootValidity,
  });
  const rootCert = signTbs(rootTbs, rootKey);

  const caProfile = loadProfile("issuing-ca");
  const caKeyPair = testKey(caKey, true);
  const caSubject: TbsSubject = { kind: "ca", name: { o: "hpki-ca test", ou: "Test CA", cn: "HPKI-01-TestCA-forNonRepudiation" } };
  const caName = encodeHpkiName(caSubject.name);
  const caSerial = Buffer.from([0x04]);
  const caValidity = computeValidity(caProfile, now, { notAfterCap: rootValidity.notAfter });
  const caTbs = buildTbsCertificate({
    profile: caProfile,
    issuer: selfIssuer,
    serialNumber: caSerial,
    subject: caSubject,
    subjectPublicKeyInfo: caKeyPair.spki,
    validity: caValidity,
  });
  const caCert = signTbs(caTbs, rootKey);
  return {
    root: { cert: rootCert, key: rootKey, issuer: selfIssuer, notAfter: rootValidity.notAfter },
    ca: {
      cert: caCert,
      key: caKeyPair,
      notAfter: caValidity.notAfter,
      issuer: {
        caName: "test-ca",
        name: caName,
        keyIdentifier: subjectKeyIdentifier(caKeyPair.spki),
        authorityCertIssuer: rootName,
        authorityCertSerialNumber: caSerial,
        signatureAlgorithm: caKeyPair.alg,
      },
    },
  };
}

/** A fresh temp directory. */
export const tempDir = (): string => mkdtempSync(join(tmpdir(), "hpki-pki-"));

/** Writes DER certificates as PEM files into `dir`; returns their paths. */
export function writePem(dir: string, files: Record<string, Uint8Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, der] of Object.entries(files)) {
    out[name] = join(dir, `${name}.pem`);
    writeFileSync(out[name], toPem(der));
  }
  return out;
}

/** Runs openssl; returns stdout+stderr and the exit status (never throws on a nonzero exit). */
export function openssl(args: string[]): { status: number; output: string } {
  try {
    const output = execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { status: 0, output };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? 1, output: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}
