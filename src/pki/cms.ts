/**
 * CMS SignedData (RFC 5652) with one signer and encapsulated id-data content, built as DER from
 * parts so the HSM signs only the signed attributes: what `openssl cms -verify` reads. Pure: the
 * signature comes from the caller. Used for signed audit checkpoints (src/audit/checkpoint.ts).
 */
import { createHash } from "node:crypto";
import { explicit, octetString, oid, sequence, set, smallInteger, time, tlv, utf8String, unsignedInteger } from "./der.ts";
import { algorithmIdentifier, type SignatureAlgorithmName } from "./certificate.ts";
import { bytesOf, childrenOf, contentOf, decodeOid, readSingle, type Tlv } from "./der-cursor.ts";

const OID_DATA = "1.2.840.113549.1.7.1";
const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const OID_CONTENT_TYPE = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME = "1.2.840.113549.1.9.5";
const OID_SHA256 = "2.16.840.1.101.3.4.2.1";
const OID_COMMON_NAME = "2.5.4.3";
const OID_SUBJECT_KEY_IDENTIFIER = "2.5.29.14";

/** DER SET OF: elements sorted by their encodings (X.690 §11.6), as a verifier re-encodes them. */
function setOf(items: Buffer[]): Buffer {
  return set(...[...items].sort(Buffer.compare));
}

/** The signed attributes of a SignerInfo (RFC 5652 §5.3), as the DER SET OF that is signed (§5.4). */
export function cmsSignedAttributes(content: Uint8Array, signingTime: Date): Buffer {
  return setOf([
    sequence(oid(OID_CONTENT_TYPE), set(oid(OID_DATA))),
    sequence(oid(OID_SIGNING_TIME), set(time(signingTime))),
    sequence(oid(OID_MESSAGE_DIGEST), set(octetString(createHash("sha256").update(content).digest()))),
  ]);
}

/** Issuer Name DER and serialNumber INTEGER DER of a certificate (for IssuerAndSerialNumber). */
function issuerAndSerial(certificate: Uint8Array): Buffer {
  const cert = Buffer.from(certificate);
  const [tbs] = childrenOf(cert, readSingle(cert));
  const fields = childrenOf(cert, tbs);
  // tbsCertificate: [0] version (present: v3), serialNumber, signature, issuer, …
  const offset = cert[fields[0].start] === 0xa0 ? 1 : 0;
  const slice = (e: { start: number; end: number }) => cert.subarray(e.start, e.end);
  return sequence(slice(fields[offset + 2]), slice(fields[offset]));
}

/**
 * ContentInfo { id-signedData, SignedData v1 } (RFC 5652 §5.1) carrying `content` (id-data),
 * `certificate` (the signer's) and one SignerInfo v1 (IssuerAndSerialNumber, SHA-256,
 * `signedAttributes` from {@link cmsSignedAttributes} re-tagged [0] IMPLICIT, `alg`, `signature`
 * over the signed attributes' DER). Returns the DER.
 */
export function encodeCmsSignedData(p: { content: Uint8Array; certificate: Uint8Array; signedAttributes: Uint8Array; alg: SignatureAlgorithmName; signature: Uint8Array }): Buffer {
  const sha256 = sequence(oid(OID_SHA256));
  const signedAttrs = Buffer.from(p.signedAttributes);
  // [0] IMPLICIT SET OF Attribute: the same octets with the context tag (RFC 5652 §5.3).
  const implicitAttrs = Buffer.concat([Buffer.from([0xa0]), signedAttrs.subarray(1)]);
  const signerInfo = sequence(smallInteger(1), issuerAndSerial(p.certificate), sha256, implicitAttrs, algorithmIdentifier(p.alg), octetString(p.signature));
  const signedData = sequence(
    smallInteger(1),
    set(sha256),
    sequence(oid(OID_DATA), explicit(0, octetString(p.content))),
    tlv(0xa0, p.certificate),
    set(signerInfo),
  );
  return sequence(oid(OID_SIGNED_DATA), explicit(0, signedData));
}

/** The parts of a one-signer SignedData that a verifier needs. */
export interface ParsedCmsSignedData {
  /** The encapsulated content (eContent octets). */
  content: Buffer;
  /** The first certificate carried (the signer's, as {@link encodeCmsSignedData} writes it). */
  certificate: Buffer;
  /** The signed attributes as the DER SET OF that was signed (tag 0x31, RFC 5652 §5.4). */
  signedAttributes: Buffer;
  /** The messageDigest attribute's value. */
  messageDigest: Buffer;
  /** The signature OCTET STRING's value. */
  signature: Buffer;
}

/**
 * Reads a ContentInfo / SignedData of the shape {@link encodeCmsSignedData} writes (one signer,
 * signed attributes present, the signer certificate first). Checks nothing cryptographic.
 * @throws Error (DerReadError) when the DER or the shape is not that.
 */
export function parseCmsSignedData(der: Uint8Array): ParsedCmsSignedData {
  const b = Buffer.from(der);
  const [type, content] = childrenOf(b, readSingle(b));
  if (decodeOid(contentOf(b, type)) !== OID_SIGNED_DATA) throw new Error("not a CMS SignedData");
  const [signedData] = childrenOf(b, content);
  const parts = childrenOf(b, signedData);
  const encap = parts[2];
  const certs = parts.find((t) => t.tag === 0xa0);
  const signerInfos = parts[parts.length - 1];
  if (!certs) throw new Error("CMS SignedData carries no certificate");
  const [, eContent] = childrenOf(b, encap);
  const [octets] = childrenOf(b, eContent);
  const [signerInfo] = childrenOf(b, signerInfos);
  const si = childrenOf(b, signerInfo);
  const attrs = si.find((t) => t.tag === 0xa0);
  if (!attrs) throw new Error("CMS SignerInfo has no signed attributes");
  const signedAttributes = Buffer.concat([Buffer.from([0x31]), Buffer.from(bytesOf(b, attrs)).subarray(1)]);
  let messageDigest: Buffer | undefined;
  for (const a of childrenOf(b, attrs)) {
    const [aType, values] = childrenOf(b, a);
    if (decodeOid(contentOf(b, aType)) === OID_MESSAGE_DIGEST) messageDigest = Buffer.from(contentOf(b, childrenOf(b, values)[0]));
  }
  if (!messageDigest) throw new Error("CMS SignerInfo has no messageDigest attribute");
  const first = (t: Tlv) => Buffer.from(bytesOf(b, childrenOf(b, t)[0]));
  return {
    content: Buffer.from(contentOf(b, octets)),
    certificate: first(certs),
    signedAttributes,
    messageDigest,
    signature: Buffer.from(contentOf(b, si[si.length - 1])),
  };
}

/**
 * tbsCertificate of a self-signed signer certificate (RFC 5280 §4.1): v3, `serial`, subject =
 * issuer = CN `commonName`, validity `notBefore`–`notAfter`, `spki`, one extension
 * subjectKeyIdentifier (SHA-1 of the subjectPublicKey, §4.2.1.2 method 1 — over the whole SPKI
 * here, which is as unique). No keyUsage / basicConstraints, so OpenSSL accepts it both as its own
 * trust anchor (`-CAfile`) and for the S/MIME signing purpose `openssl cms -verify` checks.
 */
export function selfSignedTbs(p: { serial: Uint8Array; commonName: string; notBefore: Date; notAfter: Date; spki: Uint8Array; alg: SignatureAlgorithmName }): Buffer {
  const name = sequence(set(sequence(oid(OID_COMMON_NAME), utf8String(p.commonName))));
  const ski = createHash("sha1").update(p.spki).digest();
  return sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(p.serial),
    algorithmIdentifier(p.alg),
    name,
    sequence(time(p.notBefore), time(p.notAfter)),
    name,
    Buffer.from(p.spki),
    explicit(3, sequence(sequence(oid(OID_SUBJECT_KEY_IDENTIFIER), octetString(octetString(ski))))),
  );
}

