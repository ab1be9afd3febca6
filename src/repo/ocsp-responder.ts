/**
 * The OCSP responder of the repository role (RFC 6960; HTTP binding per RFC 6960 Appendix A).
 *
 * Fast path — one CertID, no nonce: the pre-signed response for that certificate and CertID hash
 * (SHA-1 or SHA-256), from an in-memory LRU cache filled from ocsp_responses. Nothing is signed.
 *
 * Live path — a nonce (echoed, RFC 6960 §4.4.1), several CertIDs, a serial without a pre-signed
 * response (unknown, or issued a moment ago): statuses read from the database and one
 * BasicOCSPResponse signed now with the CA's delegated responder key on the OCSP token.
 * Pre-signed responses cannot echo a nonce, so a client that sends one pays for a live signature;
 * one that does not (the RFC 5019 profile, most clients under load) gets the cached answer.
 *
 * Answers: malformedRequest for anything that is not a DER OCSPRequest; unauthorized when a CertID
 * names an issuer we do not answer for (an unknown CA, an unsupported hash, the root, a CA without
 * a responder, or CertIDs of two CAs in one request); tryLater while the OCSP token is away
 * (HsmError TOKEN_UNAVAILABLE: the pool is reconnecting), internalError for other HSM failures.
 *
 * Freshness: cached entries are dropped when ocsp_responses.status_changed_at moves (polled every
 * `pollMs`, default 2 s) and are not served within 5 minutes of their nextUpdate.
 */
import type { Knex } from "knex";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { HsmError } from "../hsm/errors.ts";
import { parseOcspRequest, OcspRequestError, type OcspRequest } from "../pki/ocsp-request.ts";
import { ocspErrorResponse } from "../pki/ocsp-response.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { certificateStatuses, ocspCertStatus } from "../ocsp/certificate-status.ts";
import { CERT_ID_HASHES, issuerKey, loadOcspIssuers, type OcspIssuer } from "../ocsp/issuers.ts";
import { currentResponders, signOcspResponse, type OcspResponder } from "../ocsp/responders.ts";
import { toBuffer } from "../store/rows.ts";

/** A pre-signed pair of responses for one certificate. */
interface Presigned {
  sha1: Buffer;
  sha256: Buffer;
  thisUpdate: Date;
  nextUpdateMs: number;
}

/** The responder's answer: the OCSPResponse DER, plus validity when it is a cacheable pre-signed one. */
export interface OcspAnswer {
  body: Buffer;
  presigned?: { thisUpdate: Date; nextUpdate: Date };
  /** How the answer was made, for logs and the benchmark. */
  path: "presigned" | "live" | "error";
}

export interface OcspResponderOptions {
  db: Knex;
  /** Responder keys on the OCSP token. */
  keys: CaKeyStore;
  policy: OcspPolicy;
  /** Pre-signed responses kept in memory (LRU); default 100,000 certificates. */
  cacheEntries?: number;
  /** Change-feed poll interval in ms; default 2,000. */
  pollMs?: number;
  now?: () => Date;
}

const MALFORMED = ocspErrorResponse("malformedRequest");
const UNAUTHORIZED = ocspErrorResponse("unauthorized");
const INTERNAL_ERROR = ocspErrorResponse("internalError");
const TRY_LATER = ocspErrorResponse("tryLater");
/** Not served from the cache this close to nextUpdate: read again from the database. */
const NEXT_UPDATE_MARGIN_MS = 5 * 60_000;
/** Re-read changes this far behind the watermark: transactions commit out of stamp order. */
const CHANGE_MARGIN_MS = 60_000;
/** Issuers and responders are re-read this often (new CA, renewed responder). */
const META_REFRESH_MS = 30_000;

export class OcspResponderService {
  private issuers = new Map<string, OcspIssuer>();
  private responders = new Map<number, OcspResponder>();
  private readonly cache = new Map<string, Presigned>();
  private readonly cacheEntries: number;
  private watermark: Date | null = null;
  /** Changes already acted on within the re-read window: "caId:serial" → status_changed_at (ms). */
  private readonly seenChanges = new Map<string, number>();
  private lastMeta = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
  /** Answers being made; stop() waits for them so none meets a closed HSM pool. */
  private readonly inFlight = new Set<Promise<OcspAnswer>>();
  private readonly now: () => Date;

  constructor(private readonly opts: OcspResponderOptions) {
    this.cacheEntries = opts.cacheEntries ?? 100_000;
    this.now = opts.now ?? (() => new Date());
  }

  /** Loads issuers and responders and starts the change feed. */
  async start(): Promise<void> {
    await this.refreshMeta();
    const res = await this.opts.db.raw("SELECT clock_timestamp() AS t");
    this.watermark = new Date(res.rows[0].t);
    const loop = () => {
      this.polling = this.poll().catch((e) => {
        process.stderr.write(`hpki repo: OCSP change feed: ${(e as Error).message}\n`);
      });
      void this.polling.then(() => {
        if (this.timer) this.timer = setTimeout(loop, this.opts.pollMs ?? 2_000).unref();
      });
    };
    this.timer = setTimeout(loop, this.opts.pollMs ?? 2_000).unref();
  }

  /** Stops the change feed and waits for the answers in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Runs one change-feed poll now (tests use it instead of waiting for the timer). */
  async poll(): Promise<void> {
    if (Date.now() - this.lastMeta >= META_REFRESH_MS) await this.refreshMeta();
    const since = new Date((this.watermark ?? new Date(0)).getTime() - CHANGE_MARGIN_MS);
    const rows = await this.opts.db("ocsp_responses").where("status_changed_at", ">", since).select("ca_id", "serial_hex", "status_changed_at");
    for (const r of rows) {
      const key = `${r.ca_id}:${r.serial_hex}`;
      const t = new Date(r.status_changed_at);
      // Each change evicts once, however often the re-read window returns it.
      if (this.seenChanges.get(key) !== t.getTime()) this.cache.delete(key);
      this.seenChanges.set(key, t.getTime());
      if (!this.watermark || t > this.watermark) this.watermark = t;
    }
    for (const [key, t] of this.seenChanges) if (t <= since.getTime()) this.seenChanges.delete(key);
  }

  private async refreshMeta(): Promise<void> {
    const issuers = await loadOcspIssuers(this.opts.db);
    const byKey = new Map<string, OcspIssuer>();
    for (const i of issuers) for (const h of CERT_ID_HASHES) byKey.set(issuerKey(h, i.hashes[h].issuerNameHash, i.hashes[h].issuerKeyHash), i);
    this.issuers = byKey;
    this.responders = await currentResponders(this.opts.db, this.now());
    this.lastMeta = Date.now();
  }

  /**
   * Answers one DER OCSPRequest (the POST body, or the decoded GET path). Never throws: failures
   * become malformedRequest, unauthorized or internalError responses.
   */
  respond(der: Uint8Array): Promise<OcspAnswer> {
    const answer = this.answer(der);
    this.inFlight.add(answer);
    const done = () => void this.inFlight.delete(answer);
    answer.then(done, done);
    return answer;
  }

  private async answer(der: Uint8Array): Promise<OcspAnswer> {
    let req: OcspRequest;
    try {
      req = parseOcspRequest(der);
    } catch (e) {
      if (e instanceof OcspRequestError) return { body: MALFORMED, path: "error" };
      return { body: INTERNAL_ERROR, path: "error" };
    }
    let issuer: OcspIssuer | undefined;
    for (const r of req.requests) {
      const i = r.hashAlgorithm ? this.issuers.get(issuerKey(r.hashAlgorithm, r.issuerNameHash, r.issuerKeyHash)) : undefined;
      if (!i || (issuer && i !== issuer)) return { body: UNAUTHORIZED, path: "error" };
      issuer = i;
    }
    const responder = this.responders.get(issuer!.caId);
    if (!responder || responder.notAfter.getTime() <= this.now().getTime()) return { body: UNAUTHORIZED, path: "error" };
    try {
      const one = req.requests[0];
      if (req.requests.length === 1 && !req.nonce && one.serialHex) {
        const hit = await this.presigned(issuer!.caId, one.serialHex);
        if (hit) {
          return { body: one.hashAlgorithm === "sha1" ? hit.sha1 : hit.sha256, presigned: { thisUpdate: hit.thisUpdate, nextUpdate: new Date(hit.nextUpdateMs) }, path: "presigned" };
        }
      }
      return { body: await this.live(issuer!, responder, req), path: "live" };
    } catch (e) {
      process.stderr.write(`hpki repo: OCSP: ${(e as Error).message}\n`);
      // The OCSP token is away for now (the pool is getting it back): RFC 6960 §2.3 tryLater.
      if (e instanceof HsmError && e.code === "TOKEN_UNAVAILABLE") return { body: TRY_LATER, path: "error" };
      return { body: INTERNAL_ERROR, path: "error" };
    }
  }

  /** The pre-signed responses of one certificate, from the cache or the database; null when there are none fresh. */
  private async presigned(caId: number, serialHex: string): Promise<Presigned | null> {
    const key = `${caId}:${serialHex}`;
    const nowMs = this.now().getTime();
    const cached = this.cache.get(key);
    if (cached && cached.nextUpdateMs - nowMs > NEXT_UPDATE_MARGIN_MS) {
      // LRU: most recently used last.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const row = await this.opts.db("ocsp_responses").where({ ca_id: caId, serial_hex: serialHex }).first("der_sha1", "der_sha256", "this_update", "next_update");
    if (!row) return null;
    const entry = { sha1: toBuffer(row.der_sha1), sha256: toBuffer(row.der_sha256), thisUpdate: new Date(row.this_update), nextUpdateMs: new Date(row.next_update).getTime() };
    if (entry.nextUpdateMs - nowMs <= NEXT_UPDATE_MARGIN_MS) return null;
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }

  /** Signs a response for every CertID of `req` now, echoing its nonce. */
  private async live(issuer: OcspIssuer, responder: OcspResponder, req: OcspRequest): Promise<Buffer> {
    const serials = req.requests.map((r) => r.serialHex).filter((s): s is string => s !== null);
    const statuses = await certificateStatuses(this.opts.db, issuer.caId, serials);
    const now = new Date(Math.floor(this.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(now.getTime() + this.opts.policy.responses.validityHours * 3_600_000);
    return signOcspResponse(this.opts.keys, responder, {
      producedAt: now,
      nonce: req.nonce,
      responses: req.requests.map((r) => ({
        certId: r.der,
        status: ocspCertStatus(r.serialHex ? statuses.get(r.serialHex) : undefined),
        thisUpdate: now,
        nextUpdate,
      })),
    });
  }
}
