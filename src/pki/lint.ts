/**
 * Pre-issuance lint (DESIGN §4 step 3; Boulder-style "lint before the real signature"): re-parses
 * the tbsCertificate DER the builder produced and checks it against the profile and the issuer,
 * independently of the builder's inputs. Nothing that fails here may be signed.
 * Walks the DER by offsets (der-cursor.ts) so a full lint costs tens of µs.
 */
import { createHash } from "node:crypto";
import { Tag } from "./der.ts";
import { algorithmIdentifier } from "./certificate.ts";
import { DerReadError, bytesEqual, childrenOf, contentOf, decodeOid, latin1Text, readDer, readSingle, type Tlv } from "./der-cursor.ts";
import { lintExtensions } from "./lint-extensions.ts";
import { lintName, type Report } from "./lint-name.ts";
import { OID } from "./oids.ts";
import type { CertificateProfile, KeyAlgorithmName } from "./profile.ts";
import type { IssuerContext } from "./tbs.ts";
import { JST_OFFSET_MS, addJstYears } from "./validity.ts";

/** One failed rule: a stable code (e.g. "ku.bits") and an English message. */
export interface LintViolation {
  code: string;
  message: string;
}

/** Thrown by assertLintClean; `violations` lists every failed rule. */
export class LintError extends Error {
  override name = "LintError";
  constructor(readonly violations: LintViolation[]) {
    super(`tbsCertificate fails the profile lint: ${violations.map((v) => `[${v.code}] ${v.message}`).join("; ")}`);
  }
}

const DAY_MS = 86_400_000;
const V3 = Buffer.from([2, 1, 2]);
const EE_MAX_YEARS = 5; // HPKI CP: subscriber certificates at most 5 years
const CURVES: Record<string, { name: KeyAlgorithmName; pointBytes: number }> = {
  [OID.secp256r1]: { name: "P-256", pointBytes: 32 },
  "1.3.132.0.34": { name: "P-384", pointBytes: 48 },
};

/**
 * Lints a tbsCertificate DER (RFC 5280 §4.1.2) against `profile` and the signing `issuer`.
 * Returns every violation found (empty = clean). Rule families (codes): der.* (not DER, minimal
 * lengths, trailing bytes), version.*, serial.*, signature.*, issuer.*, validity.*, subject.*,
 * spki.*, uniqueid.*, ext.* and the per-extension codes of lint-extensions.ts. Never throws on bad
 * input: malformed DER is reported as der.malformed.
 */
export function lintTbsCertificate(tbs: Uint8Array, profile: CertificateProfile, issuer: IssuerContext): LintViolation[] {
  const out: LintViolation[] = [];
  const report: Report = (code, message) => void out.push({ code, message });
  try {
    lintFields(tbs, readDer(tbs), profile, issuer, report);
  } catch (e) {
    if (!(e instanceof DerReadError)) throw e;
    report("der.malformed", `tbsCertificate is not valid DER: ${e.message}`);
  }
  return out;
}

/** lintTbsCertificate, throwing LintError when any rule fails. */
export function assertLintClean(tbs: Uint8Array, profile: CertificateProfile, issuer: IssuerContext): void {
  const v = lintTbsCertificate(tbs, profile, issuer);
  if (v.length) throw new LintError(v);
}

function lintFields(b: Uint8Array, top: Tlv, profile: CertificateProfile, issuer: IssuerContext, report: Report): void {
  if (top.tag !== Tag.SEQUENCE) return report("der.malformed", "tbsCertificate is not a SEQUENCE");
  const f = childrenOf(b, top);
  const version = f[0]?.tag === 0xa0 ? childrenOf(b, f[0]) : [];
  if (version.length !== 1 || !bytesEqual(b.subarray(version[0].start, version[0].end), V3)) {
    report("version.not-v3", "version must be v3 (INTEGER 2), explicitly encoded");
  }
  const rest = version.length ? f.slice(1) : f;
  if (rest.length < 6) return report("der.malformed", "tbsCertificate is missing fields");
  const [serial, sig, issuerName, validity, subject, spki, ...tail] = rest;
  lintSerial(b, serial, report);
  if (!profile.signatureAlgorithms.includes(issuer.signatureAlgorithm)) report("signature.not-allowed", `${issuer.signatureAlgorithm} is not allowed by profile ${profile.name}`);
  if (!bytesEqual(b.subarray(sig.start, sig.end), algorithmIdentifier(issuer.signatureAlgorithm))) {
    report("signature.mismatch", `signature AlgorithmIdentifier must be ${issuer.signatureAlgorithm} (the issuer's algorithm)`);
  }
  if (!bytesEqual(b.subarray(issuerName.start, issuerName.end), issuer.name)) report("issuer.mismatch", "issuer Name must equal the issuing CA's subject, byte for byte");
  lintValidity(b, validity, profile, report);
  const subjectValues = lintName(b, subject, "subject", profile.subject, report);
  if (subjectValues.get("OU") !== undefined && profile.kind === "end-entity") {
    if (subjectValues.get("OU") !== "Director") report("subject.director", 'subscriber OU may only be "Director" (manager roles, HPKI-PROFILE §6.5)');
    if (!subjectValues.has("O")) report("subject.director", "OU=Director requires O (the facility name)");
  }
  const expectedKeyId = lintSpki(b, spki, profile, report);
  let exts: Tlv | undefined;
  for (const t of tail) {
    if (t.tag === 0x81 || t.tag === 0x82) report("uniqueid.present", "issuerUniqueID / subjectUniqueID must not be used (RFC 5280 §4.1.2.8)");
    else if (t.tag === 0xa3 && !exts) {
      const inner = childrenOf(b, t);
      if (inner.length !== 1 || inner[0].tag !== Tag.SEQUENCE || inner[0].end === inner[0].contentStart) report("der.malformed", "extensions must be a non-empty SEQUENCE");
      else exts = inner[0];
    } else report("der.malformed", `unexpected field with tag 0x${t.tag.toString(16)} after subjectPublicKeyInfo`);
  }
  lintExtensions(b, exts, { profile, issuer, expectedKeyId, subjectValues }, report);
}

function lintSerial(b: Uint8Array, t: Tlv, report: Report): void {
  const c = contentOf(b, t);
  if (t.tag !== Tag.INTEGER || c.length === 0) return report("serial.malformed", "serialNumber is not an INTEGER");
  if (c.length > 1 && ((c[0] === 0 && !(c[1] & 0x80)) || (c[0] === 0xff && c[1] & 0x80))) report("serial.not-minimal", "serialNumber INTEGER is not minimally encoded (X.690 §8.3.2)");
  if (c[0] & 0x80) report("serial.negative", "serialNumber must be positive (RFC 5280 §4.1.2.2)");
  if (c.every((x) => x === 0)) report("serial.zero", "serialNumber must not be zero (RFC 5280 §4.1.2.2)");
  if (c.length > 20) report("serial.too-long", `serialNumber is ${c.length} octets; at most 20 (RFC 5280 §4.1.2.2)`);
}

function lintValidity(b: Uint8Array, t: Tlv, profile: CertificateProfile, report: Report): void {
  const times = t.tag === Tag.SEQUENCE ? childrenOf(b, t) : [];
  if (times.length !== 2) return report("validity.malformed", "validity must be SEQUENCE { notBefore, notAfter }");
  const [nb, na] = times.map((x) => decodeTime(b, x, report));
  if (!nb || !na) return;
  if (nb >= na) report("validity.order", "notBefore must be before notAfter");
  const max = addJstYears(nb, profile.validity.years);
  if (na > max) report("validity.too-long", `validity exceeds the profile maximum of ${profile.validity.years} years`);
  if (profile.kind === "end-entity" && na > addJstYears(nb, EE_MAX_YEARS)) report("validity.ee-over-5-years", "end-entity certificates may be valid at most 5 years (HPKI CP)");
  if (profile.validity.notBefore === "jst-start-of-day" && (nb.getTime() + JST_OFFSET_MS) % DAY_MS !== 0) {
    report("validity.not-jst-midnight", "notBefore must be 00:00:00 JST (15:00:00Z)");
  }
  if (profile.validity.notAfter === "jst-end-of-day" && (na.getTime() + JST_OFFSET_MS + 1000) % DAY_MS !== 0) report("validity.not-jst-end-of-day", "notAfter must be 23:59:59 JST (14:59:59Z)");
}

/** RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime YYYYMMDDHHMMSSZ from 2050. */
function decodeTime(b: Uint8Array, t: Tlv, report: Report): Date | undefined {
  const s = latin1Text(contentOf(b, t));
  const m = t.tag === Tag.UTCTime ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s) : t.tag === Tag.GeneralizedTime ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s) : null;
  if (!m) {
    report("validity.encoding", `time ${JSON.stringify(s)} is not UTCTime/GeneralizedTime in Zulu with seconds`);
    return undefined;
  }
  const n = m.slice(1).map(Number);
  const year = t.tag === Tag.UTCTime ? (n[0] < 50 ? 2000 + n[0] : 1900 + n[0]) : n[0];
  if ((t.tag === Tag.UTCTime) !== year < 2050) report("validity.encoding", `year ${year} must use ${year < 2050 ? "UTCTime" : "GeneralizedTime"} (RFC 5280 §4.1.2.5)`);
  const d = new Date(Date.UTC(year, n[1] - 1, n[2], n[3], n[4], n[5]));
  if (d.getUTCMonth() !== n[1] - 1 || d.getUTCDate() !== n[2] || n[3] > 23 || n[4] > 59 || n[5] > 59) {
    report("validity.encoding", `time ${s} is not a valid date`);
    return undefined;
  }
  return d;
}

/** Checks the key algorithm and size; returns the SHA-1 of the key bits (for the SKI check). */
function lintSpki(b: Uint8Array, t: Tlv, profile: CertificateProfile, report: Report): Uint8Array | undefined {
  const parts = t.tag === Tag.SEQUENCE ? childrenOf(b, t) : [];
  const alg = parts[0]?.tag === Tag.SEQUENCE ? childrenOf(b, parts[0]) : [];
  const key = parts[1];
  if (parts.length !== 2 || alg.length < 1 || alg[0].tag !== Tag.OID || key.tag !== Tag.BIT_STRING || key.end - key.contentStart < 2 || b[key.contentStart] !== 0) {
    report("spki.malformed", "subjectPublicKeyInfo is malformed");
    return undefined;
  }
  const bits = b.subarray(key.contentStart + 1, key.end);
  const algOid = decodeOid(contentOf(b, alg[0]));
  let name: string | undefined;
  if (algOid === OID.rsaEncryption) {
    if (alg.length !== 2 || alg[1].tag !== Tag.NULL || alg[1].end !== alg[1].contentStart) report("spki.rsa-params", "rsaEncryption parameters must be NULL (RFC 3279 §2.3.1)");
    name = rsaKeyName(bits, report);
  } else if (algOid === OID.idEcPublicKey) {
    const curve = alg.length === 2 && alg[1].tag === Tag.OID ? CURVES[decodeOid(contentOf(b, alg[1]))] : undefined;
    if (!curve) report("spki.ec-curve", "EC key must name a supported curve (P-256, P-384) as namedCurve");
    else {
      name = curve.name;
      const ok = (bits.length === 1 + 2 * curve.pointBytes && bits[0] === 4) || (bits.length === 1 + curve.pointBytes && (bits[0] === 2 || bits[0] === 3));
      if (!ok) report("spki.ec-point", `EC public key is not a ${curve.name} point`);
    }
  } else report("spki.algorithm", `public key algorithm ${algOid} is not supported`);
  if (name && !profile.keyAlgorithms.includes(name as KeyAlgorithmName)) report("spki.key-not-allowed", `${name} keys are not allowed by profile ${profile.name} (allowed: ${profile.keyAlgorithms.join(", ")})`);
  return createHash("sha1").update(bits).digest();
}

function rsaKeyName(bits: Uint8Array, report: Report): string | undefined {
  try {
    const top = readSingle(bits);
    const ints = childrenOf(bits, top);
    if (ints.length !== 2 || ints.some((i) => i.tag !== Tag.INTEGER)) throw new DerReadError("not RSAPublicKey", 0);
    let n = contentOf(bits, ints[0]);
    const e = contentOf(bits, ints[1]);
    if (n[0] & 0x80 || e[0] & 0x80) throw new DerReadError("negative RSA integer", 0);
    if (n[0] === 0) n = n.subarray(1);
    const modulusBits = (n.length - 1) * 8 + (32 - Math.clz32(n[0]));
    const eOdd = (e[e.length - 1] & 1) === 1;
    if (!eOdd || (e.length === 1 && e[0] < 3)) report("spki.rsa-exponent", "RSA public exponent must be odd and at least 3 (RFC 3279 §2.3.1)");
    return `RSA-${modulusBits}`;
  } catch (err) {
    if (!(err instanceof DerReadError)) throw err;
    report("spki.malformed", "RSA public key is not a DER RSAPublicKey");
    return undefined;
  }
}
