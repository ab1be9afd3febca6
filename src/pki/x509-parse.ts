/**
 * Fast strict parse of an X.509 v3 certificate (RFC 5280 §4.1) and of the extensions a path
 * validator needs (§4.2.1.1 AKI, §4.2.1.2 SKI, §4.2.1.3 keyUsage, §4.2.1.4 certificatePolicies,
 * §4.2.1.9 basicConstraints, §4.2.1.12 extKeyUsage), on the der-cursor reader: offsets into the
 * caller's bytes, no asn1js objects, so a login verification stays in the microseconds.
 * Pure: bytes in, values out. Throws CertificateParseError on anything that is not strict DER or
 * not a certificate.
 */
import {
  bytesOf,
  children,
  contentOf,
  isContext,
  isUniversal,
  latin1Text,
  oidOf,
  parseDer,
  type Fail,
  type Tlv,
} from "./der-cursor.ts";
import { OID } from "./oids.ts";
import { KEY_USAGE_BITS, type KeyUsageBit } from "./profile.ts";

/** Thrown when bytes are not a strict-DER X.509 certificate (or CRL, in crl-parse.ts). */
export class CertificateParseError extends Error {
  override name = "CertificateParseError";
}

const fail: Fail = (message) => {
  throw new CertificateParseError(message);
};

/** One extension (RFC 5280 §4.1.2.9); `value` is the extnValue content (a view). */
export interface ParsedExtension {
  critical: boolean;
  value: Uint8Array;
}

/** What path validation reads from a certificate. Byte fields are views into `der`. */
export interface ParsedCertificate {
  der: Uint8Array;
  /** tbsCertificate, whole TLV: the signed bytes. */
  tbs: Uint8Array;
  version: number;
  /** Serial magnitude (DER INTEGER content without a leading 0x00 sign octet). */
  serial: Uint8Array;
  /** Outer signatureAlgorithm OID; must equal the tbs `signature` field (§4.1.1.2). */
  signatureAlgorithm: string;
  /** AlgorithmIdentifier parameters TLV (RSA: NULL), or undefined when absent. */
  signatureParameters?: Uint8Array;
  /** signatureValue BIT STRING content without its unused-bits octet. */
  signature: Uint8Array;
  /** Issuer and subject Name DER (whole TLVs). */
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER (whole TLV). */
  spki: Uint8Array;
  extensions: Map<string, ParsedExtension>;
}

/** Parses a DER certificate; see the module comment. @throws CertificateParseError. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const { tbsT, alg, sigT, fields: tbs } = splitSignedObject(der, "certificate", "tbsCertificate");
  let i = 0;
  let version = 1;
  if (tbs[0] && isContext(tbs[0], 0, true)) {
    const v = children(der, tbs[0], "version", fail);
    if (v.length !== 1 || v[0].tag !== 0x02) fail("version: expected [0] EXPLICIT INTEGER");
    version = Number(readSmallInteger(der, v[0], "version")) + 1;
    i = 1;
  }
  if (version !== 3) fail(`certificate: version ${version} is not supported (X.509 v3 only)`);
  const field = (name: string): Tlv => tbs[i++] ?? fail(`tbsCertificate: ${name} missing`);
  const serialT = field("serialNumber");
  if (serialT.tag !== 0x02) fail("serialNumber: expected an INTEGER");
  const innerAlg = algorithmIdentifier(der, field("signature"), "signature");
  if (!equalBytes(bytesOf(der, innerAlg.tlv), bytesOf(der, alg.tlv))) fail("certificate: signature and signatureAlgorithm differ (RFC 5280 §4.1.1.2)");
  const issuerT = field("issuer");
  const validityT = field("validity");
  const subjectT = field("subject");
  const spkiT = field("subjectPublicKeyInfo");
  if (!isUniversal(issuerT, 16) || !isUniversal(subjectT, 16)) fail("issuer/subject: expected a Name (SEQUENCE)");
  if (!isUniversal(spkiT, 16)) fail("subjectPublicKeyInfo: expected a SEQUENCE");
  const validity = isUniversal(validityT, 16) ? children(der, validityT, "validity", fail) : fail("validity: expected a SEQUENCE");
  if (validity.length !== 2) fail("validity: expected { notBefore, notAfter }");
  const extensions = new Map<string, ParsedExtension>();
  for (; i < tbs.length; i++) {
    const t = tbs[i];
    if (isContext(t, 1, false) || isContext(t, 2, false)) continue; // unique IDs: ignored
    if (!isContext(t, 3, true)) fail("tbsCertificate: unexpected field");
    const seq = children(der, t, "extensions", fail);
    if (seq.length !== 1 || !isUniversal(seq[0], 16)) fail("extensions: expected [3] EXPLICIT SEQUENCE");
    for (const e of children(der, seq[0], "extensions", fail)) {
      const f = isUniversal(e, 16) ? children(der, e, "Extension", fail) : fail("Extension: expected a SEQUENCE");
      const id = f[0] ? oidOf(der, f[0], "extnID", fail) : fail("Extension: empty");
      let critical = false;
      let valueT = f[1];
      if (f.length === 3) {
        if (f[1].tag !== 0x01 || f[1].end - f[1].contentStart !== 1) fail("Extension.critical: expected a BOOLEAN");
        critical = der[f[1].contentStart] !== 0;
        if (!critical) fail("Extension.critical: FALSE must be omitted in DER (X.690 §11.5)");
        valueT = f[2];
      } else if (f.length !== 2) fail("Extension: expected { extnID, critical?, extnValue }");
      if (valueT.tag !== 0x04) fail("extnValue: expected an OCTET STRING");
      if (extensions.has(id)) fail(`extension ${id} appears twice (RFC 5280 §4.2)`);
      extensions.set(id, { critical, value: contentOf(der, valueT) });
    }
  }
  return {
    der,
    tbs: bytesOf(der, tbsT),
    version,
    serial: integerMagnitude(der, serialT),
    signatureAlgorithm: alg.oid,
    signatureParameters: alg.parameters,
    signature: bitStringContent(der, sigT, "signatureValue"),
    issuer: bytesOf(der, issuerT),
    subject: bytesOf(der, subjectT),
    notBefore: readTime(der, validity[0], "notBefore"),
    notAfter: readTime(der, validity[1], "notAfter"),
    spki: bytesOf(der, spkiT),
    extensions,
  };
}

/**
 * The outer SIGNED{} shape shared by certificates and CRLs (RFC 5280 §4.1.1, §5.1.1):
 * SEQUENCE { tbs SEQUENCE, signatureAlgorithm, signatureValue BIT STRING }. Returns the TLVs and
 * the tbs's fields. @throws CertificateParseError.
 */
export function splitSignedObject(der: Uint8Array, what: string, tbsName: string): { tbsT: Tlv; alg: ReturnType<typeof algorithmIdentifier>; sigT: Tlv; fields: Tlv[] } {
  const top = parseDer(der, what, fail);
  const parts = isUniversal(top, 16) ? children(der, top, what, fail) : fail(`${what}: expected a SEQUENCE`);
  if (parts.length !== 3) fail(`${what}: expected { ${tbsName}, signatureAlgorithm, signatureValue }`);
  const [tbsT, algT, sigT] = parts;
  const alg = algorithmIdentifier(der, algT, "signatureAlgorithm");
  const fields = isUniversal(tbsT, 16) ? children(der, tbsT, tbsName, fail) : fail(`${tbsName}: expected a SEQUENCE`);
  return { tbsT, alg, sigT, fields };
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } (RFC 5280 §4.1.1.2). */
export function algorithmIdentifier(buf: Uint8Array, t: Tlv, what: string): { oid: string; parameters?: Uint8Array; tlv: Tlv } {
  const f = isUniversal(t, 16) ? children(buf, t, what, fail) : fail(`${what}: expected a SEQUENCE`);
  if (f.length < 1 || f.length > 2) fail(`${what}: expected { algorithm, parameters? }`);
  return { oid: oidOf(buf, f[0], what, fail), parameters: f[1] ? bytesOf(buf, f[1]) : undefined, tlv: t };
}

/** BIT STRING content without the unused-bits octet; refuses unused bits (signatures are octets). */
export function bitStringContent(buf: Uint8Array, t: Tlv, what: string): Uint8Array {
  if (t.tag !== 0x03) fail(`${what}: expected a BIT STRING`);
  const c = contentOf(buf, t);
  if (c.length < 1 || c[0] !== 0) fail(`${what}: BIT STRING with unused bits`);
  return c.subarray(1);
}

/** Positive INTEGER → magnitude without the 0x00 sign octet; refuses negative values. */
export function integerMagnitude(buf: Uint8Array, t: Tlv): Uint8Array {
  const c = contentOf(buf, t);
  if (c.length === 0) fail("INTEGER: empty");
  if (c.length > 1 && ((c[0] === 0 && !(c[1] & 0x80)) || (c[0] === 0xff && c[1] & 0x80))) fail("INTEGER: not minimally encoded");
  if (c[0] & 0x80) fail("INTEGER: negative serial number");
  return c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
}

function readSmallInteger(buf: Uint8Array, t: Tlv, what: string): number {
  const c = contentOf(buf, t);
  if (c.length < 1 || c.length > 4 || c[0] & 0x80) fail(`${what}: expected a small non-negative INTEGER`);
  return c.reduce((n, b) => n * 256 + b, 0);
}

/**
 * Time ::= CHOICE { UTCTime, GeneralizedTime } in the RFC 5280 §4.1.2.5 profile: seconds present,
 * "Z", no fraction; UTCTime years 50–99 are 19xx.
 */
export function readTime(buf: Uint8Array, t: Tlv, what: string): Date {
  const s = latin1Text(contentOf(buf, t));
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
    year += year < 50 ? 2000 : 1900;
  } else if (t.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
  } else return fail(`${what}: not a UTCTime/GeneralizedTime of the RFC 5280 §4.1.2.5 form`);
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number);
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) fail(`${what}: invalid date`);
  return back;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

// ---- extension decoders (extnValue content → value) ----

/** basicConstraints (RFC 5280 §4.2.1.9): { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }. */
export function decodeBasicConstraints(v: Uint8Array): { ca: boolean; pathLen?: number } {
  const top = parseDer(v, "basicConstraints", fail);
  const f = isUniversal(top, 16) ? children(v, top, "basicConstraints", fail) : fail("basicConstraints: expected a SEQUENCE");
  let i = 0;
  let ca = false;
  if (f[i]?.tag === 0x01) {
    ca = v[f[i].contentStart] !== 0;
    i++;
  }
  let pathLen: number | undefined;
  if (f[i]?.tag === 0x02) pathLen = readSmallInteger(v, f[i++], "pathLenConstraint");
  if (i !== f.length) fail("basicConstraints: unexpected field");
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

/** keyUsage (RFC 5280 §4.2.1.3) → the set bit names. */
export function decodeKeyUsage(v: Uint8Array): Set<KeyUsageBit> {
  const top = parseDer(v, "keyUsage", fail);
  if (top.tag !== 0x03) fail("keyUsage: expected a BIT STRING");
  const c = contentOf(v, top);
  if (c.length < 1 || c[0] > 7) fail("keyUsage: malformed BIT STRING");
  const out = new Set<KeyUsageBit>();
  KEY_USAGE_BITS.forEach((name, bit) => {
    const byte = 1 + (bit >> 3);
    if (byte < c.length && c[byte] & (0x80 >> (bit & 7))) out.add(name);
  });
  return out;
}

/** certificatePolicies (RFC 5280 §4.2.1.4) → the policyIdentifier OIDs, in order. */
export function decodeCertificatePolicies(v: Uint8Array): string[] {
  const top = parseDer(v, "certificatePolicies", fail);
  const infos = isUniversal(top, 16) ? children(v, top, "certificatePolicies", fail) : fail("certificatePolicies: expected a SEQUENCE");
  if (infos.length === 0) fail("certificatePolicies: empty");
  return infos.map((pi) => {
    const f = isUniversal(pi, 16) ? children(v, pi, "PolicyInformation", fail) : fail("PolicyInformation: expected a SEQUENCE");
    return f[0] ? oidOf(v, f[0], "policyIdentifier", fail) : fail("PolicyInformation: empty");
  });
}

/** extKeyUsage (RFC 5280 §4.2.1.12) → KeyPurposeId OIDs. */
export function decodeExtKeyUsage(v: Uint8Array): string[] {
  const top = parseDer(v, "extKeyUsage", fail);
  const ids = isUniversal(top, 16) ? children(v, top, "extKeyUsage", fail) : fail("extKeyUsage: expected a SEQUENCE");
  return ids.map((t) => oidOf(v, t, "KeyPurposeId", fail));
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2) → the key identifier octets. */
export function decodeSubjectKeyIdentifier(v: Uint8Array): Uint8Array {
  const top = parseDer(v, "subjectKeyIdentifier", fail);
  if (top.tag !== 0x04) fail("subjectKeyIdentifier: expected an OCTET STRING");
  return contentOf(v, top);
}

/** authorityKeyIdentifier (RFC 5280 §4.2.1.1) → its keyIdentifier [0], when present. */
export function decodeAuthorityKeyId(v: Uint8Array): Uint8Array | undefined {
  const top = parseDer(v, "authorityKeyIdentifier", fail);
  const f = isUniversal(top, 16) ? children(v, top, "authorityKeyIdentifier", fail) : fail("authorityKeyIdentifier: expected a SEQUENCE");
  const kid = f.find((t) => t.tag === 0x80);
  return kid ? contentOf(v, kid) : undefined;
}

/**
 * authorityInfoAccess (RFC 5280 §4.2.2.1) → the id-ad-ocsp access locations that are
 * uniformResourceIdentifier ([6] IA5String), in order; other methods and name forms are skipped.
 */
export function decodeAuthorityInfoAccessOcsp(v: Uint8Array): string[] {
  const top = parseDer(v, "authorityInfoAccess", fail);
  const descs = isUniversal(top, 16) ? children(v, top, "authorityInfoAccess", fail) : fail("authorityInfoAccess: expected a SEQUENCE");
  const urls: string[] = [];
  for (const d of descs) {
    const f = isUniversal(d, 16) ? children(v, d, "AccessDescription", fail) : fail("AccessDescription: expected a SEQUENCE");
    if (f.length !== 2) fail("AccessDescription: expected { accessMethod, accessLocation }");
    if (oidOf(v, f[0], "accessMethod", fail) === OID.idAdOcsp && isContext(f[1], 6, false)) urls.push(latin1Text(contentOf(v, f[1])));
  }
  return urls;
}

/** The extensions this module can decode; path validation refuses any other critical one (§6.1.4 (o)). */
export const UNDERSTOOD_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.certificatePolicies,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
  OID.subjectDirectoryAttributes,
  OID.cRLDistributionPoints,
  OID.authorityInfoAccess,
]);
