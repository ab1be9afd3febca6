/**
 * Certificate profiles (policies/profiles/*.yaml): the data that drives the tbsCertificate builder
 * and the lint. A profile lists the subject attributes in encoding order and the extensions in
 * encoding order; an extension that is not listed is not allowed. Parsing is strict (unknown keys
 * are errors) and cross-checks the HPKI/RFC 5280 rules a typo could break.
 */
import { readYamlDocument } from "./yaml-document.ts";
import { z } from "zod";
import { SIGNATURE_ALGORITHMS } from "./certificate.ts";

/** Subject key algorithms a profile may allow (RSA by modulus size, EC by named curve). */
export const KEY_ALGORITHMS = ["RSA-2048", "RSA-3072", "RSA-4096", "P-256", "P-384"] as const;
export type KeyAlgorithmName = (typeof KEY_ALGORITHMS)[number];

/** keyUsage named bits, bit number = index (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
  "encipherOnly",
  "decipherOnly",
] as const;
export type KeyUsageBit = (typeof KEY_USAGE_BITS)[number];

/** extKeyUsage purposes by RFC 5280 §4.2.1.12 name. */
export const KEY_PURPOSES = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  emailProtection: "1.3.6.1.5.5.7.3.4",
  OCSPSigning: "1.3.6.1.5.5.7.3.9",
} as const;

/** Subject attributes by their short names, in the only order HPKI uses (HPKI-PROFILE §2). */
export const SUBJECT_ATTRIBUTES = ["C", "O", "OU", "CN", "serialNumber"] as const;
export type SubjectAttributeName = (typeof SUBJECT_ATTRIBUTES)[number];

const dottedOid = z.string().regex(/^[0-2](\.(0|[1-9]\d*))+$/, "must be a dotted OID");
const critical = z.boolean();
const presence = z.enum(["required", "optional"]);

const extensionSchema = z.discriminatedUnion("name", [
  z.strictObject({
    name: z.literal("authorityKeyIdentifier"),
    critical,
    /** keyid only, or keyid + authorityCertIssuer dirName + authorityCertSerialNumber [CERT]. */
    form: z.enum(["keyid", "keyid-issuer-serial"]),
  }),
  z.strictObject({ name: z.literal("subjectKeyIdentifier"), critical }),
  z.strictObject({ name: z.literal("keyUsage"), critical, bits: z.array(z.enum(KEY_USAGE_BITS)).min(1) }),
  z.strictObject({
    name: z.literal("extKeyUsage"),
    critical,
    purposes: z.array(z.union([z.enum(Object.keys(KEY_PURPOSES) as [keyof typeof KEY_PURPOSES]), dottedOid])).min(1),
  }),
  z.strictObject({ name: z.literal("basicConstraints"), critical, cA: z.boolean(), pathLenConstraint: z.number().int().min(0).optional() }),
  z.strictObject({
    name: z.literal("subjectAltName"),
    critical,
    /** Person profiles: the kanji name as a directoryName (HPKI-PROFILE §3). */
    kanjiDirectoryName: presence.optional(),
    /** Organisation profiles: the host names (RFC 5280 §4.2.1.6; RFC 6125 §6.4 for TLS servers). */
    dNSName: presence.optional(),
  }),
  z.strictObject({
    name: z.literal("cRLDistributionPoints"),
    critical,
    /**
     * Used when the issuer context supplies no URL; `{caName}` is replaced by the issuer's name and
     * `{repoUrl}` by the deployment's repository URL (HPKI_REPO_URL), as in cpsUri and ocspUrlTemplate.
     */
    urlTemplate: z.string().min(1).optional(),
  }),
  z.strictObject({ name: z.literal("subjectDirectoryAttributes"), critical, hcRole: presence }),
  z.strictObject({
    name: z.literal("certificatePolicies"),
    critical,
    policies: z
      .array(z.strictObject({ oid: dottedOid, cpsUri: z.string().min(1).optional(), inferred: z.boolean().optional() }))
      .min(1),
  }),
  z.strictObject({ name: z.literal("authorityInfoAccess"), critical, ocspUrlTemplate: z.string().min(1) }),
]);

const profileSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, "lowercase letters, digits and '-'"),
  description: z.string().optional(),
  kind: z.enum(["ca", "end-entity"]),
  /** end-entity only: who the subject is (a person with hcRole, or an organization/system). */
  subscriber: z.enum(["person", "organization"]).optional(),
  keyAlgorithms: z.array(z.enum(KEY_ALGORITHMS)).min(1),
  signatureAlgorithms: z.array(z.enum(SIGNATURE_ALGORITHMS)).min(1),
  validity: z.strictObject({
    years: z.number().int().min(1).max(50),
    /** jst-start-of-day: 00:00:00 JST of the issuance day [CERT EE]; issuance-time [CERT CA]. */
    notBefore: z.enum(["jst-start-of-day", "issuance-time"]),
    /** jst-end-of-day: 23:59:59 JST of the day before the anniversary [CERT]. */
    notAfter: z.enum(["jst-end-of-day"]),
  }),
  subject: z.array(z.strictObject({ attribute: z.enum(SUBJECT_ATTRIBUTES), presence })).min(1),
  extensions: z.array(extensionSchema),
});

export type CertificateProfile = z.infer<typeof profileSchema> & { source: string };
export type ProfileExtension = CertificateProfile["extensions"][number];
export type ProfileExtensionName = ProfileExtension["name"];
/** The extension entry of a given name, typed. */
export type ExtensionOf<N extends ProfileExtensionName> = Extract<ProfileExtension, { name: N }>;

/** Thrown by parseProfile; `issues` are "field: message" strings, `message` names the file. */
export class ProfileError extends Error {
  override name = "ProfileError";
  constructor(
    readonly source: string,
    readonly issues: string[],
  ) {
    super(`invalid certificate profile ${source}:\n  ${issues.join("\n  ")}`);
  }
}

/**
 * Parses and validates a profile YAML document. `source` names the file in error messages.
 * Returns the typed profile (with `source`). Throws ProfileError listing every problem as
 * "<field path>: <message>" — YAML syntax, schema (unknown keys included) and the cross-field
 * rules: EE validity ≤ 5 years (HPKI CP); CA profiles need basicConstraints cA=TRUE, keyCertSign
 * and an SKI (RFC 5280 §4.2.1.2, §4.2.1.9); subject attributes in HPKI order; no duplicate
 * extensions; hcRole only in person profiles; keyAgreement only for EC keys and never with a
 * signature bit (HPKI-PROFILE §12).
 */
export function parseProfile(yamlText: string, source: string): CertificateProfile {
  const parsed = readYamlDocument(yamlText, profileSchema);
  if (!parsed.ok) throw new ProfileError(source, parsed.issues);
  const profile = { ...parsed.data, source };
  const issues = crossCheck(profile);
  if (issues.length) throw new ProfileError(source, issues);
  return profile;
}

/** The extension entry named `name`, or undefined when the profile does not carry it. */
export function profileExtension<N extends ProfileExtensionName>(p: CertificateProfile, name: N): ExtensionOf<N> | undefined {
  return p.extensions.find((e) => e.name === name) as ExtensionOf<N> | undefined;
}

function crossCheck(p: CertificateProfile): string[] {
  const issues: string[] = [];
  const names = p.extensions.map((e) => e.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) issues.push(`extensions[${i}]: duplicate extension ${n} (RFC 5280 §4.2)`);
  });
  const order = p.subject.map((s) => SUBJECT_ATTRIBUTES.indexOf(s.attribute));
  order.forEach((o, i) => {
    if (i > 0 && o <= order[i - 1]) issues.push(`subject[${i}]: ${p.subject[i].attribute} out of HPKI order (C, O, OU, CN, serialNumber) or repeated`);
  });
  const bc = profileExtension(p, "basicConstraints");
  const ku = profileExtension(p, "keyUsage");
  if (p.kind === "end-entity") {
    if (p.validity.years > 5) issues.push("validity.years: end-entity certificates are valid at most 5 years (HPKI CP)");
    if (!p.subscriber) issues.push("subscriber: required for end-entity profiles (person | organization)");
    if (bc?.cA) issues.push("extensions.basicConstraints.cA: must not be TRUE in an end-entity profile");
    if (ku?.bits.some((b) => b === "keyCertSign" || b === "cRLSign")) issues.push("extensions.keyUsage.bits: keyCertSign/cRLSign are for CA profiles");
  } else {
    if (p.subscriber) issues.push("subscriber: only for end-entity profiles");
    if (!bc?.cA || !bc.critical) issues.push("extensions.basicConstraints: CA profiles need cA: true, critical (RFC 5280 §4.2.1.9)");
    if (!ku?.bits.includes("keyCertSign")) issues.push("extensions.keyUsage.bits: CA profiles need keyCertSign (RFC 5280 §4.2.1.3)");
    if (!profileExtension(p, "subjectKeyIdentifier")) issues.push("extensions: CA profiles need subjectKeyIdentifier (RFC 5280 §4.2.1.2)");
    if (profileExtension(p, "subjectAltName")) issues.push("extensions.subjectAltName: the kanji directoryName is for subscriber profiles");
  }
  const san = profileExtension(p, "subjectAltName");
  if (san && !san.kanjiDirectoryName && !san.dNSName) issues.push("extensions.subjectAltName: needs kanjiDirectoryName or dNSName");
  if (san?.dNSName && p.subscriber !== "organization") issues.push("extensions.subjectAltName.dNSName: host names are for organization profiles");
  if (san?.kanjiDirectoryName && p.subscriber === "organization") issues.push("extensions.subjectAltName.kanjiDirectoryName: the kanji name is for person profiles");
  // RFC 6125 §6.4.4 / CA/B Forum: a TLS server is identified by SAN dNSName, never by the CN alone.
  if (profileExtension(p, "extKeyUsage")?.purposes.includes("serverAuth") && san?.dNSName !== "required") {
    issues.push("extensions.subjectAltName.dNSName: must be required in a serverAuth profile (RFC 6125 §6.4.4)");
  }
  if (bc?.pathLenConstraint !== undefined && !bc.cA) issues.push("extensions.basicConstraints.pathLenConstraint: only with cA: true");
  if (profileExtension(p, "subjectDirectoryAttributes") && p.subscriber !== "person") {
    issues.push("extensions.subjectDirectoryAttributes: hcRole is carried only by person profiles (HPKI-PROFILE §6)");
  }
  if (ku && new Set(ku.bits).size !== ku.bits.length) issues.push("extensions.keyUsage.bits: duplicate bit");
  // Encryption profiles (HPKI-PROFILE §12): ECDH needs EC keys (RFC 5480 §3), and a key-agreement
  // key is not also a signature key.
  if (ku?.bits.includes("keyAgreement")) {
    if (p.keyAlgorithms.some((a) => a.startsWith("RSA"))) issues.push("keyAlgorithms: keyAgreement needs EC keys only (RFC 5480 §3)");
    if (ku.bits.some((b) => b === "digitalSignature" || b === "nonRepudiation")) {
      issues.push("extensions.keyUsage.bits: a keyAgreement key must not also sign (separate keys, HPKI-PROFILE §12)");
    }
  }
  for (const a of ["C", "CN"] as const) {
    if (!p.subject.some((s) => s.attribute === a && s.presence === "required")) issues.push(`subject: ${a} must be required`);
  }
  return issues;
}
