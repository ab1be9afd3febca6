/**
 * Finding and checking readers before encrypting (issue 15 §4): the repository's directory
 * (GET /directory/enc) names the candidate encryption certificates; the sender then validates
 * each one itself — chain to the configured trust anchor (RFC 5280 §6.1), the `enc` profile's
 * policy and keyAgreement, validity, and revocation from the CRLs of the repository (RFC 5280
 * §6.3; the issuing CA's CRL and the root's ARL) — and refuses a revoked, expired or otherwise
 * invalid certificate. The directory is a search, not a status statement.
 */
import { MESSAGES, PathValidationError, TrustStore, validateCertificatePath, type PathValidationPolicy } from "../pki/path-validation.ts";
import { profileExtension, type CertificateProfile } from "../pki/profile.ts";
import { RevocationIndex } from "../pki/revocation-index.ts";
import { verifiedCrlRevocations } from "../pki/crl-verify.ts";
import { OID } from "../pki/oids.ts";
import { decodeKeyUsage, parseCertificate, type ParsedCertificate } from "../pki/x509-parse.ts";

export interface DirectoryEntry {
  subscriberId: string | null;
  hcRole: string | null;
  profile: string;
  ca: string;
  serialHex: string;
  certificate: string;
  issuer: string;
}

/** A refused reader: why, in English and Japanese. */
export class RecipientRefusedError extends Error {
  readonly code = "RECIPIENT_REFUSED";
  constructor(readonly subscriberId: string, message: string, readonly messageJa: string) {
    super(message);
  }
}

/** The end-entity policy of profile `enc` (professionals): certificatePolicies of the profile, keyAgreement. */
export function encryptionPolicy(profile: CertificateProfile | undefined): PathValidationPolicy {
  const cp = profile ? profileExtension(profile, "certificatePolicies") : undefined;
  if (!cp) throw new Error("no `enc` certificate profile with certificatePolicies in the policies directory / 暗号化用証明書のプロファイルがありません");
  return { endEntityPolicy: cp.policies[0].oid, keyUsage: "keyAgreement" };
}

/** Searches the directory of `repoUrl`. */
export async function searchDirectory(repoUrl: string, q: { subscriber?: string; facility?: string; hcRole?: string }): Promise<DirectoryEntry[]> {
  const u = new URL(`${repoUrl.replace(/\/+$/, "")}/directory/enc`);
  for (const [k, v] of Object.entries(q)) if (v) u.searchParams.set(k, v);
  const res = await fetch(u);
  if (!res.ok) throw new Error(`directory ${u}: HTTP ${res.status}`);
  return ((await res.json()) as { certificates: DirectoryEntry[] }).certificates;
}

function cdpUrls(cert: ParsedCertificate): string[] {
  const ext = cert.extensions.get(OID.cRLDistributionPoints);
  if (!ext) return [];
  // The URIs are IA5String GeneralNames ([6] uniformResourceIdentifier): read them as text.
  return [...Buffer.from(ext.value).toString("latin1").matchAll(/https?:\/\/[\x21-\x7e]+?\.crl/g)].map((m) => m[0]);
}

/** The CRL at `url`, fetched from the repository `repoUrl` (same path: certificates carry the production URL). */
async function fetchCrl(repoUrl: string, url: string): Promise<Uint8Array> {
  const u = new URL(url);
  const res = await fetch(`${repoUrl.replace(/\/+$/, "")}${u.pathname}`);
  if (!res.ok) throw new Error(`CRL ${u.pathname}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The certificates to encrypt to for `subscriberId`: the directory's candidates that pass
 * validation now (at least one). @throws RecipientRefusedError naming the reason (revoked,
 * expired, untrusted, no certificate); Error on a network failure.
 */
export async function validatedRecipient(repoUrl: string, subscriberId: string, anchors: Uint8Array[], policy: PathValidationPolicy, at = new Date()): Promise<Uint8Array> {
  const found = (await searchDirectory(repoUrl, { subscriber: subscriberId })).filter((e) => e.profile === "enc");
  if (found.length === 0) {
    throw new RecipientRefusedError(subscriberId, `${subscriberId}: no valid encryption certificate in the directory`, `${subscriberId}: 有効な暗号化用証明書がディレクトリにありません`);
  }
  let last: PathValidationError | undefined;
  for (const e of found) {
    const der = new Uint8Array(Buffer.from(e.certificate, "base64"));
    const issuer = new Uint8Array(Buffer.from(e.issuer, "base64"));
    const store = new TrustStore(anchors, [issuer]);
    const index = new RevocationIndex();
    for (const cert of [parseCertificate(der), parseCertificate(issuer)]) {
      for (const url of cdpUrls(cert)) {
        try {
          const v = verifiedCrlRevocations(await fetchCrl(repoUrl, url), store, url);
          index.set(v.issuerKeyId, v.list);
        } catch {
          // An unreachable or bad CRL leaves the status unknown: validation fails closed below.
        }
      }
    }
    try {
      const path = validateCertificatePath(der, store, policy, at, index);
      const ku = path.leaf.extensions.get(OID.keyUsage);
      if (!ku || !decodeKeyUsage(ku.value).has("keyAgreement")) throw new PathValidationError("wrong-key-usage", "keyUsage must include keyAgreement");
      return der;
    } catch (err) {
      if (!(err instanceof PathValidationError)) throw err;
      last = err;
    }
  }
  const m = MESSAGES[last!.code];
  throw new RecipientRefusedError(subscriberId, `${subscriberId}: encryption certificate refused — ${m.en} (${last!.detail})`, `${subscriberId}: 暗号化用証明書を使えません — ${m.ja}`);
}
