/**
 * Publication of CA certificates and CRLs (DESIGN §5): each CA's latest CRL (the root's ARL) at
 * exactly the path of the URL stored for that CA (certificate_authorities.crl_url — the URL its
 * certificates carry in cRLDistributionPoints), and each CA certificate at /certs/<ca-name>.cer.
 *
 * HTTP caching (RFC 9110 §8.8, §13; RFC 9111 §5.2): a strong ETag (the SHA-256 of the DER),
 * Last-Modified = thisUpdate (the CRL) or notBefore (a certificate), Cache-Control max-age bounded
 * by the CRL's nextUpdate (and by repository.crlMaxAgeSeconds, so a CRL regenerated after a
 * revocation reaches caches soon), 304 for a matching If-None-Match — or, without one, an
 * If-Modified-Since not older than Last-Modified.
 */
import { createHash } from "node:crypto";
import type { Request, Response } from "express";
import type { Knex } from "knex";
import { toBuffer } from "../store/rows.ts";

interface PublishedCa {
  id: number;
  name: string;
  certificate: Buffer;
  certificateEtag: string;
  notBefore: Date;
}

interface CachedCrl {
  crlNumber: number;
  der: Buffer;
}

/** Content types (RFC 2585 §4.1, §4.2). */
export const PKIX_CRL = "application/pkix-crl";
export const PKIX_CERT = "application/pkix-cert";

/** CA certificates are immutable: cached for a day. */
const CERTIFICATE_MAX_AGE_S = 86_400;
/** The CA list is re-read this often (a ceremony may add CAs while the repository runs). */
const CA_REFRESH_MS = 30_000;

export class RepositoryPublication {
  private crlPaths = new Map<string, PublishedCa>();
  private certPaths = new Map<string, PublishedCa>();
  private loadedAt = -Infinity;
  private readonly crls = new Map<number, CachedCrl>();

  /** `crlMaxAgeSeconds`: upper bound of a CRL's Cache-Control max-age (policies/ocsp.yaml repository). */
  constructor(
    private readonly db: Knex,
    private readonly crlMaxAgeSeconds: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private async refresh(): Promise<void> {
    if (Date.now() - this.loadedAt < CA_REFRESH_MS) return;
    const rows = await this.db("certificate_authorities").select("id", "name", "certificate", "not_before", "crl_url");
    const crlPaths = new Map<string, PublishedCa>();
    const certPaths = new Map<string, PublishedCa>();
    for (const r of rows) {
      const certificate = toBuffer(r.certificate);
      const ca: PublishedCa = { id: Number(r.id), name: r.name, certificate, certificateEtag: etagOf(createHash("sha256").update(certificate).digest()), notBefore: new Date(r.not_before) };
      certPaths.set(`/certs/${encodeURIComponent(r.name)}.cer`, ca);
      if (r.crl_url) crlPaths.set(pathOf(r.crl_url), ca);
    }
    this.crlPaths = crlPaths;
    this.certPaths = certPaths;
    this.loadedAt = Date.now();
  }

  /** Express handler for GET/HEAD: serves a CRL or a CA certificate, or passes to `next`. */
  handle = async (req: Request, res: Response, next: (err?: unknown) => void): Promise<void> => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    try {
      await this.refresh();
      const crlCa = this.crlPaths.get(req.path);
      if (crlCa) return await this.serveCrl(crlCa, req, res);
      const certCa = this.certPaths.get(req.path);
      if (certCa) return serve(req, res, { body: certCa.certificate, type: PKIX_CERT, etag: certCa.certificateEtag, lastModified: certCa.notBefore, maxAge: CERTIFICATE_MAX_AGE_S });
      next();
    } catch (e) {
      next(e);
    }
  };

  private async serveCrl(ca: PublishedCa, req: Request, res: Response): Promise<void> {
    const latest = await this.db("crls").where({ ca_id: ca.id }).orderBy("crl_number", "desc").first("crl_number", "this_update", "next_update", "sha256");
    if (!latest) {
      res.status(404).type("text/plain; charset=utf-8").send(`no CRL has been generated for CA "${ca.name}" yet / CA「${ca.name}」の CRL はまだ発行されていません\n`);
      return;
    }
    const crlNumber = Number(latest.crl_number);
    const nextUpdate = new Date(latest.next_update);
    const maxAge = Math.max(0, Math.min(this.crlMaxAgeSeconds, Math.floor((nextUpdate.getTime() - this.now().getTime()) / 1000)));
    const meta = { type: PKIX_CRL, etag: etagOf(toBuffer(latest.sha256)), lastModified: new Date(latest.this_update), maxAge };
    if (notModified(req, meta)) return void writeNotModified(res, meta);
    let cached = this.crls.get(ca.id);
    if (!cached || cached.crlNumber !== crlNumber) {
      const row = await this.db("crls").where({ ca_id: ca.id, crl_number: crlNumber }).first("der");
      cached = { crlNumber, der: toBuffer(row.der) };
      this.crls.set(ca.id, cached);
    }
    serve(req, res, { ...meta, body: cached.der });
  }
}

interface Representation {
  type: string;
  etag: string;
  lastModified: Date;
  /** Cache-Control max-age in seconds. */
  maxAge: number;
}

/** The path of a stored URL ("http://localhost:8080/crl/x.crl" → "/crl/x.crl"), as express sees it. */
function pathOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname);
  } catch {
    return url;
  }
}

const etagOf = (sha256: Buffer): string => `"${sha256.toString("hex")}"`;

/**
 * RFC 9110 §13.1.2 If-None-Match (weak comparison; "*" matches), else §13.1.3 If-Modified-Since
 * (whole seconds): true when the client's copy is current.
 */
function notModified(req: Request, r: Representation): boolean {
  const inm = req.headers["if-none-match"];
  if (inm !== undefined) {
    return inm.split(",").some((t) => {
      const tag = t.trim().replace(/^W\//, "");
      return tag === "*" || tag === r.etag;
    });
  }
  const ims = req.headers["if-modified-since"];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Math.floor(r.lastModified.getTime() / 1000) * 1000 <= since;
}

function headers(res: Response, r: Representation): void {
  res.setHeader("ETag", r.etag);
  res.setHeader("Last-Modified", r.lastModified.toUTCString());
  res.setHeader("Cache-Control", `public, max-age=${r.maxAge}, no-transform`);
}

function writeNotModified(res: Response, r: Representation): void {
  headers(res, r);
  res.status(304).end();
}

function serve(req: Request, res: Response, r: Representation & { body: Buffer }): void {
  if (notModified(req, r)) return writeNotModified(res, r);
  headers(res, r);
  res.setHeader("Content-Type", r.type);
  res.setHeader("Content-Length", r.body.length);
  res.status(200);
  if (req.method === "HEAD") res.end();
  else res.end(r.body);
}
