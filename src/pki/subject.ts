/**
 * Subscriber subject data (the JSON an RA approves) → a validated SubscriberSubject that the
 * tbsCertificate builder turns into the subject DN, the kanji subjectAltName and the hcRole.
 * Rules: HPKI-PROFILE §2, §3.1 (Director → O and OU=Director), §5 (organizations), §6 (hcRole);
 * lengths from X.520 upper bounds (ub-common-name, ub-organization-name, ub-serial-number = 64).
 */
import { z } from "zod";
import { isPrintableString } from "./der.ts";
import { dnsNameProblem, normalizeDnsName } from "./dns-name.ts";
import type { CertificateProfile } from "./profile.ts";
import { profileExtension } from "./profile.ts";
import { textViolation, textViolationMessages } from "./text-rules.ts";

/** X.520 upper bounds (characters) for CN, O and serialNumber. */
export const UB_NAME = 64;

/** One hcRole table entry, as the hcRole code table provides it. */
export interface HcRoleEntry {
  kind: "national-qualification" | "manager";
  status: string;
}

/** Validated subject data; all text NFC-normalised and trimmed. */
export interface SubscriberSubject {
  /** Mirrors profile.subscriber. */
  kind: "person" | "organization";
  /** The hcRole code (English codeDataFreeText, e.g. "Medical Doctor"), when the profile carries hcRole. */
  hcRole?: string;
  /** The table entry of `hcRole`: its kind and code-table status (e.g. "confirmed", "unverified"). */
  hcRoleEntry?: HcRoleEntry;
  /** CA-assigned subscriber identifier → subject serialNumber (PrintableString). */
  subscriberId: string;
  /** latin → subject CN; kanji (family U+3000 given) → SAN dirName CN. For organizations: the system name. */
  name: { latin: string; kanji?: string };
  /** latin → subject O; kanji → SAN dirName O. */
  organization?: { latin: string; kanji?: string };
  /** True for manager roles: the subject gets OU=Director (HPKI-PROFILE §6.5). */
  director: boolean;
  /** Organisations: host names for subjectAltName dNSName (lowercase, no trailing dot, valid). */
  dnsNames?: string[];
}

/** One problem with the input: the JSON field path and the message in English and Japanese. */
export interface SubjectIssue {
  field: string;
  message: string;
  messageJa: string;
}

/** Thrown by parseSubscriberSubject with every issue found (not just the first). */
export class SubjectError extends Error {
  override name = "SubjectError";
  constructor(readonly issues: SubjectIssue[]) {
    super(`invalid subject: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`);
  }
}

const text = z.string();
const subjectJsonSchema = z.strictObject({
  hcRole: text.optional(),
  subscriberId: text,
  name: z.strictObject({ latin: text, kanji: text.optional() }),
  organization: z.strictObject({ latin: text.optional(), kanji: text.optional() }).optional(),
  dnsNames: z.array(text).optional(),
});

// A kanji name's family/given separator may arrive as ASCII or ideographic space(s): one U+3000.
const KANJI_SEPARATOR = /[ \u3000]+/g;

/**
 * Validates subject JSON `{hcRole?, subscriberId, name: {latin, kanji?}, organization?: {latin?,
 * kanji?}}` against the profile and the hcRole table (code → {kind, status}). Strings are
 * NFC-normalised and trimmed before validation; a kanji name's separator becomes U+3000.
 * Person profiles: hcRole required when the profile's hcRole is "required", must be in the table;
 * a manager role needs organization.latin and sets OU=Director. Organization profiles (auth-org):
 * organization.latin required, name.latin is the system/server name, hcRole and kanji not allowed,
 * dnsNames (host names for SAN dNSName; lowercased, each a valid host name) allowed only here.
 * Returns SubscriberSubject; throws SubjectError listing every issue (field, English, Japanese).
 */
export function parseSubscriberSubject(
  json: unknown,
  profile: CertificateProfile,
  hcRoles: ReadonlyMap<string, HcRoleEntry>,
): SubscriberSubject {
  if (profile.kind !== "end-entity" || !profile.subscriber) {
    throw new SubjectError([issue("(profile)", `profile ${profile.name} is not a subscriber profile`, `プロファイル ${profile.name} は加入者用ではありません`)]);
  }
  const parsed = subjectJsonSchema.safeParse(json);
  if (!parsed.success) {
    throw new SubjectError(
      parsed.error.issues.map((i) =>
        issue(i.path.join(".") || "(document)", i.message, i.code === "unrecognized_keys" ? "不明な項目があります" : "形式が正しくありません"),
      ),
    );
  }
  const raw = parsed.data;
  const issues: SubjectIssue[] = [];
  const clean = (field: string, v: string | undefined, required: boolean): string | undefined => {
    const s = v?.normalize("NFC").trim();
    if (!s) {
      if (required) issues.push(issue(field, "is required and must not be empty", "必須項目です（空欄は不可）"));
      return undefined;
    }
    // The shared rule set (text-rules.ts): controls, bidi, invisible/format characters never in a name.
    const bad = textViolation(s);
    if (bad) {
      const m = textViolationMessages(bad);
      issues.push(issue(field, `contains control characters: ${m.message}`, m.messageJa));
    }
    if ([...s].length > UB_NAME) issues.push(issue(field, `is longer than ${UB_NAME} characters (X.520)`, `${UB_NAME}文字を超えています`));
    return s;
  };

  const subscriberId = clean("subscriberId", raw.subscriberId, true);
  if (subscriberId && !isPrintableString(subscriberId)) {
    issues.push(issue("subscriberId", "must use only PrintableString characters (A-Z a-z 0-9 space ' ( ) + , - . / : = ?)", "英数字と一部の記号（PrintableString）のみ使用できます"));
  }
  const latin = clean("name.latin", raw.name.latin, true);
  let kanji = clean("name.kanji", raw.name.kanji, false)?.replace(KANJI_SEPARATOR, "\u3000");
  const orgLatin = clean("organization.latin", raw.organization?.latin, false);
  const orgKanji = clean("organization.kanji", raw.organization?.kanji, false);
  if (orgKanji && !orgLatin) issues.push(issue("organization.latin", "is required when organization.kanji is given", "組織名（漢字）を指定する場合は英字名も必須です"));

  let hcRole: string | undefined;
  let hcRoleEntry: HcRoleEntry | undefined;
  let director = false;
  if (profile.subscriber === "organization") {
    if (!orgLatin) issues.push(issue("organization.latin", "is required for an organization certificate", "組織用証明書では組織名が必須です"));
    if (raw.hcRole !== undefined) issues.push(issue("hcRole", "is not used in organization certificates", "組織用証明書には資格（hcRole）を記載しません"));
    if (kanji) issues.push(issue("name.kanji", "is not used in organization certificates", "組織用証明書には漢字氏名を記載しません"));
    kanji = undefined;
  } else {
    if (raw.dnsNames?.length) issues.push(issue("dnsNames", "host names are only for organization certificates", "ホスト名は組織用証明書にのみ記載します"));
    const sda = profileExtension(profile, "subjectDirectoryAttributes");
    const code = raw.hcRole?.normalize("NFC").trim();
    if (!code) {
      if (sda?.hcRole === "required") issues.push(issue("hcRole", "is required", "資格（hcRole）は必須です"));
    } else if (!sda) {
      issues.push(issue("hcRole", `profile ${profile.name} does not carry an hcRole`, `プロファイル ${profile.name} には資格を記載しません`));
    } else {
      const entry = hcRoles.get(code);
      if (!entry) {
        issues.push(issue("hcRole", `unknown hcRole "${code}"`, `未登録の資格です: ${code}`));
      } else {
        hcRole = code;
        hcRoleEntry = { kind: entry.kind, status: entry.status };
        director = entry.kind === "manager";
        if (director && !orgLatin) {
          issues.push(issue("organization.latin", `is required for the manager role "${code}" (subject O and OU=Director)`, "管理者資格では施設名（組織名）が必須です"));
        }
      }
    }
  }
  const dnsNames = profile.subscriber === "organization" ? checkDnsNames(raw.dnsNames ?? [], "dnsNames", issues) : [];
  if (issues.length) throw new SubjectError(issues);
  return {
    kind: profile.subscriber,
    ...(hcRole ? { hcRole, hcRoleEntry } : {}),
    subscriberId: subscriberId!,
    name: kanji ? { latin: latin!, kanji } : { latin: latin! },
    ...(orgLatin ? { organization: orgKanji ? { latin: orgLatin, kanji: orgKanji } : { latin: orgLatin } } : {}),
    director,
    ...(dnsNames.length ? { dnsNames } : {}),
  };
}

/**
 * `subject` with the host names `extra` (e.g. a CSR's subjectAltName dNSNames) added to its own,
 * normalised and deduplicated. Throws SubjectError when a name is not a valid host name, or when
 * the profile requires a dNSName (a serverAuth profile such as auth-org) and there is none.
 */
export function withDnsNames(subject: SubscriberSubject, profile: CertificateProfile, extra: readonly string[]): SubscriberSubject {
  const issues: SubjectIssue[] = [];
  const dnsNames = checkDnsNames([...(subject.dnsNames ?? []), ...extra], "dnsNames", issues);
  if (profileExtension(profile, "subjectAltName")?.dNSName === "required" && dnsNames.length === 0 && issues.length === 0) {
    issues.push(issue("dnsNames", `profile ${profile.name} needs at least one host name (subject dnsNames, or a CSR with subjectAltName DNS names)`, `プロファイル ${profile.name} ではホスト名が1つ以上必要です（主体者情報の dnsNames、または CSR の subjectAltName）`));
  }
  if (issues.length) throw new SubjectError(issues);
  return dnsNames.length ? { ...subject, dnsNames } : subject;
}

function checkDnsNames(names: readonly string[], field: string, issues: SubjectIssue[]): string[] {
  const out: string[] = [];
  names.forEach((n, i) => {
    const d = normalizeDnsName(n);
    const why = dnsNameProblem(d);
    if (why) issues.push(issue(`${field}[${i}]`, why.en, why.ja));
    else if (!out.includes(d)) out.push(d);
  });
  return out;
}

/** The subject DN fields of a subscriber (HPKI order C, O, OU, CN, serialNumber). */
export function subscriberNameFields(s: SubscriberSubject): { c: string; o?: string; ou?: string; cn: string; serialNumber: string } {
  return {
    c: "JP",
    ...(s.organization ? { o: s.organization.latin } : {}),
    ...(s.director ? { ou: "Director" } : {}),
    cn: s.name.latin,
    serialNumber: s.subscriberId,
  };
}

function issue(field: string, message: string, messageJa: string): SubjectIssue {
  return { field, message, messageJa };
}
