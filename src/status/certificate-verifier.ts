/**
 * The card-login verifier (DESIGN §7, issue 5): one object, used by the SSO center's
 * signed-challenge login, TLS client authentication and proxy header alike, and by the consoles'
 * operator card sign-in (src/card-login/card-login.ts) — a neutral module, so neither role imports
 * the other. It holds
 *
 * - the TrustStore: our own CAs from `certificate_authorities` (roots as anchors, issuing CAs as
 *   intermediates) plus the foreign HPKI anchors / CA certificates an operator configures;
 * - the RevocationIndex, kept current from (a) our `revocations` table — a full read at start and
 *   every `fullRefreshEvery` refreshes, and in between only rows added or re-revoked since the
 *   last read (keyset by id, plus revoked_at inside an overlap window) — and (b) CRLs of foreign
 *   CAs, loaded from files or fetched over HTTP and verified against the store (each source again
 *   after foreignCrlRefreshMs, a failed one at the next refresh; never replaced by an older CRL).
 *
 * Fail closed: our lists are good for `maxStalenessMs` after a successful read, a CRL until its
 * nextUpdate. After that, or with no list for an issuer, the verifier asks OCSP about exactly the
 * certificate whose issuer has no current list (OcspFallback, ocsp-fallback.ts: the certificate's
 * AIA responder, else `ocspResponders`; verified answers cached), unless `ocspFallback` is false;
 * with no verified "good"/"revoked" answer the login is refused with "revocation-unknown". A
 * "revoked" from either source refuses. A released certificateHold stays refused until the next
 * full read (errs on the safe side).
 */
import fs from "node:fs";
import type { Knex } from "knex";
import { verifiedCrlRevocations } from "../pki/crl-verify.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import {
  AUTH_PERSON_POLICY,
  issuerKeyId,
  PathValidationError,
  TrustStore,
  validateCertificatePath,
  type PathValidationPolicy,
  type ValidatedPath,
} from "../pki/path-validation.ts";
import {
  DigestListBuilder,
  mergeDigests,
  RevocationIndex,
  type RevocationSource,
  type RevocationStatus,
} from "../pki/revocation-index.ts";
import { parseCertificate } from "../pki/x509-parse.ts";
import { toBuffer } from "../store/rows.ts";
import { certificateIdentity, type CertificateIdentity } from "./certificate-identity.ts";
import { LeafMemo } from "./leaf-memo.ts";
import { OcspFallback, type OcspFallbackOptions } from "./ocsp-fallback.ts";

export interface CardLoginVerifierOptions {
  db: Knex;
  /** Other HPKI trust anchors (self-signed roots), DER or PEM. */
  foreignAnchors?: Uint8Array[];
  /** CA certificates below those anchors (issuing CAs), DER or PEM. */
  foreignCas?: Uint8Array[];
  /** CRL sources for foreign CAs: file paths or http(s) URLs (DER). */
  foreignCrls?: string[];
  /** A foreign CRL source is read again after this long, ms (default 900,000; always on a full refresh). */
  foreignCrlRefreshMs?: number;
  /** How long a read of our revocations table may be relied on, ms (default 120,000). */
  maxStalenessMs?: number;
  /** Background refresh period, ms (default 30,000); 0 = none (call refresh()). */
  refreshIntervalMs?: number;
  /** A full re-read of our revocations every N refreshes (default 60). */
  fullRefreshEvery?: number;
  /** OCSP responder URLs (http/https) for certificates without an AIA id-ad-ocsp URL. */
  ocspResponders?: string[];
  /** Ask OCSP when the index has no current list for an issuer (default true); false: the index alone. */
  ocspFallback?: boolean;
  /** OCSP request and cache settings (defaults in OcspFallbackOptions: 5 s timeout, 1 h max age, nonce on). */
  ocsp?: Omit<OcspFallbackOptions, "responders" | "now" | "responderRevocation">;
  /**
   * Remember certificates already validated — their parse, names and signature, never their
   * validity or revocation — (default true); false: each verification starts from the DER (the
   * benchmark's first-login figure).
   */
  rememberCertificates?: boolean;
  /** What a login certificate must be (default AUTH_PERSON_POLICY). */
  policy?: PathValidationPolicy;
  now?: () => Date;
  /** Where refresh errors go (default: stderr). */
  onError?: (e: Error) => void;
}

/** A certificate that passed the verifier, and the person it names. */
export interface VerifiedLogin {
  path: ValidatedPath;
  identity: CertificateIdentity;
}

/** Overlap when re-reading by revoked_at: covers clock skew between application servers. */
const REVOKED_AT_OVERLAP_MS = 10 * 60_000;
const PAGE = 100_000;
/** OCSP rounds per verification: one per non-anchor certificate of the longest path (MAX_PATH − 1). */
const MAX_OCSP_ROUNDS = 3;

export class CardLoginVerifier {
  private store: TrustStore = new TrustStore([]);
  readonly index = new RevocationIndex();
  /** The OCSP fallback, unless turned off (ocspFallback: false). */
  readonly ocsp: OcspFallback | undefined;
  /** What path validation reads: the index, and the OCSP answers when the fallback is on. */
  private readonly revocation: RevocationSource;
  private caKeyIds = new Map<number, string>();
  private lastId = 0;
  private lastRead = new Date(0);
  private refreshes = 0;
  private readonly crlReadAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * Parsed login certificates and their identities (the checks themselves run every time; the
   * trust store remembers a verified signature with the parsed object). None: rememberCertificates false.
   */
  private readonly leaves: LeafMemo | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => Date;
  private readonly policy: PathValidationPolicy;

  private constructor(private readonly opts: CardLoginVerifierOptions) {
    this.now = opts.now ?? (() => new Date());
    this.policy = opts.policy ?? AUTH_PERSON_POLICY;
    this.leaves = opts.rememberCertificates === false ? undefined : new LeafMemo();
    if (opts.ocspFallback === false) {
      this.revocation = this.index;
    } else {
      const ocsp = new OcspFallback({ ...opts.ocsp, responders: opts.ocspResponders, now: this.now, responderRevocation: this.index });
      this.ocsp = ocsp;
      this.revocation = { status: (k, s, at) => combined(this.index.status(k, s, at), ocsp, k, s, at) };
    }
  }

  /** Loads trust and revocation state, then refreshes every refreshIntervalMs. Throws on a bad configured certificate. */
  static async open(opts: CardLoginVerifierOptions): Promise<CardLoginVerifier> {
    const v = new CardLoginVerifier(opts);
    await v.refresh({ full: true });
    const every = opts.refreshIntervalMs ?? 30_000;
    if (every > 0) {
      v.timer = setInterval(() => {
        v.refresh().catch((e: Error) => (opts.onError ?? ((x: Error) => process.stderr.write(`card verifier: revocation refresh failed: ${x.message}\n`)))(e));
      }, every);
      v.timer.unref();
    }
    return v;
  }

  /**
   * Brings trust anchors and revocation lists up to date. `full` re-reads everything (also done
   * every fullRefreshEvery calls). Concurrent calls share one run. Throws on database errors; a
   * failing foreign CRL source keeps its previous list (which fails closed at its nextUpdate).
   */
  refresh(o: { full?: boolean } = {}): Promise<void> {
    this.running ??= this.doRefresh(o.full ?? false).finally(() => (this.running = undefined));
    return this.running;
  }

  private async doRefresh(forceFull: boolean): Promise<void> {
    const full = forceFull || this.refreshes % (this.opts.fullRefreshEvery ?? 60) === 0;
    this.refreshes++;
    const readAt = this.now();
    if (full) await this.loadTrust();
    await this.loadOwnRevocations(full, readAt);
    await this.loadForeignCrls(full, readAt);
  }

  private async loadTrust(): Promise<void> {
    const rows = await this.opts.db("certificate_authorities").select("id", "kind", "certificate");
    const anchors = rows.filter((r) => r.kind === "root").map((r) => toBuffer(r.certificate));
    const cas = rows.filter((r) => r.kind !== "root").map((r) => toBuffer(r.certificate));
    const pem = (b: Uint8Array) => fromPemOrDer(b);
    this.store = new TrustStore([...anchors, ...(this.opts.foreignAnchors ?? []).map(pem)], [...cas, ...(this.opts.foreignCas ?? []).map(pem)]);
    this.caKeyIds = new Map(rows.map((r) => [Number(r.id), issuerKeyId(parseCertificate(toBuffer(r.certificate)).spki)]));
  }

  private async loadOwnRevocations(full: boolean, readAt: Date): Promise<void> {
    const db = this.opts.db;
    const builders = new Map<number, DigestListBuilder>();
    for (const caId of this.caKeyIds.keys()) builders.set(caId, new DigestListBuilder(full ? 1024 : 16));
    const since = new Date(this.lastRead.getTime() - REVOKED_AT_OVERLAP_MS);
    let after = full ? 0 : this.lastId;
    let maxId = this.lastId;
    // New rows by keyset on id; on an incremental read also re-revocations of released holds
    // (the same row updated, revoked_at moved to the new revocation time).
    const extra = full ? [] : await db("revocations").whereNull("released_at").where("revoked_at", ">", since).where("id", "<=", this.lastId).select("ca_id", "serial");
    for (const r of extra) builders.get(Number(r.ca_id))?.add(toBuffer(r.serial));
    // The database computes the digests (serialDigest: first 8 octets of SHA-256 of the serial
    // magnitude, stored without leading zero octets) and hands back one bytea per CA and page, so
    // a million entries cost 20 rows of JS objects rather than a million.
    for (;;) {
      const { rows } = await db.raw(
        `SELECT ca_id, max(id) AS last_id, string_agg(substr(sha256(serial), 1, 8), ''::bytea) AS digests
           FROM (SELECT id, ca_id, serial FROM revocations WHERE id > ? AND released_at IS NULL ORDER BY id LIMIT ?) page
          GROUP BY ca_id`,
        [after, PAGE],
      );
      if (rows.length === 0) break;
      for (const r of rows as { ca_id: number; last_id: number; digests: Uint8Array }[]) {
        const b = builders.get(Number(r.ca_id));
        const d = toBuffer(r.digests);
        if (b) for (let i = 0; i + 8 <= d.length; i += 8) b.addDigest(d.readBigUInt64BE(i));
        after = Math.max(after, Number(r.last_id));
      }
      maxId = Math.max(maxId, after);
    }
    const goodUntil = new Date(readAt.getTime() + (this.opts.maxStalenessMs ?? 120_000));
    for (const [caId, b] of builders) {
      const keyId = this.caKeyIds.get(caId)!;
      const prev = this.index.get(keyId, "database");
      const added = b.finish();
      const digests = full || !prev ? added : mergeDigests(prev.digests, added);
      this.index.set(keyId, { digests, thisUpdate: full || !prev ? readAt : prev.thisUpdate, goodUntil, source: "database" });
    }
    this.lastId = maxId;
    this.lastRead = readAt;
  }

  private async loadForeignCrls(full: boolean, readAt: Date): Promise<void> {
    const every = this.opts.foreignCrlRefreshMs ?? 900_000;
    for (const src of this.opts.foreignCrls ?? []) {
      const last = this.crlReadAt.get(src);
      if (!full && last !== undefined && readAt.getTime() - last < every) continue;
      try {
        const der = /^https?:\/\//.test(src) ? Buffer.from(await (await fetchOk(src)).arrayBuffer()) : fs.readFileSync(src);
        const v = verifiedCrlRevocations(fromPemOrDer(der, "X509 CRL"), this.store, src);
        const prev = this.index.get(v.issuerKeyId, v.list.source);
        // Never replace a source's list by an older one (a replayed or cached CRL).
        if (!prev || prev.thisUpdate.getTime() <= v.list.thisUpdate.getTime()) this.index.set(v.issuerKeyId, v.list);
        this.crlReadAt.set(src, readAt.getTime()); // failures are retried at the next refresh
      } catch (e) {
        (this.opts.onError ?? ((x: Error) => process.stderr.write(`card verifier: CRL ${src}: ${x.message}\n`)))(e as Error);
      }
    }
  }

  /**
   * Validates a login certificate (DER) at `at` (default now): path to a configured anchor,
   * validity, revocation (fail closed), key usage, policy; resolves to the path and the person.
   * When the index (and the OCSP cache) has a current answer for every certificate on the path,
   * this runs synchronously and resolves at once; otherwise it asks OCSP for the certificate whose
   * issuer has no current list (at most one request per certificate, MAX_OCSP_ROUNDS in all) and
   * validates again. Rejects with PathValidationError (code + English/Japanese message); when
   * OCSP gave no usable answer, "revocation-unknown" with the responders' reasons in `detail`.
   */
  async verify(certDer: Uint8Array, at: Date = this.now()): Promise<VerifiedLogin> {
    for (let round = 0; ; round++) {
      try {
        const known = this.leaves?.get(certDer);
        const path = validateCertificatePath(known?.leaf ?? certDer, this.store, this.policy, at, this.revocation);
        const identity = known?.identity ?? certificateIdentity(path);
        if (!known) this.leaves?.set(certDer, { leaf: path.leaf, identity });
        return { path, identity: { ...identity } };
      } catch (e) {
        const unknown = e instanceof PathValidationError ? e.unknownRevocation : undefined;
        if (!unknown || !this.ocsp || round >= MAX_OCSP_ROUNDS) throw e;
        const failure = await this.ocsp.lookup(unknown);
        if (failure !== undefined) throw new PathValidationError("revocation-unknown", `${(e as PathValidationError).detail}; OCSP: ${failure}`, unknown);
      }
    }
  }

  /** Stops the refresh timer. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Index and OCSP answers together: "revoked" from either wins, then a current "good" from either. */
function combined(fromIndex: RevocationStatus, ocsp: OcspFallback, issuerKeyId: string, serial: Uint8Array, at: Date): RevocationStatus {
  if (fromIndex === "revoked" || ocsp.size === 0) return fromIndex;
  const fromOcsp = ocsp.status(issuerKeyId, serial, at);
  return fromOcsp === "revoked" || fromIndex === "unknown" ? fromOcsp : fromIndex;
}

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r;
}
