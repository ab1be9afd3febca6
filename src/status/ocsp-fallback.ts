/**
 * OCSP as the card verifier's fallback (issue 5 §2; RFC 6960): when the revocation index has no
 * current list for the issuer of a certificate on a login path, the verifier asks an OCSP
 * responder about that one certificate and keeps the verified answer here for a while.
 *
 * - Where: the certificate's authorityInfoAccess id-ad-ocsp http(s) URLs (RFC 5280 §4.2.2.1),
 *   else the configured responder URLs, tried in order until one gives a verified "good" or
 *   "revoked"; HTTP POST of application/ocsp-request (RFC 6960 Appendix A.1), one CertID (SHA-1 by
 *   default, RFC 5019 §2.1.1), a fresh 32-octet nonce unless turned off (RFC 8954), a per-request
 *   timeout, at most MAX_RESPONSE_BYTES read.
 * - What counts: only answers verifyOcspResponse (src/pki/ocsp-verify.ts) accepts — signed by the
 *   CA or its delegated OCSPSigning responder, CertID of this certificate, fresh, nonce echoed when
 *   echoed at all. "unknown", an error status, a timeout, a bad signature: no answer, and the
 *   verifier refuses with "revocation-unknown" (fail closed, always).
 * - Cache: per (issuer key id, serial), "good" and "revoked" alike, from thisUpdate − skew until
 *   min(nextUpdate, fetched + maxAgeMs) — a pre-signed response may already be hours old when it
 *   arrives (RFC 5019 §2.2), so the age bound counts from our fetch; without nextUpdate, until
 *   min(thisUpdate, fetched) + maxAgeMs. Bounded to `cacheEntries` (oldest out). Concurrent
 *   lookups of the same certificate share one request, so a login burst asks once.
 *
 * `status` is synchronous (a RevocationSource the path validator reads beside the index); only
 * `lookup` does I/O.
 */
import { randomBytes } from "node:crypto";
import { encodeOcspRequest, type CertIdHashAlgorithm } from "../pki/ocsp-request.ts";
import { encodeCertId, issuerHashes } from "../pki/ocsp-response.ts";
import { verifyOcspResponse, type OcspQuestion, type VerifiedOcspAnswer } from "../pki/ocsp-verify.ts";
import { OID } from "../pki/oids.ts";
import type { RevocationSource, RevocationStatus } from "../pki/revocation-index.ts";
import { decodeAuthorityInfoAccessOcsp, type ParsedCertificate } from "../pki/x509-parse.ts";

export interface OcspFallbackOptions {
  /** Responder URLs (http/https) asked for a certificate without an AIA id-ad-ocsp URL. */
  responders?: string[];
  /** Timeout of one OCSP request (connect to last octet), ms; default 5,000. */
  timeoutMs?: number;
  /** Longest a verified answer is relied on after it was fetched, ms; default 3,600,000 (1 h). */
  maxAgeMs?: number;
  /** Allowed clock skew: thisUpdate / producedAt may be this far in the future, ms; default 120,000. */
  skewMs?: number;
  /** Send a nonce (RFC 8954, 32 octets); default true. Our repository answers a nonce with a live signature. */
  nonce?: boolean;
  /** CertID hash algorithm of the request; default "sha1" (RFC 5019 §2.1.1). Answers with either are accepted. */
  certIdHash?: CertIdHashAlgorithm;
  /** Verified answers kept; default 10,000. */
  cacheEntries?: number;
  /** Status of a delegated responder certificate that lacks id-pkix-ocsp-nocheck (normally the revocation index). */
  responderRevocation?: RevocationSource;
  now?: () => Date;
}

/** Most octets read from a responder: responses are a few KB (certs included). */
export const MAX_RESPONSE_BYTES = 256 * 1024;

interface CachedAnswer {
  status: "good" | "revoked";
  /** Valid from / until, ms since the epoch. */
  from: number;
  until: number;
}

export class OcspFallback implements RevocationSource {
  private readonly cache = new Map<string, CachedAnswer>();
  private readonly inFlight = new Map<string, Promise<string | undefined>>();
  private readonly now: () => Date;
  private readonly maxAgeMs: number;
  private readonly skewMs: number;

  constructor(private readonly opts: OcspFallbackOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    this.maxAgeMs = opts.maxAgeMs ?? 3_600_000;
    this.skewMs = opts.skewMs ?? 120_000;
    for (const u of opts.responders ?? []) if (!isHttpUrl(u)) throw new Error(`OCSP responder URL must be http(s): ${u}`);
  }

  /** The cached verified answer for `serial` (magnitude) of issuer `issuerKeyId` at `at`; "unknown" when there is none. */
  status(issuerKeyId: string, serial: Uint8Array, at: Date): RevocationStatus {
    if (this.cache.size === 0) return "unknown";
    const c = this.cache.get(cacheKey(issuerKeyId, serial));
    if (!c) return "unknown";
    const t = at.getTime();
    return t < c.from || t > c.until ? "unknown" : c.status;
  }

  /** Cached answers held now (expired ones included until evicted or replaced). */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Asks the responders about `q.certificate` (issued by `q.issuer`) and caches a verified "good"
   * or "revoked". Resolves to undefined on success, else to why no answer could be used (one
   * reason per URL tried); never rejects. Lookups of the same certificate in flight share one run.
   */
  lookup(q: OcspQuestion): Promise<string | undefined> {
    const key = cacheKey(q.issuer.keyId, q.certificate.serial);
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.ask(q, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, p);
    }
    return p;
  }

  private async ask(q: OcspQuestion, key: string): Promise<string | undefined> {
    const urls = responderUrls(q.certificate, this.opts.responders ?? []);
    if (urls.length === 0) return "no responder (no authorityInfoAccess id-ad-ocsp URL, none configured)";
    const hash = this.opts.certIdHash ?? "sha1";
    const h = issuerHashes(hash, q.issuer.cert.subject, q.issuer.cert.spki);
    const certId = encodeCertId(hash, h.issuerNameHash, h.issuerKeyHash, q.certificate.serial);
    const reasons: string[] = [];
    for (const url of urls) {
      try {
        const nonce = this.opts.nonce === false ? undefined : randomBytes(32);
        const der = await postOcsp(url, encodeOcspRequest([certId], nonce), this.opts.timeoutMs ?? 5_000);
        const fetched = this.now();
        const answer = verifyOcspResponse(der, q, {
          at: fetched,
          nonce,
          skewMs: this.skewMs,
          maxAgeWithoutNextUpdateMs: this.maxAgeMs,
          responderRevocation: this.opts.responderRevocation,
        });
        if (answer.status === "unknown") {
          reasons.push(`${url}: the responder does not know the certificate (unknown)`);
          continue;
        }
        this.remember(key, answer.status, answer, fetched);
        return undefined;
      } catch (e) {
        reasons.push(`${url}: ${(e as Error).message}`);
      }
    }
    return reasons.join("; ");
  }

  private remember(key: string, status: "good" | "revoked", a: VerifiedOcspAnswer, fetched: Date): void {
    const thisUpdate = a.thisUpdate.getTime();
    const byAge = Math.min(thisUpdate, fetched.getTime()) + this.maxAgeMs;
    const until = Math.min(a.nextUpdate ? a.nextUpdate.getTime() : byAge, fetched.getTime() + this.maxAgeMs);
    this.cache.delete(key);
    this.cache.set(key, { status, from: thisUpdate - this.skewMs, until });
    if (this.cache.size > (this.opts.cacheEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
  }
}

const cacheKey = (issuerKeyId: string, serial: Uint8Array) => `${issuerKeyId}:${Buffer.from(serial.buffer, serial.byteOffset, serial.byteLength).toString("hex")}`;

const isHttpUrl = (u: string) => /^https?:\/\//i.test(u);

/** The certificate's AIA OCSP http(s) URLs, else `configured`. */
export function responderUrls(cert: ParsedCertificate, configured: readonly string[]): string[] {
  const aia = cert.extensions.get(OID.authorityInfoAccess);
  let urls: string[] = [];
  if (aia) {
    try {
      urls = decodeAuthorityInfoAccessOcsp(aia.value).filter(isHttpUrl);
    } catch {
      urls = []; // an unreadable AIA points nowhere; the configured responders still may answer
    }
  }
  return urls.length ? urls : [...configured];
}

/**
 * POSTs `request` to `url` (RFC 6960 Appendix A.1) and returns the body of a 200 answer, at most
 * MAX_RESPONSE_BYTES, within `timeoutMs` overall. @throws Error on a network error, timeout, other
 * status or oversize body.
 */
async function postOcsp(url: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/ocsp-request", Accept: "application/ocsp-response" },
    body: new Uint8Array(request),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body ?? []) {
    n += chunk.length;
    if (n > MAX_RESPONSE_BYTES) throw new Error(`response larger than ${MAX_RESPONSE_BYTES} octets`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
