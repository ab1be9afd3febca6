/**
 * Is a URL fit to be written into a production certificate (CRL distribution point, CPS, AIA/OCSP)?
 * Relying parties anywhere fetch these URLs for the certificate's whole lifetime, so they must name
 * a public DNS host: not `localhost` (RFC 6761 §6.3), not a loopback or any other literal IP
 * address (addresses change hands; certificates outlive them), not a single-label name.
 */

/** `{repoUrl}` when the issuer context names none: where `hpki demo` serves its repository. */
export const DEMO_REPO_URL = "http://localhost:8080";

/** Why `url` may not go into a production certificate, in English and Japanese; undefined = fine. */
export function certificateUrlProblem(url: string): { en: string; ja: string } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { en: `${url} is not a URL`, ja: `${url} は URL ではありません` };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return { en: `${url}: only http and https URLs are fetched by relying parties`, ja: `${url}: http または https の URL のみ使用できます` };
  }
  const host = u.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) {
    return { en: `${url} names localhost, which no relying party can reach`, ja: `${url} は localhost を指しており、検証者から到達できません` };
  }
  if (/^\[.*\]$/.test(host) || /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || /^\d+$/.test(host)) {
    return { en: `${url} names an IP address; certificates must name a DNS host`, ja: `${url} は IP アドレスを指しています。証明書には DNS ホスト名を記載してください` };
  }
  if (!host.includes(".")) {
    return { en: `${url} names the single-label host "${host}", not a public DNS name`, ja: `${url} のホスト名 "${host}" は公開 DNS 名ではありません` };
  }
  return undefined;
}
