/**
 * OCSPResponse encoder (RFC 6960 §4.2.1), written straight into DER with der.ts; the signature
 * comes from the HSM over the bytes `encodeResponseData` returns. Pure: bytes in, bytes out.
 *
 *   OCSPResponse      ::= SEQUENCE { responseStatus OCSPResponseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes     ::= SEQUENCE { responseType OBJECT IDENTIFIER (id-pkix-ocsp-basic), response OCTET STRING }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *                         signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *   ResponseData      ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
 *                         producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
 *                         responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   SingleResponse    ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *                         nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   CertStatus        ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT UnknownInfo }
 *   RevokedInfo       ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 */
import { createHash } from "node:crypto";
import { bitString, derNull, enumerated, explicit, generalizedTime, octetString, oid, sequence, tlv, unsignedInteger } from "./der.ts";
import { algorithmIdentifier, type SignatureAlgorithmName } from "./certificate.ts";
import { childrenOf, DerReadError, readSingle } from "./der-cursor.ts";
import { OID } from "./oids.ts";
import type { CertIdHashAlgorithm } from "./ocsp-request.ts";

/** OCSPResponseStatus (RFC 6960 §4.2.1). */
export const OCSP_RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;

/** The unsuccessful OCSPResponse for `status` (no responseBytes, unsigned by definition): 5 octets. */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, "successful">): Buffer {
  return sequence(enumerated(OCSP_RESPONSE_STATUS[status]));
}

/** A certificate's status for one SingleResponse; `revocationReason` is a CRLReason code (RFC 5280 §5.3.1). */
export type OcspCertStatus =
  | { kind: "good" }
  | { kind: "revoked"; revocationTime: Date; revocationReason?: number }
  | { kind: "unknown" };

export interface SingleResponseInput {
  /** CertID DER: `encodeCertId`, or the request's CertID as sent. */
  certId: Uint8Array;
  status: OcspCertStatus;
  thisUpdate: Date;
  /** Omitted only when newer information is always available (RFC 6960 §4.2.2.1); we always set it. */
  nextUpdate?: Date;
}

export interface ResponseDataInput {
  /** ResponderID byKey: SHA-1 of the responder certificate's subjectPublicKey BIT STRING value (20 octets). */
  responderKeyHash: Uint8Array;
  producedAt: Date;
  responses: readonly SingleResponseInput[];
  /** The request's id-pkix-ocsp-nonce extnValue, echoed in responseExtensions (RFC 6960 §4.4.1). */
  nonce?: Uint8Array | null;
}

const HASH_ALGORITHM_IDENTIFIER: Record<CertIdHashAlgorithm, Buffer> = {
  sha1: sequence(oid(OID.idSha1), derNull()),
  sha256: sequence(oid(OID.idSha256), derNull()),
};

/**
 * CertID (RFC 6960 §4.1.1) for `hash`: issuerNameHash = hash of the issuer Name DER,
 * issuerKeyHash = hash of the issuer's subjectPublicKey BIT STRING value (see `issuerHashes`),
 * serialNumber from its magnitude. Hash parameters are NULL, as OpenSSL sends them.
 */
export function encodeCertId(hash: CertIdHashAlgorithm, issuerNameHash: Uint8Array, issuerKeyHash: Uint8Array, serialMagnitude: Uint8Array): Buffer {
  return sequence(HASH_ALGORITHM_IDENTIFIER[hash], octetString(issuerNameHash), octetString(issuerKeyHash), unsignedInteger(serialMagnitude));
}

/**
 * issuerNameHash and issuerKeyHash of a CA for `hash` (RFC 6960 §4.1.1): the hash of the CA
 * certificate's subject Name DER and of the subjectPublicKey BIT STRING value of its
 * SubjectPublicKeyInfo `spki` (without tag, length and unused-bits octet).
 * @throws DerReadError when `spki` is not a SubjectPublicKeyInfo.
 */
export function issuerHashes(hash: CertIdHashAlgorithm, subjectNameDer: Uint8Array, spki: Uint8Array): { issuerNameHash: Buffer; issuerKeyHash: Buffer } {
  return {
    issuerNameHash: createHash(hash).update(subjectNameDer).digest(),
    issuerKeyHash: createHash(hash).update(subjectPublicKeyBits(spki)).digest(),
  };
}

/**
 * The subject Name DER and SubjectPublicKeyInfo DER of a certificate (RFC 5280 §4.1.2.6, §4.1.2.7),
 * as views into `certificate` — what CertID hashes are computed from.
 * @throws DerReadError when `certificate` is not a DER Certificate.
 */
export function certificateSubjectAndSpki(certificate: Uint8Array): { subject: Uint8Array; spki: Uint8Array } {
  const [tbs] = childrenOf(certificate, readSingle(certificate));
  const fields = childrenOf(certificate, tbs);
  const i = fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  const subject = fields[i + 4];
  const spki = fields[i + 5];
  if (!subject || !spki || subject.tag !== 0x30 || spki.tag !== 0x30) throw new DerReadError("not a Certificate", 0);
  return { subject: certificate.subarray(subject.start, subject.end), spki: certificate.subarray(spki.start, spki.end) };
}

/** The subjectPublicKey BIT STRING value (after the unused-bits octet) of a SubjectPublicKeyInfo. */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const [, key] = childrenOf(spki, readSingle(spki));
  return spki.subarray(key.contentStart + 1, key.end);
}

const GOOD = Buffer.from([0x80, 0x00]);
const UNKNOWN = Buffer.from([0x82, 0x00]);

function certStatus(s: OcspCertStatus): Buffer {
  if (s.kind === "good") return GOOD;
  if (s.kind === "unknown") return UNKNOWN;
  const parts = [generalizedTime(s.revocationTime)];
  if (s.revocationReason !== undefined) parts.push(explicit(0, enumerated(s.revocationReason)));
  return tlv(0xa1, ...parts);
}

/** One SingleResponse DER. */
export function encodeSingleResponse(r: SingleResponseInput): Buffer {
  const parts = [Buffer.from(r.certId), certStatus(r.status), generalizedTime(r.thisUpdate)];
  if (r.nextUpdate) parts.push(explicit(0, generalizedTime(r.nextUpdate)));
  return sequence(...parts);
}

/**
 * tbsResponseData (ResponseData, v1 so the version is omitted): responderID byKey ([2] EXPLICIT
 * KeyHash), producedAt, the SingleResponses, and the nonce extension when given. These are the
 * bytes the responder key signs.
 */
export function encodeResponseData(d: ResponseDataInput): Buffer {
  const parts = [explicit(2, octetString(d.responderKeyHash)), generalizedTime(d.producedAt), sequence(...d.responses.map(encodeSingleResponse))];
  if (d.nonce) parts.push(explicit(1, sequence(sequence(oid(OID.idPkixOcspNonce), octetString(d.nonce)))));
  return sequence(...parts);
}

/**
 * The successful OCSPResponse around a signed ResponseData: BasicOCSPResponse with `signature`
 * (PKCS#1 v1.5 octets, or DER Ecdsa-Sig-Value) and the responder certificate(s) in `certs` so a
 * client that trusts only the CA can check the delegation (RFC 6960 §4.2.2.2).
 */
export function encodeOcspResponse(tbsResponseData: Uint8Array, signatureAlgorithm: SignatureAlgorithmName, signature: Uint8Array, certs: readonly Uint8Array[]): Buffer {
  const basic = sequence(
    tbsResponseData,
    algorithmIdentifier(signatureAlgorithm),
    bitString(signature),
    ...(certs.length ? [explicit(0, sequence(...certs))] : []),
  );
  return sequence(enumerated(OCSP_RESPONSE_STATUS.successful), explicit(0, sequence(oid(OID.idPkixOcspBasic), octetString(basic))));
}
