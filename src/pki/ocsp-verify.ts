/**
 * The relying party's check of an OCSPResponse (RFC 6960 §3.2, §4.2.2.2) for one certificate of a
 * validated path. The response structure is read with pkijs/asn1js, embedded certificates with
 * x509-parse.ts, and every signature is verified by node:crypto through `verifySignature` (the one
 * table of accepted algorithms, signature-algorithms.ts). Pure: bytes and a clock in, an answer
 * out; fetching is src/status/ocsp-fallback.ts.
 *
 * Accepted only when all of these hold:
 *  1. responseStatus successful and responseBytes of type id-pkix-ocsp-basic (§4.2.1);
 *  2. the BasicOCSPResponse signature over tbsResponseData verifies with the key of
 *     a. the CA that issued the certificate, or
 *     b. a delegated responder certificate carried in `certs`, issued (signed) by that same CA,
 *        with extKeyUsage id-kp-OCSPSigning, valid now, keyUsage (when present) digitalSignature,
 *        no critical extension we do not understand, and — unless it carries id-pkix-ocsp-nocheck
 *        (§4.2.2.2.1) — status "good" in the caller's revocation source;
 *     and whose key or name is the one the ResponderID names (§4.2.2.3);
 *  3. a SingleResponse whose CertID matches the certificate: issuerNameHash and issuerKeyHash of
 *     the issuing CA under the CertID's own hash (SHA-1 or SHA-256, §4.1.1) and the serial;
 *  4. thisUpdate (and producedAt) not later than now + skew; nextUpdate, when present, not passed;
 *     without nextUpdate the answer is good for `maxAgeWithoutNextUpdateMs` after thisUpdate
 *     (§4.2.2.1, §3.2 item 5);
 *  5. when a nonce was sent and the response carries one, they are equal (§4.4.1; RFC 8954);
 *  6. no critical response or single extension we do not understand (§4.4).
 * Anything else: OcspResponseError (the verifier fails closed on it).
 */
import { createHash } from "node:crypto";
import { publicKeyFromSpki } from "./public-key.ts";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { ab, bytesEqual } from "./der-cursor.ts";
import { issuerHashes, OCSP_RESPONSE_STATUS, subjectPublicKeyBits } from "./ocsp-response.ts";
import { ocspNonceExtnValue, type CertIdHashAlgorithm } from "./ocsp-request.ts";
import { OID } from "./oids.ts";
import { verifySignature, type CaCertificate } from "./path-validation.ts";
import type { RevocationSource } from "./revocation-index.ts";
import {
  decodeExtKeyUsage,
  decodeKeyUsage,
  parseCertificate,
  UNDERSTOOD_EXTENSIONS,
  type ParsedCertificate,
} from "./x509-parse.ts";

/** The response cannot be relied on; `message` says why (for logs and the refusal's detail). */
export class OcspResponseError extends Error {
  override name = "OcspResponseError";
}

/** What is asked: a certificate and the CA that issued it (as path validation found them). */
export interface OcspQuestion {
  certificate: ParsedCertificate;
  issuer: CaCertificate;
}

export interface OcspVerifyOptions {
  /** The instant of the check (normally now). */
  at: Date;
  /** The nonce octets the request carried (not the extnValue), if any. */
  nonce?: Uint8Array;
  /** How far thisUpdate / producedAt may lie in the future (clock skew), ms. */
  skewMs: number;
  /** Lifetime of an answer without nextUpdate, counted from thisUpdate, ms. */
  maxAgeWithoutNextUpdateMs: number;
  /** Status of a delegated responder certificate without id-pkix-ocsp-nocheck; without it such a responder is refused. */
  responderRevocation?: RevocationSource;
}

/** A verified answer about the asked certificate. */
export interface VerifiedOcspAnswer {
  status: "good" | "revoked" | "unknown";
  /** For "revoked": RevokedInfo (§4.2.1); the reason is a CRLReason code (RFC 5280 §5.3.1). */
  revocationTime?: Date;
  revocationReason?: number;
  thisUpdate: Date;
  nextUpdate?: Date;
  producedAt: Date;
  /** Who signed: "CA" or the delegated responder's subject serial (hex), for logs. */
  signer: string;
}

const HASH_BY_OID: Readonly<Record<string, CertIdHashAlgorithm>> = { [OID.idSha1]: "sha1", [OID.idSha256]: "sha256" };
const STATUS_NAMES = new Map<number, string>(Object.entries(OCSP_RESPONSE_STATUS).map(([k, v]) => [v, k]));
/** Extensions a responder certificate may carry as critical: those of x509-parse plus ocsp-nocheck. */
const RESPONDER_EXTENSIONS = new Set<string>([...UNDERSTOOD_EXTENSIONS, OID.idPkixOcspNocheck]);
/** Response/single extensions we understand (§4.4): only the nonce. */
const RESPONSE_EXTENSIONS = new Set<string>([OID.idPkixOcspNonce]);

const fail = (message: string): never => {
  throw new OcspResponseError(message);
};

/** Strict whole-input BER decode (trailing octets refused). */
function decodeAll(bytes: Uint8Array, what: string): asn1js.AsnType {
  const r = asn1js.fromBER(ab(bytes));
  if (r.offset === -1 || r.offset !== bytes.length) fail(`${what}: not one ASN.1 value`);
  return r.result;
}

/** Runs a pkijs constructor; its schema errors become OcspResponseError. */
function pkiOf<T>(what: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    return fail(`${what}: ${(e as Error).message}`);
  }
}

/**
 * Verifies `der` (an OCSPResponse as received) for `q` at `o.at`; see the module comment for the
 * rules. Returns the answer, which may be "unknown" (the responder does not know the certificate;
 * the caller fails closed on it). @throws OcspResponseError for any unmet rule.
 */
export function verifyOcspResponse(der: Uint8Array, q: OcspQuestion, o: OcspVerifyOptions): VerifiedOcspAnswer {
  const outer = pkiOf("OCSPResponse", () => new pkijs.OCSPResponse({ schema: decodeAll(der, "OCSPResponse") }));
  const status = outer.responseStatus.valueBlock.valueDec;
  if (status !== OCSP_RESPONSE_STATUS.successful) fail(`responder answered ${STATUS_NAMES.get(status) ?? `status ${status}`}`);
  if (!outer.responseBytes) fail("successful response without responseBytes");
  if (outer.responseBytes!.responseType !== OID.idPkixOcspBasic) fail(`unsupported responseType ${outer.responseBytes!.responseType}`);
  const basicTree = decodeAll(outer.responseBytes!.response.valueBlock.valueHexView, "BasicOCSPResponse");
  const certDers = embeddedCertificates(basicTree);
  const basic = pkiOf("BasicOCSPResponse", () => new pkijs.BasicOCSPResponse({ schema: basicTree }));
  const data = basic.tbsResponseData;

  const signer = responseSigner(basic, certDers, q, o);
  rejectCriticalExtensions(data.responseExtensions, "response");
  checkNonce(data.responseExtensions, o.nonce);

  const producedAt = data.producedAt;
  if (producedAt.getTime() > o.at.getTime() + o.skewMs) fail(`producedAt ${producedAt.toISOString()} is in the future`);
  const single = matchingResponse(data.responses, q);
  rejectCriticalExtensions(single.singleExtensions, "single");
  const answer: VerifiedOcspAnswer = { ...certStatus(single.certStatus), thisUpdate: single.thisUpdate, producedAt, signer };
  if (single.nextUpdate) answer.nextUpdate = single.nextUpdate;
  const t = o.at.getTime();
  if (answer.thisUpdate.getTime() > t + o.skewMs) fail(`thisUpdate ${answer.thisUpdate.toISOString()} is in the future`);
  const goodUntil = answer.nextUpdate ? answer.nextUpdate.getTime() : answer.thisUpdate.getTime() + o.maxAgeWithoutNextUpdateMs;
  if (t > goodUntil) fail(`stale answer: ${answer.nextUpdate ? `nextUpdate ${answer.nextUpdate.toISOString()}` : `thisUpdate ${answer.thisUpdate.toISOString()} without nextUpdate`} has passed`);
  return answer;
}

/** The DER of each certificate in BasicOCSPResponse.certs, exactly as received. */
function embeddedCertificates(basic: asn1js.AsnType): Uint8Array[] {
  const fields = basic instanceof asn1js.Sequence ? basic.valueBlock.value : [];
  const certs = fields.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0);
  const list = certs instanceof asn1js.Constructed ? certs.valueBlock.value[0] : undefined;
  return list instanceof asn1js.Sequence ? list.valueBlock.value.map((c) => new Uint8Array(c.valueBeforeDecodeView)) : [];
}

/** Finds who signed tbsResponseData (rule 2) and returns its label; throws when no authorised signer verifies. */
function responseSigner(basic: pkijs.BasicOCSPResponse, certDers: Uint8Array[], q: OcspQuestion, o: OcspVerifyOptions): string {
  const alg = basic.signatureAlgorithm;
  const params = alg.algorithmParams ? new Uint8Array(alg.algorithmParams.toBER(false)) : undefined;
  if (basic.signature.valueBlock.unusedBits !== 0) fail("signature BIT STRING has unused bits");
  const signature = basic.signature.valueBlock.valueHexView;
  const tbs = basic.tbsResponseData.tbsView;
  const named = responderIdMatcher(basic.tbsResponseData.responderID);
  const ca = q.issuer;
  if (named(ca.cert) && verifySignature(alg.algorithmId, params, ca.key, tbs, signature)) return "CA";
  const reasons: string[] = [];
  for (const certDer of certDers) {
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(certDer);
    } catch (e) {
      reasons.push(`unreadable certificate: ${(e as Error).message}`);
      continue;
    }
    if (!named(cert)) continue;
    const refusal = delegationRefusal(cert, ca, o);
    if (refusal) {
      reasons.push(refusal);
      continue;
    }
    const key = publicKeyFromSpki(cert.spki);
    if (verifySignature(alg.algorithmId, params, key, tbs, signature)) return `responder ${Buffer.from(cert.serial).toString("hex").toUpperCase()}`;
    reasons.push("signature does not verify with the responder certificate");
  }
  return fail(`no authorised signer: the signature verifies neither with ${ca.name} nor with a delegated responder it issued${reasons.length ? ` (${reasons.join("; ")})` : ""}`);
}

/** ResponderID (§4.2.2.3) → does it name this certificate (byName: subject DER; byKey: SHA-1 of the key bits)? */
function responderIdMatcher(id: pkijs.RelativeDistinguishedNames | asn1js.OctetString): (cert: ParsedCertificate) => boolean {
  if (id instanceof pkijs.RelativeDistinguishedNames) {
    const name = new Uint8Array(id.valueBeforeDecode);
    return (cert) => bytesEqual(cert.subject, name);
  }
  const keyHash = id.valueBlock.valueHexView;
  return (cert) => bytesEqual(createHash("sha1").update(subjectPublicKeyBits(cert.spki)).digest(), keyHash);
}

/** Why `cert` may not answer for `ca` (RFC 6960 §4.2.2.2), or undefined when it may. */
function delegationRefusal(cert: ParsedCertificate, ca: CaCertificate, o: OcspVerifyOptions): string | undefined {
  if (!bytesEqual(cert.issuer, ca.cert.subject) || !verifySignature(cert.signatureAlgorithm, cert.signatureParameters, ca.key, cert.tbs, cert.signature)) {
    return "responder certificate not issued by the certificate's CA";
  }
  const t = o.at.getTime();
  if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) return "responder certificate outside its validity";
  const eku = cert.extensions.get(OID.extKeyUsage);
  try {
    if (!eku || !decodeExtKeyUsage(eku.value).includes(OID.idKpOcspSigning)) return "responder certificate lacks id-kp-OCSPSigning";
    const ku = cert.extensions.get(OID.keyUsage);
    if (ku && !decodeKeyUsage(ku.value).has("digitalSignature")) return "responder certificate keyUsage lacks digitalSignature";
  } catch (e) {
    return `responder certificate: ${(e as Error).message}`;
  }
  for (const [oid, ext] of cert.extensions) if (ext.critical && !RESPONDER_EXTENSIONS.has(oid)) return `responder certificate has unknown critical extension ${oid}`;
  if (!cert.extensions.has(OID.idPkixOcspNocheck) && o.responderRevocation?.status(ca.keyId, cert.serial, o.at) !== "good") {
    return "responder certificate without ocsp-nocheck and not known to be unrevoked";
  }
  return undefined;
}

/** The SingleResponse for the asked certificate (rule 3); of several, the worst status wins. */
function matchingResponse(responses: pkijs.SingleResponse[], q: OcspQuestion): pkijs.SingleResponse {
  const hashes = new Map<CertIdHashAlgorithm, ReturnType<typeof issuerHashes>>();
  const rank = (r: pkijs.SingleResponse) => ({ good: 0, unknown: 1, revoked: 2 })[certStatus(r.certStatus).status];
  let best: pkijs.SingleResponse | undefined;
  for (const r of responses) {
    const hash = HASH_BY_OID[r.certID.hashAlgorithm.algorithmId];
    if (!hash) continue;
    if (!hashes.has(hash)) hashes.set(hash, issuerHashes(hash, q.issuer.cert.subject, q.issuer.cert.spki));
    const h = hashes.get(hash)!;
    const id = r.certID;
    if (!bytesEqual(id.issuerNameHash.valueBlock.valueHexView, h.issuerNameHash) || !bytesEqual(id.issuerKeyHash.valueBlock.valueHexView, h.issuerKeyHash)) continue;
    if (!bytesEqual(magnitude(id.serialNumber.valueBlock.valueHexView), q.certificate.serial)) continue;
    if (!best || rank(r) > rank(best)) best = r;
  }
  return best ?? fail("no SingleResponse for this certificate (CertID issuer hashes and serial)");
}

/** INTEGER content → magnitude without the 0x00 sign octet (a negative serial matches nothing). */
function magnitude(content: Uint8Array): Uint8Array {
  return content.length > 1 && content[0] === 0 ? content.subarray(1) : content;
}

/** CertStatus CHOICE (§4.2.1): good [0], revoked [1] RevokedInfo, unknown [2]. */
function certStatus(s: unknown): Pick<VerifiedOcspAnswer, "status" | "revocationTime" | "revocationReason"> {
  const block = s as asn1js.BaseBlock;
  if (block?.idBlock?.tagClass !== 3) return fail("malformed certStatus");
  const n = block.idBlock.tagNumber;
  if (n === 0) return { status: "good" };
  if (n === 2) return { status: "unknown" };
  if (n !== 1 || !(block instanceof asn1js.Constructed)) return fail("malformed certStatus");
  const [time, reason] = block.valueBlock.value;
  if (!(time instanceof asn1js.GeneralizedTime)) return fail("RevokedInfo without revocationTime");
  const out: ReturnType<typeof certStatus> = { status: "revoked", revocationTime: time.toDate() };
  const code = reason instanceof asn1js.Constructed ? reason.valueBlock.value[0] : undefined;
  if (code instanceof asn1js.Enumerated) out.revocationReason = code.valueBlock.valueDec;
  return out;
}

function rejectCriticalExtensions(exts: pkijs.Extension[] | undefined, where: string): void {
  for (const e of exts ?? []) if (e.critical && !RESPONSE_EXTENSIONS.has(e.extnID)) fail(`unknown critical ${where} extension ${e.extnID}`);
}

/** Rule 5: a nonce in the response must be the one sent; a response without one is accepted. */
function checkNonce(exts: pkijs.Extension[] | undefined, nonce: Uint8Array | undefined): void {
  if (!nonce) return;
  const echoed = exts?.find((e) => e.extnID === OID.idPkixOcspNonce);
  if (echoed && !bytesEqual(echoed.extnValue.valueBlock.valueHexView, ocspNonceExtnValue(nonce))) fail("nonce in the response differs from the one sent");
}
