/**
 * Static export of the pre-signed OCSP responses (issue 11 §6; RFC 5019 §5, §6): every current
 * pre-signed response as a file at the path of its RFC 5019 GET request, so nginx, any web server
 * or a CDN serves them as fixed bytes, and an nginx configuration that does so.
 *
 * Request forms served: for each certificate, the OCSPRequest of ONE CertID without nonce,
 * requestorName, signature or extensions — the form OpenSSL (`openssl ocsp -no_nonce`),
 * Firefox/NSS and other RFC 5019 clients send — with hashAlgorithm SHA-1 (the RFC 5019 §2.1.1
 * form) and with SHA-256, each AlgorithmIdentifier with NULL parameters as those clients encode
 * it. Any other form (a nonce, absent parameters, several CertIDs) finds no file and nginx passes
 * it to the repository, which answers it (live, rate-limited per source).
 *
 * Layout: <dir>/ocsp/<standard base64 of the DER>.resp. A GET path is url-encoded base64; clients
 * differ in what they escape ("/" "+" "=" or not), but nginx decodes %XX before mapping the URI to a
 * file, so every spelling reaches the same file; "/" inside the base64 becomes directories (so the
 * configuration sets merge_slashes off) and the ".resp" suffix — "." is not a base64 character —
 * keeps "ABC/" and "ABC" apart. Each file's mtime is the response's thisUpdate: nginx sends it as
 * Last-Modified, and `expires modified +<validity>` makes Expires = nextUpdate and max-age =
 * nextUpdate − now (RFC 5019 §6.2).
 *
 * Kept current: each write is a temporary file renamed over the old one (atomic for readers); a
 * watermark (<dir>/.hpki-ocsp-export.json: the latest ocsp_responses.written_at exported) makes a
 * pass read only rows written since (minus CHANGE_MARGIN_MS, since transactions commit out of
 * stamp order; a file whose size and mtime already match is left alone). A row that is no longer
 * current (a revocation invalidated it, PRESIGNED_CURRENT_SQL) has its files removed, so the request
 * goes to the live responder until the pre-signer re-signs it and the next pass writes it again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Knex } from "knex";
import { sequence } from "../pki/der.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { encodeCertId } from "../pki/ocsp-response.ts";
import { toBuffer } from "../store/rows.ts";
import { CERT_ID_HASHES, loadOcspIssuers, type OcspIssuer } from "./issuers.ts";
import { PRESIGNED_CURRENT_SQL, PRESIGNED_FROM_SQL } from "./presigned-state.ts";

/** What one export pass did in one directory. */
export interface ExportOutcome {
  dir: string;
  /** Rows read since the watermark. */
  read: number;
  /** Files written (two per certificate: SHA-1 and SHA-256 CertID). */
  written: number;
  /** Files removed (responses no longer current). */
  removed: number;
  /** The new watermark (ISO 8601), or null when nothing was ever exported. */
  watermark: string | null;
}

export interface ExportOptions {
  /** Ignore the watermark and look at every row (files already current are still not rewritten). */
  full?: boolean;
  /** Rows read per page; default 2,000. */
  pageSize?: number;
}

/** Where the GET files live under the export directory, and the URL path nginx serves them at. */
export const EXPORT_URL_PATH = "/ocsp/";
const WATERMARK_FILE = ".hpki-ocsp-export.json";
const CHANGE_MARGIN_MS = 60_000;

/**
 * The RFC 5019 GET request of one CertID as the export serves it: OCSPRequest { tbsRequest {
 * requestList { Request { reqCert } } } }, DER.
 */
export function simpleOcspRequest(certId: Uint8Array): Buffer {
  return sequence(sequence(sequence(sequence(certId))));
}

/** The file answering GET <EXPORT_URL_PATH><url-encoded base64 of `requestDer`> under `dir`. */
export function exportedFileFor(dir: string, requestDer: Uint8Array): string {
  return path.join(dir, EXPORT_URL_PATH, `${Buffer.from(requestDer).toString("base64")}.resp`);
}

/**
 * One export pass into `dir` (created if missing): writes the files of the rows written since the
 * watermark that are current, removes those of rows that are not, writes the nginx example
 * (nginx-ocsp.conf) and advances the watermark. @throws on file-system errors (the watermark is
 * then not advanced, so the next pass redoes the work).
 */
export async function exportOcspResponses(db: Knex, dir: string, policy: OcspPolicy, opts: ExportOptions = {}): Promise<ExportOutcome> {
  const root = path.resolve(dir);
  fs.mkdirSync(path.join(root, EXPORT_URL_PATH), { recursive: true });
  const previous = opts.full ? null : readWatermark(root);
  const since = previous ? new Date(previous.getTime() - CHANGE_MARGIN_MS) : new Date(0);
  const issuers = new Map((await loadOcspIssuers(db)).map((i) => [i.caId, i]));
  const out: ExportOutcome = { dir: root, read: 0, written: 0, removed: 0, watermark: previous?.toISOString() ?? null };
  const madeDirs = new Set<string>();
  const pageSize = opts.pageSize ?? 2_000;
  let after: { at: Date; caId: number; serial: string } | null = null;
  let newest = previous;
  for (;;) {
    const page: Record<string, any>[] = (await db.raw(
      `SELECT r.ca_id, r.serial_hex, r.der_sha1, r.der_sha256, r.this_update, r.written_at, ${PRESIGNED_CURRENT_SQL} AS current
         FROM ${PRESIGNED_FROM_SQL}
        WHERE r.written_at > ? ${after ? "AND (r.written_at, r.ca_id, r.serial_hex) > (?, ?, ?)" : ""}
        ORDER BY r.written_at, r.ca_id, r.serial_hex LIMIT ${pageSize}`,
      after ? [since, after.at, after.caId, after.serial] : [since],
    )).rows;
    for (const row of page) {
      out.read++;
      const issuer = issuers.get(Number(row.ca_id));
      if (!issuer) continue;
      const thisUpdate = new Date(row.this_update);
      for (const hash of CERT_ID_HASHES) {
        const file = exportedFileFor(root, simpleOcspRequest(certIdOf(issuer, hash, row.serial_hex)));
        if (row.current) {
          if (writeIfChanged(file, toBuffer(hash === "sha1" ? row.der_sha1 : row.der_sha256), thisUpdate, madeDirs)) out.written++;
        } else if (removeIfPresent(file)) {
          out.removed++;
        }
      }
    }
    if (page.length) {
      const last = page[page.length - 1];
      after = { at: new Date(last.written_at), caId: Number(last.ca_id), serial: last.serial_hex };
      if (!newest || after.at > newest) newest = after.at;
    }
    if (page.length < pageSize) break;
  }
  writeNginxExample(root, policy);
  if (newest) {
    writeAtomically(path.join(root, WATERMARK_FILE), Buffer.from(`${JSON.stringify({ writtenAsOf: newest.toISOString() })}\n`));
    out.watermark = newest.toISOString();
  }
  return out;
}

/**
 * Registers `dir` (absolute) for this host (os.hostname()): the status scheduler of this host and
 * the revocation path keep it current. Idempotent.
 */
export async function registerExportDir(db: Knex, dir: string): Promise<void> {
  await db("ocsp_export_dirs").insert({ host: os.hostname(), dir: path.resolve(dir) }).onConflict(["host", "dir"]).ignore();
}

/** Stops keeping `dir` current on this host. Returns whether it was registered. */
export async function unregisterExportDir(db: Knex, dir: string): Promise<boolean> {
  return (await db("ocsp_export_dirs").where({ host: os.hostname(), dir: path.resolve(dir) }).delete()) > 0;
}

/** One export pass into every directory registered for this host. `policy` is read only when there is one. */
export async function exportRegisteredDirs(db: Knex, policy: () => OcspPolicy): Promise<ExportOutcome[]> {
  const dirs = await db("ocsp_export_dirs").where({ host: os.hostname() }).orderBy("dir").pluck("dir");
  const out: ExportOutcome[] = [];
  for (const dir of dirs as string[]) out.push(await exportOcspResponses(db, dir, policy()));
  return out;
}

function certIdOf(issuer: OcspIssuer, hash: (typeof CERT_ID_HASHES)[number], serialHex: string): Buffer {
  return encodeCertId(hash, issuer.hashes[hash].issuerNameHash, issuer.hashes[hash].issuerKeyHash, Buffer.from(serialHex, "hex"));
}

function readWatermark(root: string): Date | null {
  try {
    const t = new Date(JSON.parse(fs.readFileSync(path.join(root, WATERMARK_FILE), "utf8")).writtenAsOf);
    return Number.isNaN(t.getTime()) ? null : t;
  } catch {
    return null;
  }
}

/** Writes `body` to `file` (mtime = `mtime`) by rename, unless it is already there; true when written. */
function writeIfChanged(file: string, body: Buffer, mtime: Date, madeDirs: Set<string>): boolean {
  try {
    const st = fs.statSync(file);
    if (st.size === body.length && st.mtimeMs === mtime.getTime()) return false;
  } catch {
    // Not there yet.
  }
  const parent = path.dirname(file);
  if (!madeDirs.has(parent)) {
    fs.mkdirSync(parent, { recursive: true });
    madeDirs.add(parent);
  }
  writeAtomically(file, body, mtime);
  return true;
}

function writeAtomically(file: string, body: Buffer, mtime?: Date): void {
  // "~" is not a base64 character either: a temporary name never collides with a response file.
  const tmp = `${file}~${process.pid}`;
  fs.writeFileSync(tmp, body);
  if (mtime) fs.utimesSync(tmp, mtime, mtime);
  fs.renameSync(tmp, file);
}

function removeIfPresent(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/**
 * nginx-ocsp.conf: an example server block serving `root` (include it in nginx's http block;
 * adjust listen and the repository's address). Requests without a file go to the repository.
 */
export function nginxExample(root: string, policy: OcspPolicy, opts: { listen?: string; upstream?: string } = {}): string {
  const upstream = opts.upstream ?? "http://127.0.0.1:8080";
  return `# Generated by \`hpki ocsp export\` (src/ocsp/export.ts): serves the exported pre-signed OCSP
# responses as RFC 5019 GET (and passes everything else to the repository role at ${upstream}).
# Include it in the http block of nginx.conf; adjust listen and the upstream.
server {
    listen ${opts.listen ?? "127.0.0.1:8081"};
    root ${root};
    # Base64 may contain "//": keep it, the files were written under the exact path.
    merge_slashes off;

    # GET /ocsp/<url-encoded base64 of the DER OCSPRequest> (RFC 6960 A.1, RFC 5019 §5).
    location ${EXPORT_URL_PATH} {
        types { }
        default_type application/ocsp-response;
        # mtime = thisUpdate: Last-Modified = thisUpdate, Expires = nextUpdate, max-age = nextUpdate - now (RFC 5019 §6.2).
        expires modified +${policy.responses.validityHours}h;
        add_header Cache-Control "public, no-transform, must-revalidate";
        etag on;
        try_files $uri.resp @repository;
    }
    # POST /ocsp, nonces, other request forms, certificates not (yet) exported: the repository.
    location = /ocsp {
        proxy_pass ${upstream};
    }
    location @repository {
        proxy_pass ${upstream};
    }
}
`;
}

function writeNginxExample(root: string, policy: OcspPolicy): void {
  const file = path.join(root, "nginx-ocsp.conf");
  const text = nginxExample(root, policy);
  try {
    if (fs.readFileSync(file, "utf8") === text) return;
  } catch {
    // Not there yet.
  }
  writeAtomically(file, Buffer.from(text));
}
