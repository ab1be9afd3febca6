/**
 * Validation of a patient's JPKI 利用者証明用電子証明書 at registration (issue 15 §8): the path to
 * the configured J-LIS trust anchors (HPKI_JPKI_ANCHORS) and revocation from the configured CRLs
 * (HPKI_JPKI_CRLS, files or http(s) URLs), with the project's path validation (RFC 5280 §6.1,
 * src/pki/path-validation.ts) and CRL verification (§6.3.3, src/pki/crl-verify.ts). Fail closed:
 * no anchors → every registration is refused; no current CRL for the issuer → "revocation-unknown".
 * A CRL source is read again when its last read is older than `refreshMs` or its list is past
 * nextUpdate; a failed read keeps the previous list (which fails closed at its nextUpdate).
 */
import fs from "node:fs";
import { verifiedCrlRevocations } from "../pki/crl-verify.ts";
import { JPKI_AUTH_POLICY } from "../pki/jpki.ts";
import { PathValidationError, TrustStore, validateCertificatePath, type ValidatedPath } from "../pki/path-validation.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { RevocationIndex } from "../pki/revocation-index.ts";

export interface JpkiVerifierOptions {
  /** J-LIS CA certificates (PEM or DER): the trust anchors. */
  anchors: Uint8Array[];
  /** CRL sources: file paths or http(s) URLs (DER or PEM). */
  crls: string[];
  /** Read a source again after this long, ms (default 600,000). */
  refreshMs?: number;
}

export class JpkiVerifier {
  private readonly store: TrustStore;
  private readonly index = new RevocationIndex();
  private readonly readAt = new Map<string, number>();

  constructor(private readonly opts: JpkiVerifierOptions) {
    this.store = new TrustStore(opts.anchors.map((a) => fromPemOrDer(a)));
  }

  /** From the configuration (cfg.pobox.jpkiAnchorFiles / jpkiCrls). */
  static fromFiles(anchorFiles: string[], crls: string[]): JpkiVerifier {
    return new JpkiVerifier({ anchors: anchorFiles.map((f) => fs.readFileSync(f)), crls });
  }

  /** Whether any anchor is configured (without one the box refuses patient registration). */
  get configured(): boolean {
    return this.store.all().length > 0;
  }

  private async refresh(at: Date): Promise<void> {
    const every = this.opts.refreshMs ?? 600_000;
    for (const src of this.opts.crls) {
      const last = this.readAt.get(src);
      const stale = this.store.all().some((ca) => {
        const l = this.index.get(ca.keyId, src);
        return l !== undefined && l.goodUntil.getTime() < at.getTime();
      });
      if (last !== undefined && at.getTime() - last < every && !stale) continue;
      try {
        const der = /^https?:\/\//.test(src) ? await fetchBytes(src) : fs.readFileSync(src);
        const v = verifiedCrlRevocations(fromPemOrDer(der, "X509 CRL"), this.store, src);
        const prev = this.index.get(v.issuerKeyId, src);
        if (!prev || prev.thisUpdate.getTime() <= v.list.thisUpdate.getTime()) this.index.set(v.issuerKeyId, v.list);
        this.readAt.set(src, at.getTime());
      } catch (e) {
        process.stderr.write(`hpki pobox: JPKI CRL ${src}: ${(e as Error).message}\n`);
      }
    }
  }

  /**
   * Validates `certDer` as a JPKI authentication certificate at `at` (path, validity, revocation,
   * keyUsage digitalSignature, the JPKI auth policy). @throws PathValidationError.
   */
  async verify(certDer: Uint8Array, at = new Date()): Promise<ValidatedPath> {
    if (!this.configured) throw new PathValidationError("untrusted-issuer", "no J-LIS trust anchor configured (HPKI_JPKI_ANCHORS)");
    await this.refresh(at);
    return validateCertificatePath(certDer, this.store, JPKI_AUTH_POLICY, at, this.index);
  }
}

async function fetchBytes(url: string): Promise<Buffer> {
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}
