/**
 * Lint of the extensions of a tbsCertificate against the profile (RFC 5280 §4.2; HPKI-PROFILE
 * §3.2, §7): presence, duplicates, order, criticality (DER: FALSE omitted) and each value decoded
 * independently of the builder — AKI against the issuer, SKI against the public key, keyUsage bits,
 * basicConstraints, extKeyUsage, CRLDP URL, policies, kanji SAN, hcRole.
 */
import { Tag, unsignedInteger } from "./der.ts";
import { DerReadError, bytesEqual, childrenOf, contentOf, decodeOid, latin1Text, readDer, utf8Text, type Tlv } from "./der-cursor.ts";
import { encodeHcRoleExtension } from "./hcrole.ts";
import { dnsNameProblem } from "./dns-name.ts";
import { lintName, type Report } from "./lint-name.ts";
import { certificateUrlProblem } from "./public-url.ts";
import { OID } from "./oids.ts";
import { KEY_PURPOSES, KEY_USAGE_BITS, type CertificateProfile, type ProfileExtension, type SubjectAttributeName } from "./profile.ts";
import { crlDistributionPointUrl, expandTemplate, type IssuerContext } from "./tbs.ts";

/** What the extension checks need from the rest of the tbsCertificate. */
export interface ExtensionLintInput {
  profile: CertificateProfile;
  issuer: IssuerContext;
  /** SHA-1 of the subjectPublicKey bits, computed by the lint from the parsed SPKI. */
  expectedKeyId?: Uint8Array;
  subjectValues: Map<SubjectAttributeName, string>;
}

const NAME_BY_OID = new Map<string, ProfileExtension["name"]>([
  [OID.authorityKeyIdentifier, "authorityKeyIdentifier"],
  [OID.subjectKeyIdentifier, "subjectKeyIdentifier"],
  [OID.keyUsage, "keyUsage"],
  [OID.extKeyUsage, "extKeyUsage"],
  [OID.basicConstraints, "basicConstraints"],
  [OID.subjectAltName, "subjectAltName"],
  [OID.cRLDistributionPoints, "cRLDistributionPoints"],
  [OID.subjectDirectoryAttributes, "subjectDirectoryAttributes"],
  [OID.certificatePolicies, "certificatePolicies"],
  [OID.authorityInfoAccess, "authorityInfoAccess"],
]);

const SAN_ATTRIBUTES = [
  { attribute: "C", presence: "required" },
  { attribute: "O", presence: "optional" },
  { attribute: "CN", presence: "required" },
  { attribute: "serialNumber", presence: "required" },
] as const;

/**
 * Checks the Extensions SEQUENCE at `exts` (or their absence when `exts` is undefined) and
 * reports violations. Codes: ext.*, aki.*, ski.*, ku.*, eku.*, bc.*, crldp.*, cp.*, san.*,
 * hcrole.*, aia.*. Whatever the profile says, a certificate whose extKeyUsage includes serverAuth
 * must carry at least one SAN dNSName (san.server-auth-dns; RFC 6125 §6.4.4: clients do not fall
 * back to the CN when SAN is used, and browsers never do).
 */
export function lintExtensions(buf: Uint8Array, exts: Tlv | undefined, input: ExtensionLintInput, report: Report): void {
  const { profile } = input;
  const facts: Facts = { serverAuth: false, dnsNames: 0 };
  const seen: ProfileExtension["name"][] = [];
  const seenOids = new Set<string>();
  for (const ext of exts ? childrenOf(buf, exts) : []) {
    const parts = ext.tag === Tag.SEQUENCE ? childrenOf(buf, ext) : [];
    const valueTlv = parts[parts.length - 1];
    if (parts.length < 2 || parts.length > 3 || parts[0].tag !== Tag.OID || valueTlv.tag !== Tag.OCTET_STRING) {
      report("ext.malformed", "malformed Extension");
      continue;
    }
    const id = decodeOid(contentOf(buf, parts[0]), parts[0].contentStart);
    const name = NAME_BY_OID.get(id);
    if (seenOids.has(id)) report("ext.duplicate", `extension ${name ?? id} appears twice (RFC 5280 §4.2)`);
    seenOids.add(id);
    let critical = false;
    if (parts.length === 3) {
      const b = contentOf(buf, parts[1]);
      if (parts[1].tag !== Tag.BOOLEAN || b.length !== 1 || (b[0] !== 0xff && b[0] !== 0)) report("ext.malformed", `${name ?? id}: critical is not a DER BOOLEAN`);
      else if (b[0] === 0) report("ext.critical-default", `${name ?? id}: critical FALSE must be omitted in DER (DEFAULT)`);
      critical = b[0] === 0xff;
    }
    const spec = name ? profile.extensions.find((e) => e.name === name) : undefined;
    if (!spec || !name) {
      report("ext.unexpected", `extension ${name ?? id} is not allowed by profile ${profile.name}`);
      continue;
    }
    seen.push(name);
    if (critical !== spec.critical) report("ext.criticality", `${name}: critical must be ${spec.critical}`);
    const value = contentOf(buf, valueTlv);
    try {
      checkValue(value, readDer(value), spec, input, report, facts);
    } catch (e) {
      if (!(e instanceof DerReadError)) throw e;
      report("ext.malformed", `${name}: extnValue is not DER (${e.message})`);
    }
  }
  for (const e of profile.extensions) {
    const optional =
      (e.name === "subjectAltName" && e.kanjiDirectoryName !== "required" && e.dNSName !== "required") || (e.name === "subjectDirectoryAttributes" && e.hcRole === "optional");
    if (!optional && !seen.includes(e.name)) report(e.name === "subjectDirectoryAttributes" ? "hcrole.missing" : "ext.missing", `required extension ${e.name} is missing`);
  }
  if (input.issuer.publicUrlsOnly) lintPublicUrls(profile, input.issuer, report);
  if (facts.serverAuth && facts.dnsNames === 0) report("san.server-auth-dns", "a serverAuth certificate needs a subjectAltName dNSName (RFC 6125 §6.4.4; the CN is not used)");
  const expectedOrder = profile.extensions.map((e) => e.name).filter((n) => seen.includes(n));
  if (new Set(seen).size === seen.length && seen.join() !== expectedOrder.join()) report("ext.order", `extensions out of profile order: ${seen.join(", ")}`);
}

/** What one extension tells the rules that span several (serverAuth needs a dNSName). */
interface Facts {
  serverAuth: boolean;
  dnsNames: number;
}

function checkValue(b: Uint8Array, top: Tlv, spec: ProfileExtension, input: ExtensionLintInput, report: Report, facts: Facts): void {
  switch (spec.name) {
    case "authorityKeyIdentifier":
      return checkAki(b, top, spec.form, input.issuer, report);
    case "subjectKeyIdentifier":
      if (top.tag !== Tag.OCTET_STRING || !input.expectedKeyId || !bytesEqual(contentOf(b, top), input.expectedKeyId)) {
        report("ski.mismatch", "subjectKeyIdentifier is not the SHA-1 of the subjectPublicKey (RFC 5280 §4.2.1.2 (1))");
      }
      return;
    case "keyUsage":
      return checkKeyUsage(b, top, spec.bits, report);
    case "extKeyUsage": {
      const got = top.tag === Tag.SEQUENCE ? childrenOf(b, top).map((t) => decodeOid(contentOf(b, t))) : [];
      const want = spec.purposes.map((p) => KEY_PURPOSES[p as keyof typeof KEY_PURPOSES] ?? p);
      facts.serverAuth = got.includes(KEY_PURPOSES.serverAuth);
      if (got.length !== want.length || want.some((w) => !got.includes(w))) report("eku.purposes", `extKeyUsage must be exactly ${spec.purposes.join(", ")}`);
      return;
    }
    case "basicConstraints":
      return checkBasicConstraints(b, top, spec.cA, spec.pathLenConstraint, report);
    case "cRLDistributionPoints": {
      const url = singleUri(b, top, [0xa0, 0xa0]);
      const want = expected(input.profile, input.issuer).crlUrl;
      if (url !== want) report("crldp.url", `cRLDistributionPoints must be one DistributionPoint with fullName URI ${want}`);
      return;
    }
    case "authorityInfoAccess": {
      const want = expandTemplate(spec.ocspUrlTemplate, input.issuer);
      const ad = top.tag === Tag.SEQUENCE ? childrenOf(b, top) : [];
      const parts = ad.length === 1 ? childrenOf(b, ad[0]) : [];
      const ok = parts.length === 2 && decodeOid(contentOf(b, parts[0])) === "1.3.6.1.5.5.7.48.1" && parts[1].tag === 0x86 && latin1Text(contentOf(b, parts[1])) === want;
      if (!ok) report("aia.mismatch", `authorityInfoAccess must be one OCSP URI ${want}`);
      return;
    }
    case "certificatePolicies":
      return checkPolicies(b, top, expected(input.profile, input.issuer).policies, report);
    case "subjectAltName":
      return checkSubjectAltName(b, top, spec, input, report, facts);
    case "subjectDirectoryAttributes":
      return checkHcRole(b, top, report);
  }
}

/**
 * subjectAltName (RFC 5280 §4.2.1.6) as the profile allows it: at most one directoryName (the kanji
 * name, first) when kanjiDirectoryName is listed, then dNSNames when dNSName is listed, each a valid
 * host name; no other GeneralName form; a "required" part present.
 */
function checkSubjectAltName(b: Uint8Array, top: Tlv, spec: Extract<ProfileExtension, { name: "subjectAltName" }>, input: ExtensionLintInput, report: Report, facts: Facts): void {
  const names = top.tag === Tag.SEQUENCE ? childrenOf(b, top) : [];
  if (names.length === 0) return report("san.form", "subjectAltName must hold at least one name (RFC 5280 §4.2.1.6)");
  const dirs = names.filter((n) => n.tag === 0xa4);
  const hosts = names.filter((n) => n.tag === 0x82);
  const allowed = spec.kanjiDirectoryName ? "one directoryName (the kanji name)" : "dNSNames";
  if (dirs.length + hosts.length !== names.length || (dirs.length && !spec.kanjiDirectoryName) || (hosts.length && !spec.dNSName) || dirs.length > 1 || (dirs.length && names[0] !== dirs[0])) {
    report("san.form", `subjectAltName may hold only ${spec.dNSName && spec.kanjiDirectoryName ? "one directoryName then dNSNames" : allowed}`);
  }
  if (spec.kanjiDirectoryName === "required" && dirs.length === 0) report("san.form", "subjectAltName must hold the kanji directoryName");
  if (spec.dNSName === "required" && hosts.length === 0) report("san.dns-missing", "subjectAltName must hold at least one dNSName");
  facts.dnsNames += hosts.length;
  for (const h of hosts) {
    const why = dnsNameProblem(latin1Text(contentOf(b, h)));
    if (why) report("san.dns-name", `dNSName ${why.en}`);
  }
  if (dirs.length === 1) {
    const inner = childrenOf(b, dirs[0]);
    if (inner.length !== 1) return report("san.form", "directoryName must wrap one Name");
    const values = lintName(b, inner[0], "san", SAN_ATTRIBUTES, report);
    if (values.get("serialNumber") !== input.subjectValues.get("serialNumber")) report("san.serial-number", "SAN serialNumber must equal the subject serialNumber");
  }
}

function checkAki(b: Uint8Array, top: Tlv, form: "keyid" | "keyid-issuer-serial", issuer: IssuerContext, report: Report): void {
  const f = top.tag === Tag.SEQUENCE ? childrenOf(b, top) : [];
  const keyId = f.find((t) => t.tag === 0x80);
  if (!keyId || !bytesEqual(contentOf(b, keyId), issuer.keyIdentifier)) report("aki.keyid", "AKI keyIdentifier must equal the issuer's SKI (RFC 5280 §4.2.1.1)");
  const dir = f.find((t) => t.tag === 0xa1);
  const serial = f.find((t) => t.tag === 0x82);
  if (form === "keyid") {
    if (f.length !== 1) report("aki.form", "AKI must hold the keyIdentifier only");
    return;
  }
  if (f.length !== 3 || f[0] !== keyId || f[1] !== dir || f[2] !== serial) return report("aki.form", "AKI must hold keyIdentifier, authorityCertIssuer and authorityCertSerialNumber");
  const gn = childrenOf(b, dir!);
  const name = gn.length === 1 && gn[0].tag === 0xa4 ? childrenOf(b, gn[0]) : [];
  if (name.length !== 1 || !issuer.authorityCertIssuer || !bytesEqual(b.subarray(name[0].start, name[0].end), issuer.authorityCertIssuer)) {
    report("aki.issuer", "AKI authorityCertIssuer must be one directoryName equal to the issuer CA's issuer");
  }
  // [2] IMPLICIT INTEGER: the content octets of the INTEGER (a ≤ 20-octet serial has a 1-octet length).
  const want = issuer.authorityCertSerialNumber ? unsignedInteger(issuer.authorityCertSerialNumber).subarray(2) : undefined;
  if (!want || !bytesEqual(contentOf(b, serial!), want)) {
    report("aki.serial", "AKI authorityCertSerialNumber must equal the issuer CA certificate's serial");
  }
}

function checkKeyUsage(b: Uint8Array, top: Tlv, bits: readonly string[], report: Report): void {
  const c = contentOf(b, top);
  if (top.tag !== Tag.BIT_STRING || c.length < 2 || c[0] > 7) return report("ku.malformed", "keyUsage is not a BIT STRING");
  const unused = c[0];
  const last = c[c.length - 1];
  // DER named bit lists: no trailing zero bits, unused bits zero (X.690 §11.2.2).
  if (last === 0 || (last & ((1 << unused) - 1)) !== 0 || (last & (1 << unused)) === 0) report("ku.not-der", "keyUsage BIT STRING is not in DER form");
  const got: string[] = [];
  for (let i = 0; i < (c.length - 1) * 8; i++) {
    if (c[1 + (i >> 3)] & (0x80 >> (i & 7))) got.push(KEY_USAGE_BITS[i] ?? `bit${i}`);
  }
  if (got.length !== bits.length || bits.some((x) => !got.includes(x))) report("ku.bits", `keyUsage must be exactly ${bits.join(", ")} (found ${got.join(", ") || "none"})`);
}

function checkBasicConstraints(b: Uint8Array, top: Tlv, cA: boolean, pathLen: number | undefined, report: Report): void {
  const f = top.tag === Tag.SEQUENCE ? childrenOf(b, top) : [];
  let i = 0;
  let gotCa = false;
  if (f[i]?.tag === Tag.BOOLEAN) {
    const v = contentOf(b, f[i++]);
    if (v.length !== 1 || v[0] !== 0xff) report("bc.not-der", "basicConstraints cA FALSE must be omitted (DER DEFAULT)");
    gotCa = v[0] === 0xff;
  }
  let gotPath: number | undefined;
  if (f[i]?.tag === Tag.INTEGER) {
    const v = contentOf(b, f[i++]);
    gotPath = v.length === 1 && v[0] < 0x80 ? v[0] : -1;
  }
  if (i !== f.length) return report("bc.malformed", "basicConstraints has unexpected fields");
  if (gotCa !== cA || gotPath !== pathLen) report("bc.mismatch", `basicConstraints must be cA=${cA}${pathLen === undefined ? "" : `, pathLenConstraint=${pathLen}`}`);
}

function checkPolicies(b: Uint8Array, top: Tlv, expected: readonly string[], report: Report): void {
  const got = (top.tag === Tag.SEQUENCE ? childrenOf(b, top) : []).map((pi) => {
    const f = childrenOf(b, pi);
    const quals = f[1] ? childrenOf(b, f[1]) : [];
    const q = quals.length === 1 ? childrenOf(b, quals[0]) : [];
    const cps = q.length === 2 && decodeOid(contentOf(b, q[0])) === OID.idQtCps && q[1].tag === Tag.IA5String ? latin1Text(contentOf(b, q[1])) : quals.length ? "?" : undefined;
    return `${f[0]?.tag === Tag.OID ? decodeOid(contentOf(b, f[0])) : "?"} ${cps ?? ""}`;
  });
  if (got.join("|") !== expected.join("|")) report("cp.mismatch", `certificatePolicies must be ${expected.join("; ")} (found ${got.join("; ")})`);
}

const canonicalHcRoles = new Map<string, Buffer>();

/**
 * Production (issuer.publicUrlsOnly): every URL the certificate carries — CRLDP, CPS qualifiers,
 * AIA OCSP — must name a public DNS host (url.not-public). The URLs checked are the expected ones;
 * crldp.url / cp.mismatch / aia.mismatch already refuse any other value in the DER.
 */
function lintPublicUrls(profile: CertificateProfile, issuer: IssuerContext, report: Report): void {
  const e = expected(profile, issuer);
  const aia = profile.extensions.find((x) => x.name === "authorityInfoAccess");
  const urls = [e.crlUrl, ...e.cpsUris, aia?.name === "authorityInfoAccess" ? expandTemplate(aia.ocspUrlTemplate, issuer) : undefined];
  for (const url of urls) {
    const why = url === undefined ? undefined : certificateUrlProblem(url);
    if (why) report("url.not-public", `production: ${why.en}`);
  }
}

/**
 * Expected CRL URL and policy list for (profile, issuer), derived once per pair: the lint runs per
 * certificate and these depend only on the pair. IssuerContext and profile objects are treated as
 * immutable (as compileTbsTemplate does).
 */
function expected(profile: CertificateProfile, issuer: IssuerContext): Expected {
  let byIssuer = expectedCache.get(profile);
  if (!byIssuer) expectedCache.set(profile, (byIssuer = new WeakMap()));
  let e = byIssuer.get(issuer);
  if (!e) {
    const cp = profile.extensions.find((x) => x.name === "certificatePolicies");
    const policies = cp?.name === "certificatePolicies" ? cp.policies : [];
    const cps = policies.map((p) => (p.cpsUri ? expandTemplate(p.cpsUri, issuer) : ""));
    e = {
      crlUrl: crlDistributionPointUrl(profile, issuer),
      policies: policies.map((p, i) => `${p.oid} ${cps[i]}`),
      cpsUris: cps.filter(Boolean),
    };
    byIssuer.set(issuer, e);
  }
  return e;
}
interface Expected {
  crlUrl?: string;
  policies: string[];
  cpsUris: string[];
}
const expectedCache = new WeakMap<CertificateProfile, WeakMap<IssuerContext, Expected>>();

/** The hcRole: walk to codeDataFreeText, then demand the canonical encoding of that role. */
function checkHcRole(b: Uint8Array, top: Tlv, report: Report): void {
  let role: string | undefined;
  try {
    const attr = childrenOf(b, childrenOf(b, top)[0]);
    if (decodeOid(contentOf(b, attr[0])) !== OID.idHcpkiAtHealthcareActor) throw new DerReadError("not hcRole", attr[0].start);
    const actor = childrenOf(b, childrenOf(b, childrenOf(b, attr[1])[0])[0]);
    const coded = childrenOf(b, childrenOf(b, actor[0])[0]);
    const text = coded.find((t) => t.tag === 0xa2);
    const str = text && childrenOf(b, text)[0];
    if (str?.tag === Tag.UTF8String) role = utf8Text(contentOf(b, str));
  } catch {
    role = undefined;
  }
  if (!role || !role.trim()) return report("hcrole.missing", "subjectDirectoryAttributes must carry one hcRole (1.0.17090.0.1) with a codeDataFreeText");
  if (role.normalize("NFC") !== role) report("hcrole.not-nfc", "hcRole text is not NFC-normalised");
  let canonical = canonicalHcRoles.get(role);
  if (!canonical) {
    if (canonicalHcRoles.size > 256) canonicalHcRoles.clear(); // the code table has ~32 roles; stay bounded anyway
    canonicalHcRoles.set(role, (canonical = encodeHcRoleExtension(role)));
  }
  if (!bytesEqual(b, canonical)) report("hcrole.malformed", "subjectDirectoryAttributes is not exactly one hcRole in the HPKI encoding (HPKI-PROFILE §6.3)");
}

function singleUri(b: Uint8Array, top: Tlv, wrappers: number[]): string | undefined {
  let t = top;
  for (const tag of [Tag.SEQUENCE, ...wrappers]) {
    const kids = childrenOf(b, t);
    if (kids.length !== 1 || kids[0].tag !== tag) return undefined;
    t = kids[0];
  }
  const uri = childrenOf(b, t);
  return uri.length === 1 && uri[0].tag === 0x86 ? latin1Text(contentOf(b, uri[0])) : undefined;
}
