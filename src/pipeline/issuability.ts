/**
 * "What is approved can be issued" (issue 12 §1): a dry run of issuance for an application, run
 * by the desks at intake and at RA approval. For every requested profile it builds the subject
 * (parseSubscriberSubject), the tbsCertificate (compileTbsTemplate) and lints it (lintTbsCertificate)
 * — the very engine the IA uses (src/ia/issuance.ts prepare) — and reports each problem under the
 * application form field it comes from, in Japanese and English. Pure: nothing is read, stored or
 * signed. The issuer is a placeholder (the real CA is the IA's), and the subjectPublicKey a
 * throwaway software key of the profile's first key algorithm: what is checked is the applicant's
 * data against the profile, not the CA.
 */
import { generateKeyPairSync } from "node:crypto";
import { lintTbsCertificate } from "../pki/lint.ts";
import { encodeHpkiName } from "../pki/name.ts";
import type { CertificateProfile, KeyAlgorithmName } from "../pki/profile.ts";
import { parseSubscriberSubject, SubjectError, type HcRoleEntry } from "../pki/subject.ts";
import { compileTbsTemplate, TbsError, type IssuerContext } from "../pki/tbs.ts";
import { computeValidity } from "../pki/validity.ts";
import type { FieldIssue } from "./errors.ts";
import { subscriberSubjectJson } from "./subscriber-subject.ts";

/** An `applications` row, or the columns of a validated form (applicationColumns). */
type ApplicationFields = Record<string, unknown>;

/** One reason the application could not be issued: the form field (input name), bilingual text. */
export type IssuabilityProblem = FieldIssue & { profile: string };

/** What the dry run needs of the policies (loadPolicies()): profiles and the hcRole table. */
export interface IssuabilityPolicies {
  profiles: ReadonlyMap<string, CertificateProfile>;
  hcRoles: ReadonlyMap<string, HcRoleEntry>;
}

/** Subject JSON path → the application form field, its label in Japanese and English. */
const FORM_FIELDS: Record<string, { field: string; ja: string; en: string }> = {
  "organization.latin": { field: "organizationLatin", ja: "施設名（英字）", en: "organisation name (Latin)" },
  "organization.kanji": { field: "organizationKanji", ja: "施設名（漢字）", en: "organisation name (kanji)" },
  "name.latin": { field: "nameLatin", ja: "氏名（ローマ字）", en: "name (Latin)" },
  "name.kanji": { field: "nameKanji", ja: "氏名（漢字）", en: "name (kanji)" },
  subscriberId: { field: "subscriberId", ja: "加入者ID", en: "subscriber identifier" },
};

/** The form field a subject JSON path comes from (hcRole: the manager role if any, else the qualification); exported for the RA's explanation of IA failures. */
export function formField(path: string, app: ApplicationFields): { field: string; ja: string; en: string } {
  if (path === "hcRole") {
    return app.manager_role
      ? { field: "managerRole", ja: "管理者資格", en: "manager role" }
      : { field: "qualification", ja: "資格", en: "qualification" };
  }
  return FORM_FIELDS[path] ?? { field: path, ja: path, en: path };
}

/** Japanese names of the subscriber profiles, for messages ("sign証明書" reads as an error code). */
const PROFILE_JA: Record<string, string> = { sign: "署名用", "auth-person": "認証用" };

/** The subject engine speaks of 組織名 (O); the form of 施設名: say it in the form's words. */
function inFormWords(messageJa: string): string {
  return messageJa.replace(/組織名（(漢字|英字)）/g, "施設名（$1）");
}

/** Placeholder for an application not yet given its subscriber identifier (assigned at RA approval). */
export const PLACEHOLDER_SUBSCRIBER_ID = "HP00000000";

/**
 * Dry-runs issuance of `profiles` for application row `app` (an `applications` row, or the
 * columns of a validated form: applicationColumns). A row without subscriber_id gets
 * PLACEHOLDER_SUBSCRIBER_ID. `now` sets the validity computed. @returns every problem found,
 * empty when each profile would build and lint clean. Never throws on bad application data;
 * throws only when a profile name is not in `policies` (a deployment error, not the applicant's).
 */
export function issuabilityProblems(app: ApplicationFields, profiles: readonly string[], policies: IssuabilityPolicies, now: Date = new Date()): IssuabilityProblem[] {
  const row: ApplicationFields = { ...app, subscriber_id: app.subscriber_id ?? PLACEHOLDER_SUBSCRIBER_ID };
  const out: IssuabilityProblem[] = [];
  for (const name of profiles) {
    const profile = policies.profiles.get(name);
    if (!profile) throw new Error(`profile ${name} is not in policies/profiles`);
    try {
      const subject = parseSubscriberSubject(subscriberSubjectJson(row), profile, policies.hcRoles);
      const issuer = placeholderIssuer(profile);
      const tbs = compileTbsTemplate(profile, issuer)({
        serialNumber: Buffer.from([1]),
        subject: { kind: "subscriber", subject },
        subjectPublicKeyInfo: throwawaySpki(profile.keyAlgorithms[0]),
        validity: computeValidity(profile, now),
      });
      for (const v of lintTbsCertificate(tbs, profile, issuer)) {
        out.push({
          profile: name, field: "(certificate)",
          message: `The ${name} certificate would fail the profile check [${v.code}]: ${v.message}`,
          messageJa: `${name} 証明書がプロファイル検査に合格しません［${v.code}］。申込内容を確認してください。`,
        });
      }
    } catch (e) {
      if (e instanceof SubjectError) {
        for (const i of e.issues) {
          const f = formField(i.field, app);
          out.push({
            profile: name, field: f.field,
            message: `${f.en}: ${i.message} (the ${name} certificate could not be issued)`,
            messageJa: `${f.ja}：${inFormWords(i.messageJa)}（このままでは${PROFILE_JA[name] ?? name}証明書を発行できません）`,
          });
        }
      } else if (e instanceof TbsError) {
        out.push({
          profile: name, field: "(certificate)",
          message: `The ${name} certificate could not be built: ${e.message}`,
          messageJa: `${name} 証明書を作成できません。申込内容を確認してください（${e.message}）。`,
        });
      } else {
        throw e;
      }
    }
  }
  return dedupe(out);
}

/** One problem per (field, message): the same gap found by two profiles is said once. */
function dedupe(problems: IssuabilityProblem[]): IssuabilityProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.field}\0${p.message.replace(/\(the .* certificate could not be issued\)$/, "")}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const DRY_RUN_CA = encodeHpkiName({ c: "JP", o: "HPKI dry run", cn: "HPKI dry run CA" });
const issuers = new WeakMap<CertificateProfile, IssuerContext>();

/** A self-consistent stand-in for the signing CA (the lint compares the tbs against it). */
function placeholderIssuer(profile: CertificateProfile): IssuerContext {
  let ctx = issuers.get(profile);
  if (!ctx) {
    ctx = {
      caName: "dry-run", name: DRY_RUN_CA, keyIdentifier: Buffer.alloc(20, 1),
      authorityCertIssuer: DRY_RUN_CA, authorityCertSerialNumber: Buffer.from([1]),
      signatureAlgorithm: profile.signatureAlgorithms[0],
    };
    issuers.set(profile, ctx);
  }
  return ctx;
}

const spkis = new Map<KeyAlgorithmName, Buffer>();

/** SubjectPublicKeyInfo DER of a throwaway software key (generated once per algorithm, never used to sign). */
function throwawaySpki(alg: KeyAlgorithmName): Buffer {
  let der = spkis.get(alg);
  if (!der) {
    const pair = alg.startsWith("RSA-")
      ? generateKeyPairSync("rsa", { modulusLength: Number(alg.slice(4)) })
      : generateKeyPairSync("ec", { namedCurve: alg === "P-256" ? "prime256v1" : "secp384r1" });
    der = pair.publicKey.export({ type: "spki", format: "der" });
    spkis.set(alg, der);
  }
  return der;
}
