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
 * Freshness (issue 11 §2): a pre-signed response is served only while it is current — not
 * invalidated, and carrying the status revocations say now (PRESIGNED_CURRENT_SQL, checked by the
 * database lookup itself, src/ocsp/presigned-state.ts). A revocation invalidates it in its own
 * transaction; from then on this responder signs live until the pre-signer re-signs it. Cached
 * copies are dropped when that transaction commits (LISTEN on OCSP_STATUS_CHANNEL on a dedicated
 * connection) and, as a fallback when the
 * listening connection is down, when
 * ocsp_responses.status_changed_at moves (polled every `pollMs`, default 2 s). A lookup that
 * raced with an eviction answers its own request but is not cached. Entries are not served within
 * 5 minutes of their nextUpdate.
 *
 * Live signing is rate-limited per source (live-limit.ts, policy `live`): over the limit a
 * nonce-bearing request for a certificate with a current pre-signed response is answered with that
 * response, without the nonce (RFC 8954 §3); any other request needing a signature gets tryLater.
 */
import type { Knex } from "knex";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { HsmError } from "../hsm/errors.ts";
import { parseOcspRequest, OcspRequestError, type OcspRequest } from "../pki/ocsp-request.ts";
import { ocspErrorResponse } from "../pki/ocsp-response.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { certificateStatuses, ocspCertStatus } from "../ocsp/certificate-status.ts";
import { CERT_ID_HASHES, issuerKey, loadOcspIssuers, type OcspIssuer } from "../ocsp/issuers.ts";
import { PRESIGNED_CURRENT_SQL, PRESIGNED_FROM_SQL } from "../ocsp/presigned-state.ts";
import { currentResponders, signOcspResponse, type OcspResponder } from "../ocsp/responders.ts";
import { listenForStatusChanges, type StatusListener } from "../ocsp/status-notify.ts";
import { toBuffer } from "../store/rows.ts";
import { LiveSigningLimit } from "./live-limit.ts";

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
  /** HTTP validators of a pre-signed answer (RFC 5019 §6.2), made once per cached response. */
  presigned?: { thisUpdate: Date; nextUpdate: Date; lastModified: string; expires: string; etag: string };
  /**
   * How the answer was made, for logs and the benchmark: "limited" is a pre-signed answer to a
   * nonce-bearing request over the live-signing limit (no nonce), or tryLater.
   */
  path: "presigned" | "live" | "limited" | "error";
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

/** A cached pre-signed answer by the exact request bytes: valid while `entry` is still the cached response of `key`. */
interface ByRequest {
  key: string;
  entry: Presigned;
  answer: OcspAnswer;
  /** Not served after this (nextUpdate minus the margin, or the responder's notAfter). */
  validUntilMs: number;
}
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
  /** The fast path (cachedAnswer): request DER (latin1) → answer; entries die with their `cache` entry. */
  private readonly byRequest = new Map<string, ByRequest>();
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
  /** Bumped by every eviction: a lookup that overlapped one does not fill the cache. */
  private epoch = 0;
  private listener: StatusListener | null = null;
  private readonly liveLimit: LiveSigningLimit;

  constructor(private readonly opts: OcspResponderOptions) {
    this.cacheEntries = opts.cacheEntries ?? 100_000;
    this.now = opts.now ?? (() => new Date());
    this.liveLimit = new LiveSigningLimit({ perSecond: opts.policy.live.perSourcePerSecond, burst: opts.policy.live.burst });
  }

  private evict(key: string): void {
    this.cache.delete(key);
    this.epoch++;
  }

  /** (Re)opens the LISTEN (status-notify.ts); a failure is logged and the poll stays the fallback. */
  private async listen(): Promise<void> {
    if (this.listener && !this.listener.closed) return;
    try {
      this.listener = await listenForStatusChanges(this.opts.db, (caId, serialHex) => this.evict(`${caId}:${serialHex}`));
    } catch (e) {
      process.stderr.write(`hpki repo: OCSP status notifications unavailable (polling every ${this.opts.pollMs ?? 2_000} ms): ${(e as Error).message}\n`);
    }
  }

  /** Loads issuers and responders and starts the change feed. */
  async start(): Promise<void> {
    await this.refreshMeta();
    await this.listen();
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
    await this.listener?.close().catch(() => undefined);
    this.listener = null;
  }

  /** Runs one change-feed poll now (tests use it instead of waiting for the timer). */
  async poll(): Promise<void> {
    if (Date.now() - this.lastMeta >= META_REFRESH_MS) await this.refreshMeta();
    if (this.timer && this.listener?.closed !== false) await this.listen();
    const since = new Date((this.watermark ?? new Date(0)).getTime() - CHANGE_MARGIN_MS);
    const rows = await this.opts.db("ocsp_responses").where("status_changed_at", ">", since).select("ca_id", "serial_hex", "status_changed_at");
    for (const r of rows) {
      const key = `${r.ca_id}:${r.serial_hex}`;
      const t = new Date(r.status_changed_at);
      // Each change evicts once, however often the re-read window returns it.
      if (this.seenChanges.get(key) !== t.getTime()) this.evict(key);
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
   * The fast path, without a promise or parsing: the cached pre-signed answer to exactly these
   * request bytes (a single CertID without nonce answered from the cache before), or null — then
   * call respond(). Eviction of the response (a revocation) ends it at once: an entry is valid only
   * while the response it was made from is still the cached one.
   */
  cachedAnswer(der: Buffer): OcspAnswer | null {
    const k = der.toString("latin1");
    const hit = this.byRequest.get(k);
    if (!hit) return null;
    if (this.cache.get(hit.key) !== hit.entry || hit.validUntilMs <= this.now().getTime()) {
      this.byRequest.delete(k);
      return null;
    }
    return hit.answer;
  }

  /**
   * Answers one DER OCSPRequest (the POST body, or the decoded GET path) from `source` (the
   * client's address, for the live-signing limit). Never throws: failures become
   * malformedRequest, unauthorized, tryLater or internalError responses.
   */
  respond(der: Uint8Array, source?: string): Promise<OcspAnswer> {
    const answer = this.answer(der, source);
    this.inFlight.add(answer);
    const done = () => void this.inFlight.delete(answer);
    answer.then(done, done);
    return answer;
  }

  private async answer(der: Uint8Array, source: string | undefined): Promise<OcspAnswer> {
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
      const single = req.requests.length === 1 && one.serialHex !== null;
      const fromPresigned = async (path: OcspAnswer["path"]): Promise<OcspAnswer | null> => {
        const key = `${issuer!.caId}:${one.serialHex}`;
        const hit = await this.presigned(key);
        if (!hit) return null;
        const body = one.hashAlgorithm === "sha1" ? hit.sha1 : hit.sha256;
        const nextUpdate = new Date(hit.nextUpdateMs);
        const answer: OcspAnswer = {
          body,
          // ETag: the last octets of the signature, unique per signed response and free to compute.
          presigned: { thisUpdate: hit.thisUpdate, nextUpdate, lastModified: hit.thisUpdate.toUTCString(), expires: nextUpdate.toUTCString(), etag: `"${body.subarray(-16).toString("hex")}"` },
          path,
        };
        if (path === "presigned" && this.cache.get(key) === hit) {
          if (this.byRequest.size >= this.cacheEntries * 2) this.byRequest.clear();
          const validUntilMs = Math.min(hit.nextUpdateMs - NEXT_UPDATE_MARGIN_MS, responder.notAfter.getTime());
          this.byRequest.set(Buffer.from(der).toString("latin1"), { key, entry: hit, answer, validUntilMs });
        }
        return answer;
      };
      if (single && !req.nonce) {
        const hit = await fromPresigned("presigned");
        if (hit) return hit;
      }
      if (!this.liveLimit.take(source)) {
        const hit = single && req.nonce ? await fromPresigned("limited") : null;
        return hit ?? { body: TRY_LATER, path: "limited" };
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
  private async presigned(key: string): Promise<Presigned | null> {
    const i = key.indexOf(":");
    const caId = Number(key.slice(0, i));
    const serialHex = key.slice(i + 1);
    const nowMs = this.now().getTime();
    const cached = this.cache.get(key);
    if (cached && cached.nextUpdateMs - nowMs > NEXT_UPDATE_MARGIN_MS) {
      // LRU: most recently used last.
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const epoch = this.epoch;
    // The lookup itself refuses a response that is not current (presigned-state.ts).
    const row = (await this.opts.db.raw(
      `SELECT r.der_sha1, r.der_sha256, r.this_update, r.next_update FROM ${PRESIGNED_FROM_SQL}
        WHERE r.ca_id = ? AND r.serial_hex = ? AND ${PRESIGNED_CURRENT_SQL}`,
      [caId, serialHex],
    )).rows[0];
    if (!row) return null;
    const entry = { sha1: toBuffer(row.der_sha1), sha256: toBuffer(row.der_sha256), thisUpdate: new Date(row.this_update), nextUpdateMs: new Date(row.next_update).getTime() };
    if (entry.nextUpdateMs - nowMs <= NEXT_UPDATE_MARGIN_MS) return null;
    if (epoch !== this.epoch) return entry;
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
