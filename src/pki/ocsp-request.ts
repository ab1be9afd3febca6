/**
 * OCSPRequest decoder (RFC 6960 §4.1.1) over the strict DER reader: no asn1js objects, a few
 * microseconds per request, so the responder's hot path stays allocation-light; and the encoder a
 * relying party sends (src/status/ocsp-fallback.ts). Pure.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT
 *                   GeneralName OPTIONAL, requestList SEQUENCE OF Request, requestExtensions [2]
 *                   EXPLICIT Extensions OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 *   CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                   issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 */
import { explicit, octetString, oid, sequence } from "./der.ts";
import { childrenOf, contentOf, decodeOid, DerReadError, isContext, readDer, type Tlv } from "./der-cursor.ts";
import { OID } from "./oids.ts";

/** CertID hash algorithms we answer for (RFC 6960 §4.1.1; SHA-256 per RFC 6960 §4.3 / RFC 5019 §2.1.1). */
export type CertIdHashAlgorithm = "sha1" | "sha256";

const HASH_BY_OID: Record<string, { name: CertIdHashAlgorithm; length: number }> = {
  [OID.idSha1]: { name: "sha1", length: 20 },
  [OID.idSha256]: { name: "sha256", length: 32 },
};

/** One requested CertID. */
export interface RequestedCertId {
  /** null when the request names a hash algorithm we do not support (answer: unauthorized). */
  hashAlgorithm: CertIdHashAlgorithm | null;
  /** Hash of the issuer's DN (the DER of the issuer Name). */
  issuerNameHash: Uint8Array;
  /** Hash of the issuer's public key (subjectPublicKey BIT STRING value). */
  issuerKeyHash: Uint8Array;
  /**
   * serialNumber as the uppercase hex of its minimal magnitude with an even number of digits (the
   * form stored in certificates.serial_hex); null for a negative INTEGER, which no certificate of
   * ours has (answer: unknown).
   */
  serialHex: string | null;
  /** The CertID DER exactly as sent, echoed into the SingleResponse of a live response. */
  der: Uint8Array;
}

export interface OcspRequest {
  requests: RequestedCertId[];
  /**
   * extnValue of the id-pkix-ocsp-nonce request extension (RFC 6960 §4.4.1; with RFC 8954 an
   * OCTET STRING of 1–32 octets inside), copied as sent; null when the request carries no nonce.
   */
  nonce: Uint8Array | null;
}

/** The request is not a well-formed OCSPRequest: answer malformedRequest (RFC 6960 §2.3). */
export class OcspRequestError extends Error {
  override name = "OcspRequestError";
}

/** More CertIDs than this in one request are refused as malformed (a request is one client's question). */
export const MAX_REQUESTS_PER_OCSP_REQUEST = 32;

const fail = (message: string): never => {
  throw new OcspRequestError(`malformed OCSPRequest: ${message}`);
};

/**
 * Decodes an OCSPRequest (strict DER, X.690 §10). The optional signature is not checked (we do
 * not require signed requests, RFC 6960 §4.1.2). A nonce longer than 32 octets is refused
 * (RFC 8954 §2.1).
 * @throws OcspRequestError for anything that is not a well-formed OCSPRequest with 1–32 CertIDs.
 */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  try {
    return parseTree(der, readDer(der));
  } catch (e) {
    if (e instanceof DerReadError) return fail(e.message);
    throw e;
  }
}

function parseTree(der: Uint8Array, top: Tlv): OcspRequest {
  if (top.tag !== 0x30) fail("not a SEQUENCE");
  const outer = childrenOf(der, top);
  if (outer.length < 1 || outer.length > 2 || outer[0].tag !== 0x30) fail("expected tbsRequest");
  if (outer.length === 2 && !isContext(outer[1], 0, true)) fail("unexpected element after tbsRequest");
  const tbs = childrenOf(der, outer[0]);
  let i = 0;
  if (tbs[i] && isContext(tbs[i], 0, true)) {
    const v = childrenOf(der, tbs[i]);
    if (v.length !== 1 || v[0].tag !== 0x02 || v[0].end - v[0].contentStart !== 1 || der[v[0].contentStart] !== 0) fail("unsupported version (only v1)");
    i++;
  }
  if (tbs[i] && isContext(tbs[i], 1, true)) i++; // requestorName: not used
  const list = tbs[i++];
  if (!list || list.tag !== 0x30) fail("expected requestList");
  let nonce: Uint8Array | null = null;
  if (tbs[i] && isContext(tbs[i], 2, true)) nonce = nonceOf(der, tbs[i++]);
  if (i !== tbs.length) fail("unexpected element in tbsRequest");
  const items = childrenOf(der, list);
  if (items.length === 0) fail("empty requestList");
  if (items.length > MAX_REQUESTS_PER_OCSP_REQUEST) fail(`more than ${MAX_REQUESTS_PER_OCSP_REQUEST} CertIDs`);
  return { requests: items.map((r) => certIdOf(der, r)), nonce };
}

function certIdOf(der: Uint8Array, request: Tlv): RequestedCertId {
  if (request.tag !== 0x30) fail("Request is not a SEQUENCE");
  const parts = childrenOf(der, request);
  if (parts.length < 1 || parts.length > 2 || parts[0].tag !== 0x30) fail("expected reqCert");
  if (parts.length === 2 && !isContext(parts[1], 0, true)) fail("unexpected element in Request");
  const [alg, nameHash, keyHash, serial, extra] = childrenOf(der, parts[0]);
  if (!serial || extra || alg.tag !== 0x30 || nameHash.tag !== 0x04 || keyHash.tag !== 0x04 || serial.tag !== 0x02) fail("CertID is not {AlgorithmIdentifier, OCTET STRING, OCTET STRING, INTEGER}");
  const algParts = childrenOf(der, alg);
  if (algParts.length < 1 || algParts.length > 2 || algParts[0].tag !== 0x06) fail("bad hashAlgorithm");
  if (algParts.length === 2 && !(algParts[1].tag === 0x05 && algParts[1].end === algParts[1].contentStart)) fail("hashAlgorithm parameters must be NULL or absent");
  const known = HASH_BY_OID[decodeOid(contentOf(der, algParts[0]), algParts[0].contentStart)];
  const issuerNameHash = contentOf(der, nameHash);
  const issuerKeyHash = contentOf(der, keyHash);
  if (known && (issuerNameHash.length !== known.length || issuerKeyHash.length !== known.length)) fail(`${known.name} hashes must be ${known.length} octets`);
  if (serial.end === serial.contentStart) fail("empty serialNumber");
  return {
    hashAlgorithm: known?.name ?? null,
    issuerNameHash,
    issuerKeyHash,
    serialHex: serialHexOf(contentOf(der, serial)),
    der: der.subarray(parts[0].start, parts[0].end),
  };
}

/** Uppercase hex of the magnitude of a non-negative INTEGER's content octets; null when negative. */
function serialHexOf(content: Uint8Array): string | null {
  if (content[0] & 0x80) return null;
  const start = content.length > 1 && content[0] === 0 ? 1 : 0;
  return Buffer.from(content.buffer, content.byteOffset + start, content.byteLength - start).toString("hex").toUpperCase();
}

/** The nonce extension's extnValue from requestExtensions, or null when there is none. */
function nonceOf(der: Uint8Array, wrapper: Tlv): Uint8Array | null {
  const exts = childrenOf(der, wrapper);
  if (exts.length !== 1 || exts[0].tag !== 0x30) fail("requestExtensions is not one SEQUENCE");
  let nonce: Uint8Array | null = null;
  for (const ext of childrenOf(der, exts[0])) {
    if (ext.tag !== 0x30) fail("Extension is not a SEQUENCE");
    const f = childrenOf(der, ext);
    const value = f[f.length - 1];
    if (f.length < 2 || f.length > 3 || f[0].tag !== 0x06 || value.tag !== 0x04) fail("bad Extension");
    if (decodeOid(contentOf(der, f[0]), f[0].contentStart) !== OID.idPkixOcspNonce) continue;
    const v = contentOf(der, value);
    // RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)); older clients send raw octets, also ≤ 32.
    if (v.length === 0 || v.length > 34) fail("nonce must be 1 to 32 octets");
    nonce = v;
  }
  return nonce;
}

/**
 * extnValue content of an id-pkix-ocsp-nonce extension for `nonce` (RFC 8954 §2.1: Nonce ::=
 * OCTET STRING (SIZE(1..32))): the DER OCTET STRING around the nonce octets. A response answers a
 * nonce by echoing exactly these octets (RFC 6960 §4.4.1).
 * @throws RangeError when `nonce` is not 1 to 32 octets.
 */
export function ocspNonceExtnValue(nonce: Uint8Array): Buffer {
  if (nonce.length < 1 || nonce.length > 32) throw new RangeError("OCSP nonce must be 1 to 32 octets (RFC 8954 §2.1)");
  return octetString(nonce);
}

/**
 * An unsigned v1 OCSPRequest (RFC 6960 §4.1.1; the version is DEFAULT and so omitted, no
 * requestorName): one Request per CertID DER (`encodeCertId` in ocsp-response.ts) and, when
 * `nonce` is given, requestExtensions with the id-pkix-ocsp-nonce extension (non-critical,
 * extnValue `ocspNonceExtnValue(nonce)`). What `parseOcspRequest` and `openssl ocsp -reqin` read.
 * @throws RangeError for no CertID, more than MAX_REQUESTS_PER_OCSP_REQUEST, or a bad nonce length.
 */
export function encodeOcspRequest(certIds: readonly Uint8Array[], nonce?: Uint8Array): Buffer {
  if (certIds.length < 1 || certIds.length > MAX_REQUESTS_PER_OCSP_REQUEST) throw new RangeError(`an OCSPRequest carries 1 to ${MAX_REQUESTS_PER_OCSP_REQUEST} CertIDs`);
  const requestList = sequence(...certIds.map((id) => sequence(id)));
  const extensions = nonce ? [explicit(2, sequence(sequence(oid(OID.idPkixOcspNonce), octetString(ocspNonceExtnValue(nonce)))))] : [];
  return sequence(sequence(requestList, ...extensions));
}
