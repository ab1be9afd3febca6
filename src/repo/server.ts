/**
 * The repository role (`hpki serve --role repo`, DESIGN §1): public, read-only status. Mounted at
 * "/" because certificates carry its URLs:
 *
 *   GET  <path of each CA's CRL URL>   latest CRL / ARL            application/pkix-crl
 *   GET  /certs/<ca-name>.cer          CA certificate (DER)        application/pkix-cert
 *   POST /ocsp                         OCSPRequest → OCSPResponse  application/ocsp-request / -response
 *   GET  /ocsp/<url-encoded base64 of the DER OCSPRequest>        (RFC 6960 Appendix A.1)
 *   GET  /audit/checkpoints[/latest|/<id>]  signed audit checkpoints (src/audit/checkpoint-publication.ts)
 *   GET  /directory/enc?subscriber=&facility=&hcRole=   valid encryption certificates (directory.ts, issue 15 §4)
 *
 * /ocsp is answered on node:http before express (RoleServer.preRoute): express routing alone
 * costs several times what a pre-signed answer does. CRLs and certificates go through the router.
 *
 * Holds no CA key and never opens the CA token: it opens only the OCSP token, for live
 * responses to requests with a nonce (see ocsp-responder.ts). Writes to the database only the audit
 * records of OCSP-token outages (token lost / back, src/audit/hsm-transitions.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import express from "express";
import { auditCheckpointRouter } from "../audit/checkpoint-publication.ts";
import { auditTokenTransitions } from "../audit/hsm-transitions.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { loadOcspPolicy, openOcspKeys } from "../ocsp/responders.ts";
import { ocspErrorResponse } from "../pki/ocsp-response.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { OcspResponderService, type OcspAnswer } from "./ocsp-responder.ts";
import { directoryRouter } from "./directory.ts";
import { RepositoryPublication } from "./publication.ts";

/** Largest OCSPRequest body accepted (32 CertIDs with a nonce and a signature fit easily). */
const MAX_OCSP_REQUEST_BYTES = 16 * 1024;
const OCSP_RESPONSE_TYPE = "application/ocsp-response";
const MALFORMED_BODY = ocspErrorResponse("malformedRequest");

export interface RepoServerOptions {
  /** Sessions on the OCSP token for live signing; default 2 × cores. */
  hsmSessions?: number;
  /** OCSP change-feed poll interval in ms (default 2,000). */
  pollMs?: number;
}

/**
 * Builds the repository router. Opens the OCSP token (created in embedded mode) and loads
 * policies/ocsp.yaml. @throws HsmError when the OCSP token or its PIN is unavailable; Error for an
 * invalid policy file.
 */
export async function createRepoServer(deps: RoleDeps, opts: RepoServerOptions = {}): Promise<RoleServer> {
  ensureSoftHsmConfig(deps.cfg);
  const policy = loadOcspPolicy();
  const ocspKeys = openOcspKeys(Pkcs11Module.open(deps.cfg.pkcs11Module), deps.cfg, opts.hsmSessions);
  const ocsp = new OcspResponderService({ db: deps.db, keys: ocspKeys.keys, policy, pollMs: opts.pollMs });
  try {
    await ocsp.start();
  } catch (e) {
    ocspKeys.pool.close();
    throw e;
  }
  // The one write of this role: token lost / back, once per transition (audit trail of outages).
  auditTokenTransitions(deps.db, ocspKeys.pool.health, "repo", (e) => process.stderr.write(`hpki repo: audit of an HSM token transition: ${(e as Error).message}\n`));
  const publication = new RepositoryPublication(deps.db, policy.repository.crlMaxAgeSeconds);

  const router = express.Router();
  router.use(publication.handle);
  router.use(auditCheckpointRouter(deps.db));
  router.use(directoryRouter(deps.db));

  /** POST /ocsp and GET /ocsp/<base64> straight on node:http (RoleServer.preRoute): the hot path. */
  const preRoute = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? "";
    if (req.method === "POST" && (url === "/ocsp" || url.startsWith("/ocsp?"))) {
      readBody(req, MAX_OCSP_REQUEST_BYTES, (body) => {
        // A cached pre-signed answer is written in the same tick as the request's last byte.
        const cached = body && ocsp.cachedAnswer(body);
        if (cached) return sendOcsp(res, cached, false);
        (body === null ? Promise.resolve(null) : ocsp.respond(body, req.socket.remoteAddress)).then((a) => sendOcsp(res, a, false)).catch((e) => failOcsp(res, e));
      });
      return true;
    }
    if (req.method === "GET" && url.startsWith("/ocsp/")) {
      let der: Buffer | null;
      try {
        der = Buffer.from(decodeURIComponent(url.slice("/ocsp/".length).split("?")[0]), "base64");
      } catch {
        der = null;
      }
      const cached = der && der.length ? ocsp.cachedAnswer(der) : null;
      if (cached) {
        req.resume();
        sendOcsp(res, cached, true);
        return true;
      }
      (der && der.length ? ocsp.respond(der, req.socket.remoteAddress) : Promise.resolve(null)).then((a) => sendOcsp(res, a, true)).catch((e) => failOcsp(res, e));
      return true;
    }
    return false;
  };

  return {
    role: "repo",
    router,
    preRoute,
    health: () => ({ hsm: [ocspKeys.pool.health.report()] }),
    async close() {
      await ocsp.stop();
      ocspKeys.pool.close();
    },
  };
}

/** Calls `done` with the request body, or null when it exceeds `limit` bytes; a broken connection gets no answer. */
function readBody(req: IncomingMessage, limit: number, done: (body: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size <= limit) chunks.push(c);
  });
  req.on("end", () => done(size > limit ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
  req.on("error", (e) => process.stderr.write(`hpki repo: OCSP request: ${e.message}\n`));
}

/**
 * Writes an OCSPResponse (HTTP 200 whatever its responseStatus, RFC 6960 A.1; malformedRequest
 * for a body that was too large or undecodable). A pre-signed answer to GET gets the RFC 5019 §6.2
 * cache headers; everything else is no-store (a nonce response is for one client only).
 */
function sendOcsp(res: ServerResponse, answer: OcspAnswer | null, get: boolean): void {
  const body = answer?.body ?? MALFORMED_BODY;
  // One writeHead with a flat header list (no per-header validation and bookkeeping of setHeader).
  if (get && answer?.presigned) {
    const p = answer.presigned;
    const maxAge = Math.max(0, Math.floor((p.nextUpdate.getTime() - Date.now()) / 1000));
    res.writeHead(200, [
      "Content-Type", OCSP_RESPONSE_TYPE, "Content-Length", String(body.length),
      "Last-Modified", p.lastModified, "Expires", p.expires, "ETag", p.etag,
      "Cache-Control", `max-age=${maxAge}, public, no-transform, must-revalidate`,
    ]);
  } else {
    res.writeHead(200, ["Content-Type", OCSP_RESPONSE_TYPE, "Content-Length", String(body.length), "Cache-Control", "no-store"]);
  }
  res.end(body);
}

/** A failure outside the responder (the connection broke while reading): internalError if still possible. */
function failOcsp(res: ServerResponse, e: unknown): void {
  process.stderr.write(`hpki repo: OCSP request: ${(e as Error).message}\n`);
  if (!res.headersSent) sendOcsp(res, { body: INTERNAL_ERROR_BODY, path: "error" }, false);
}

const INTERNAL_ERROR_BODY = ocspErrorResponse("internalError");
