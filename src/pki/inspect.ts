/**
 * Certificate description for `hpki inspect` (RFC 5280 §4.1 fields and the §4.2 extensions HPKI
 * uses; HPKI-PROFILE.md §2–§3, §6–§7). Pure: DER in, a JSON-ready value out. Rendering for humans
 * lives in inspect-format.ts (re-exported here).
 */
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { ab, parseDer } from "./der-cursor.ts";
import { decodeHcRoleExtension, type HcRole } from "./hcrole.ts";
import { decodeName, formatRdns, type NameAttribute } from "./name-decode.ts";
import { OID } from "./oids.ts";
import { KEY_PURPOSES, KEY_USAGE_BITS } from "./profile.ts";
import { describePublicKey, SIGNATURE_ALGORITHM_NAMES, type PublicKeyDescription } from "./public-key.ts";

/** A Name as one display line (formatName) plus its decoded RDNs (decodeName). */
export interface NameDescription {
  text: string;
  rdns: NameAttribute[][];
}

/** One PolicyInformation (RFC 5280 §4.2.1.4). */
export interface PolicyDescription {
  oid: string;
  /** Friendly English label for known HPKI policy OIDs (oids.ts). */
  label?: string;
  /** id-qt-cps qualifier URIs. */
  cpsUris: string[];
}

/** See describeCertificate. Times are UTC ISO 8601 without milliseconds, plus JST display. */
export interface CertificateDescription {
  version: number;
  /** Serial as uppercase hex of the DER INTEGER content, leading 00 sign octet removed ("015E"). */
  serialNumber: string;
  signatureAlgorithm: { oid: string; name?: string };
  issuer: NameDescription;
  subject: NameDescription;
  selfIssued: boolean;
  /** The subject's serialNumber attribute (the HPKI subscriber identifier), or null. */
  subscriberSerialNumber: string | null;
  /** Kanji names from the first subjectAltName directoryName (HPKI §2), or null when absent. */
  kanji: { name: string | null; organization: string | null; serialNumber: string | null; directoryName: NameDescription } | null;
  /** First hcRole's codeDataFreeText (e.g. "Medical Doctor"), or null. */
  hcRole: string | null;
  /** Every decoded hcRole (ISO/TS 17090 HCActor). */
  hcRoles: HcRole[];
  validity: { notBefore: string; notAfter: string; notBeforeJst: string; notAfterJst: string };
  publicKey: PublicKeyDescription & { oid: string };
  keyUsage: { critical: boolean; names: string[] } | null;
  /** `names` holds the RFC 5280 §4.2.1.12 name of each known purpose, else its OID. */
  extKeyUsage: { critical: boolean; oids: string[]; names: string[] } | null;
  basicConstraints: { critical: boolean; ca: boolean; pathLenConstraint?: number } | null;
  isCa: boolean;
  certificatePolicies: { critical: boolean; policies: PolicyDescription[] } | null;
  crlDistributionPoints: { uris: string[]; directoryNames: string[] } | null;
  authorityKeyIdentifier: { keyId?: string; issuer?: string[]; serialNumber?: string } | null;
  /** Uppercase hex. */
  subjectKeyIdentifier: string | null;
  /** Every extension in certificate order. */
  extensions: { oid: string; critical: boolean }[];
  /** SHA-256 of the whole DER, uppercase hex pairs joined with ':' (as openssl -fingerprint). */
  fingerprintSha256: string;
}

/** Thrown by describeCertificate when the input is not a DER X.509 certificate. */
export class CertificateDescribeError extends Error {
  override name = "CertificateDescribeError";
}

const fail = (message: string): never => {
  throw new CertificateDescribeError(message);
};

/** Friendly labels for HPKI policy OIDs (HPKI-PROFILE.md §7.3). */
export const HPKI_POLICY_LABELS: Readonly<Record<string, string>> = {
  [OID.hpkiSignatureEePolicy]: "HPKI signature CP (subscriber certificate)",
  [OID.hpkiSignatureCaPolicy]: "HPKI signature CP (issuing-CA certificate)",
  [OID.hpkiAuthPersonCaPolicy]: "HPKI authentication (person) CP (issuing-CA certificate)",
  [OID.hpkiAuthPersonEePolicy]: "HPKI authentication (person) CP (subscriber certificate; OID inferred)",
};

const PURPOSE_NAMES = new Map(Object.entries(KEY_PURPOSES).map(([name, oid]) => [oid as string, name]));

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();

/** Positive INTEGER content → hex without the DER sign octet. */
const integerHex = (i: asn1js.Integer) => {
  const v = i.valueBlock.valueHexView;
  return hex(v.length > 1 && v[0] === 0 ? v.subarray(1) : v);
};

const describeName = (der: Uint8Array): NameDescription => {
  const rdns = decodeName(der);
  return { text: formatRdns(rdns), rdns };
};

const firstValue = (rdns: NameAttribute[][], type: string): string | null =>
  rdns.flat().find((a) => a.type === type)?.value ?? null;

const isoUtc = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

// Japan has used UTC+9 without daylight saving since 1951, so a fixed offset is exact here.
const jst = (d: Date) => isoUtc(new Date(d.getTime() + 9 * 3600_000)).replace("T", " ").replace("Z", " JST");

/**
 * Describes a DER X.509 v3 certificate: every field `hpki inspect` shows. Unknown extensions are
 * listed in `extensions` only. Throws CertificateDescribeError when the bytes are not one strict
 * DER certificate; HcRoleDecodeError / NameDecodeError when the hcRole or a name is malformed.
 */
export function describeCertificate(der: Uint8Array): CertificateDescription {
  parseDer(der, "certificate", fail);
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(ab(der));
  } catch (e) {
    return fail(`certificate: not an X.509 certificate (${(e as Error).message})`);
  }
  const ext = (oid: string) => cert.extensions?.find((e) => e.extnID === oid);
  const parsed = <T>(oid: string): [T, boolean] | null => {
    const e = ext(oid);
    if (!e) return null;
    const v = e.parsedValue as T | undefined;
    if (v === undefined) fail(`certificate: extension ${oid} does not parse`);
    return [v as T, e.critical];
  };

  const issuerDer = new Uint8Array(cert.issuer.valueBeforeDecode);
  const subjectDer = new Uint8Array(cert.subject.valueBeforeDecode);
  const subject = describeName(subjectDer);
  const sda = ext(OID.subjectDirectoryAttributes);
  const hcRoles = sda ? decodeHcRoleExtension(sda.extnValue.valueBlock.valueHexView) : [];
  const spki = new Uint8Array(cert.subjectPublicKeyInfo.toSchema().toBER());
  const bc = parsed<pkijs.BasicConstraints>(OID.basicConstraints);
  const sigOid = cert.signatureAlgorithm.algorithmId;
  const ski = parsed<asn1js.OctetString>(OID.subjectKeyIdentifier);

  return {
    version: cert.version + 1,
    serialNumber: integerHex(cert.serialNumber),
    signatureAlgorithm: { oid: sigOid, name: SIGNATURE_ALGORITHM_NAMES[sigOid] },
    issuer: describeName(issuerDer),
    subject,
    selfIssued: Buffer.from(issuerDer).equals(subjectDer),
    subscriberSerialNumber: firstValue(subject.rdns, OID.serialNumber),
    kanji: kanjiNames(parsed<pkijs.AltName>(OID.subjectAltName)?.[0]),
    hcRole: hcRoles[0]?.codeDataFreeText ?? null,
    hcRoles,
    validity: {
      notBefore: isoUtc(cert.notBefore.value),
      notAfter: isoUtc(cert.notAfter.value),
      notBeforeJst: jst(cert.notBefore.value),
      notAfterJst: jst(cert.notAfter.value),
    },
    publicKey: { oid: cert.subjectPublicKeyInfo.algorithm.algorithmId, ...safeKey(spki) },
    keyUsage: keyUsage(parsed<asn1js.BitString>(OID.keyUsage)),
    extKeyUsage: withCritical(parsed<pkijs.ExtKeyUsage>(OID.extKeyUsage), (v) => ({ oids: [...v.keyPurposes], names: v.keyPurposes.map((o) => PURPOSE_NAMES.get(o) ?? o) })),
    basicConstraints: withCritical(bc, (v) => ({
      ca: v.cA === true,
      ...(v.pathLenConstraint === undefined ? {} : { pathLenConstraint: pathLen(v.pathLenConstraint) }),
    })),
    isCa: bc?.[0].cA === true,
    certificatePolicies: withCritical(parsed<pkijs.CertificatePolicies>(OID.certificatePolicies), (v) => ({
      policies: v.certificatePolicies.map(policy),
    })),
    crlDistributionPoints: crlDps(parsed<pkijs.CRLDistributionPoints>(OID.cRLDistributionPoints)?.[0]),
    authorityKeyIdentifier: aki(parsed<pkijs.AuthorityKeyIdentifier>(OID.authorityKeyIdentifier)?.[0]),
    subjectKeyIdentifier: ski ? hex(ski[0].valueBlock.valueHexView) : null,
    extensions: (cert.extensions ?? []).map((e) => ({ oid: e.extnID, critical: e.critical })),
    fingerprintSha256: createHash("sha256").update(der).digest("hex").toUpperCase().replace(/(..)(?!$)/g, "$1:"),
  };
}

// Spreads the extension's critical flag into the decoded value.
function withCritical<T, R extends object>(p: [T, boolean] | null, f: (v: T) => R): ({ critical: boolean } & R) | null {
  return p ? { critical: p[1], ...f(p[0]) } : null;
}

// pkijs gives a number for small pathLenConstraint values and an asn1js Integer otherwise.
const pathLen = (p: number | asn1js.Integer) => (typeof p === "number" ? p : p.valueBlock.valueDec);

function safeKey(spki: Uint8Array): PublicKeyDescription {
  try {
    return describePublicKey(spki);
  } catch (e) {
    return fail(`certificate: subjectPublicKeyInfo does not parse (${(e as Error).message})`);
  }
}

function keyUsage(p: [asn1js.BitString, boolean] | null): { critical: boolean; names: string[] } | null {
  if (!p) return null;
  const bytes = p[0].valueBlock.valueHexView;
  const names = KEY_USAGE_BITS.filter((_, i) => (bytes[i >> 3] ?? 0) & (0x80 >> (i & 7)));
  return { critical: p[1], names };
}

function policy(pi: pkijs.PolicyInformation): PolicyDescription {
  const cpsUris = (pi.policyQualifiers ?? [])
    .filter((q) => q.policyQualifierId === OID.idQtCps)
    .map((q) => String((q.qualifier as asn1js.IA5String).valueBlock.value));
  const label = HPKI_POLICY_LABELS[pi.policyIdentifier];
  return label ? { oid: pi.policyIdentifier, label, cpsUris } : { oid: pi.policyIdentifier, cpsUris };
}

const dirNameText = (g: pkijs.GeneralName) =>
  formatRdns(decodeName(new Uint8Array((g.value as pkijs.RelativeDistinguishedNames).valueBeforeDecode)));

function crlDps(v: pkijs.CRLDistributionPoints | undefined) {
  if (!v) return null;
  const uris: string[] = [];
  const directoryNames: string[] = [];
  for (const dp of v.distributionPoints) {
    if (!Array.isArray(dp.distributionPoint)) continue; // nameRelativeToCRLIssuer: not used in HPKI
    for (const g of dp.distributionPoint) {
      if (g.type === 6) uris.push(String(g.value));
      if (g.type === 4) directoryNames.push(dirNameText(g));
    }
  }
  return { uris, directoryNames };
}

function aki(v: pkijs.AuthorityKeyIdentifier | undefined): CertificateDescription["authorityKeyIdentifier"] {
  if (!v) return null;
  const out: NonNullable<CertificateDescription["authorityKeyIdentifier"]> = {};
  if (v.keyIdentifier) out.keyId = hex(v.keyIdentifier.valueBlock.valueHexView);
  if (v.authorityCertIssuer) out.issuer = v.authorityCertIssuer.filter((g) => g.type === 4).map(dirNameText);
  if (v.authorityCertSerialNumber) out.serialNumber = integerHex(v.authorityCertSerialNumber);
  return out;
}

function kanjiNames(san: pkijs.AltName | undefined): CertificateDescription["kanji"] {
  const g = san?.altNames.find((n) => n.type === 4);
  if (!g) return null;
  const directoryName = describeName(new Uint8Array((g.value as pkijs.RelativeDistinguishedNames).valueBeforeDecode));
  return {
    name: firstValue(directoryName.rdns, OID.commonName),
    organization: firstValue(directoryName.rdns, OID.organizationName),
    serialNumber: firstValue(directoryName.rdns, OID.serialNumber),
    directoryName,
  };
}

export { formatCertificateDescription } from "./inspect-format.ts";
