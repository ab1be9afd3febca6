/**
 * Production start check of the URLs certificates would carry (issue 11 §4): every CA's CRL URL
 * (certificate_authorities.crl_url, written into the certificates it issues) and every profile's
 * CPS, CRLDP and AIA templates expanded with the deployment's repository URL must name a public DNS
 * host — not localhost, loopback or an IP address (src/pki/public-url.ts). The lint checks the same
 * on every certificate at issuance; this refuses at start, before any request waits on it.
 */
import type { Knex } from "knex";
import { HpkiError } from "../pipeline/errors.ts";
import type { CertificateProfile } from "../pki/profile.ts";
import { certificateUrlProblem } from "../pki/public-url.ts";
import { expandTemplate, type CertificateUrls } from "../pki/tbs.ts";

/** Where each URL comes from, and the URL. */
export function configuredCertificateUrls(profiles: Iterable<CertificateProfile>, caRows: { name: string; crl_url: string | null }[], urls: CertificateUrls): { where: string; url: string }[] {
  const out: { where: string; url: string }[] = [];
  for (const ca of caRows) if (ca.crl_url) out.push({ where: `CA ${ca.name} CRL URL`, url: ca.crl_url });
  const names = caRows.length ? caRows.map((c) => c.name) : ["ca"];
  for (const p of profiles) {
    for (const e of p.extensions) {
      const templates =
        e.name === "certificatePolicies" ? e.policies.flatMap((q) => (q.cpsUri ? [q.cpsUri] : []))
        : e.name === "cRLDistributionPoints" ? (e.urlTemplate ? [e.urlTemplate] : [])
        : e.name === "authorityInfoAccess" ? [e.ocspUrlTemplate]
        : [];
      for (const t of templates) {
        for (const url of new Set(names.map((caName) => expandTemplate(t, { caName, repoUrl: urls.repoUrl })))) out.push({ where: `${p.source} ${e.name}`, url });
      }
    }
  }
  return out;
}

/**
 * In production (urls.publicUrlsOnly) throws HpkiError (code url_not_public, both languages)
 * listing every certificate URL that does not name a public DNS host; otherwise does nothing.
 */
export async function assertPublicCertificateUrls(db: Knex, profiles: ReadonlyMap<string, CertificateProfile>, urls: CertificateUrls): Promise<void> {
  if (!urls.publicUrlsOnly) return;
  const cas = await db("certificate_authorities").select("name", "crl_url");
  const bad = configuredCertificateUrls(profiles.values(), cas, urls).flatMap(({ where, url }) => {
    const why = certificateUrlProblem(url);
    return why ? [{ where, why }] : [];
  });
  if (bad.length === 0) return;
  throw new HpkiError(
    `production mode refuses these certificate URLs:\n${bad.map((b) => `  ${b.where}: ${b.why.en}`).join("\n")}`,
    `本番モードでは次の証明書 URL は使用できません:\n${bad.map((b) => `  ${b.where}: ${b.why.ja}`).join("\n")}`,
    500,
    "url_not_public",
  );
}
