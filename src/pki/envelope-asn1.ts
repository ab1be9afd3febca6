/**
 * ASN.1 of the CMS envelope (RFC 5083 AuthEnvelopedData, RFC 5652 §6.2 RecipientInfo): DER
 * writers for what we seal, and a BER reader (asn1js) for what we or OpenSSL sealed. The reader
 * keeps each element's encoded bytes so a forward (issue 15 §6) can rebuild the envelope around the
 * untouched authEncryptedContentInfo and mac. No cryptography here.
 */
import * as asn1js from "asn1js";
import { derLength, derNull, explicit, octetString, oid, sequence, set, smallInteger, tlv, unsignedInteger } from "./der.ts";

/** Object identifiers of the envelope, by their names in the RFCs. */
export const ENVELOPE_OID = {
  /** RFC 5083 §1: id-ct-authEnvelopedData. */
  authEnvelopedData: "1.2.840.113549.1.9.16.1.23",
  /** RFC 5652 §4: id-data. */
  data: "1.2.840.113549.1.7.1",
  /** RFC 5084 §3.2: id-aes128-GCM, id-aes192-GCM, id-aes256-GCM. */
  aes128Gcm: "2.16.840.1.101.3.4.1.6",
  aes192Gcm: "2.16.840.1.101.3.4.1.26",
  aes256Gcm: "2.16.840.1.101.3.4.1.46",
  /** RFC 3565 §2.3.2: id-aes128-wrap, id-aes192-wrap, id-aes256-wrap. */
  aes128Wrap: "2.16.840.1.101.3.4.1.5",
  aes192Wrap: "2.16.840.1.101.3.4.1.25",
  aes256Wrap: "2.16.840.1.101.3.4.1.45",
  /** RFC 5753 §7.1.4 / SEC 1: ephemeral-static ECDH with the X9.63 KDF over SHA-1/224/256/384/512. */
  dhSinglePassStdDhSha1Kdf: "1.3.133.16.840.63.0.2",
  dhSinglePassStdDhSha224Kdf: "1.3.132.1.11.0",
  dhSinglePassStdDhSha256Kdf: "1.3.132.1.11.1",
  dhSinglePassStdDhSha384Kdf: "1.3.132.1.11.2",
  dhSinglePassStdDhSha512Kdf: "1.3.132.1.11.3",
  /** RFC 5480 §2.1.1. */
  idEcPublicKey: "1.2.840.10045.2.1",
  secp256r1: "1.2.840.10045.3.1.7",
  /** RFC 8017 / RFC 4055 §4.1. */
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaesOaep: "1.2.840.113549.1.1.7",
  mgf1: "1.2.840.113549.1.1.8",
  pSpecified: "1.2.840.113549.1.1.9",
  sha1: "1.3.14.3.2.26",
  sha224: "2.16.840.1.101.3.4.2.4",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
} as const;

/** WebCrypto hash names by digest OID (RFC 4055 §2.1). */
export const HASH_BY_OID: Readonly<Record<string, HashName>> = {
  [ENVELOPE_OID.sha1]: "SHA-1",
  [ENVELOPE_OID.sha256]: "SHA-256",
  [ENVELOPE_OID.sha384]: "SHA-384",
  [ENVELOPE_OID.sha512]: "SHA-512",
};
export type HashName = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";

/** KDF hash of each dhSinglePass-stdDH scheme (RFC 5753 §7.1.4); SHA-224 is not offered by WebCrypto. */
export const KDF_HASH_BY_SCHEME: Readonly<Record<string, HashName>> = {
  [ENVELOPE_OID.dhSinglePassStdDhSha1Kdf]: "SHA-1",
  [ENVELOPE_OID.dhSinglePassStdDhSha256Kdf]: "SHA-256",
  [ENVELOPE_OID.dhSinglePassStdDhSha384Kdf]: "SHA-384",
  [ENVELOPE_OID.dhSinglePassStdDhSha512Kdf]: "SHA-512",
};

/** Key-encryption-key length in bytes of each AES key wrap (RFC 3394 via RFC 3565). */
export const WRAP_KEY_BYTES: Readonly<Record<string, number>> = {
  [ENVELOPE_OID.aes128Wrap]: 16,
  [ENVELOPE_OID.aes192Wrap]: 24,
  [ENVELOPE_OID.aes256Wrap]: 32,
};

/** Content-encryption key length in bytes of each AES-GCM (RFC 5084 §3.2). */
export const GCM_KEY_BYTES: Readonly<Record<string, number>> = {
  [ENVELOPE_OID.aes128Gcm]: 16,
  [ENVELOPE_OID.aes192Gcm]: 24,
  [ENVELOPE_OID.aes256Gcm]: 32,
};

/** Errors of sealing, opening and forwarding envelopes; `code` is stable for callers. */
export class EnvelopeError extends Error {
  constructor(
    message: string,
    readonly code:
      | "MALFORMED"
      | "NOT_AUTH_ENVELOPED"
      | "UNSUPPORTED_ALGORITHM"
      | "BAD_RECIPIENT_CERTIFICATE"
      | "NO_RECIPIENT_INFO"
      | "RECIPIENT_EXISTS"
      | "KEY_AGENT"
      | "AUTHENTICATION_FAILED",
  ) {
    super(message);
    this.name = "EnvelopeError";
  }
}

/** How a RecipientInfo names its reader (RFC 5652 §6.2.1 rid, §6.2.2 rid of RecipientEncryptedKey). */
export type RecipientIdentifier =
  | { type: "issuerAndSerialNumber"; /** issuer Name DER */ issuer: Uint8Array; /** serial magnitude */ serialNumber: Uint8Array }
  | { type: "subjectKeyIdentifier"; keyIdentifier: Uint8Array };

// ---------------------------------------------------------------------------------------------
// Writers (DER)

/** AlgorithmIdentifier with absent parameters, or with the given encoded parameters. */
export const algorithm = (dotted: string, parameters?: Uint8Array): Buffer =>
  parameters ? sequence(oid(dotted), parameters) : sequence(oid(dotted));

/** IssuerAndSerialNumber (RFC 5652 §10.2.4) from a Name DER and a serial magnitude. */
export const issuerAndSerialNumber = (issuer: Uint8Array, serial: Uint8Array): Buffer => sequence(issuer, unsignedInteger(serial));

/**
 * ECC-CMS-SharedInfo (RFC 5753 §7.2): keyInfo = the key wrap algorithm, no entityUInfo (no ukm),
 * suppPubInfo = the KEK length in bits as a 32-bit big-endian integer. It is the KDF's SharedInfo.
 */
export function eccCmsSharedInfo(wrapOid: string, kekBytes: number, ukm?: Uint8Array): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(kekBytes * 8);
  return sequence(algorithm(wrapOid), ...(ukm ? [explicit(0, octetString(ukm))] : []), explicit(2, octetString(bits)));
}

/** rid of a RecipientEncryptedKey (RFC 5652 §6.2.2): IssuerAndSerialNumber or [0] IMPLICIT RecipientKeyIdentifier. */
function keyAgreeRid(rid: RecipientIdentifier): Buffer {
  return rid.type === "issuerAndSerialNumber"
    ? issuerAndSerialNumber(rid.issuer, rid.serialNumber)
    : tlv(0xa0, octetString(rid.keyIdentifier));
}

/** KeyEncryptionAlgorithmIdentifier { scheme, KeyWrapAlgorithm } (RFC 5753 §3.1.1), encoded once per pair. */
const keyAgreeAlgorithms = new Map<string, Buffer>();
function keyAgreeAlgorithm(scheme: string, wrapOid: string): Buffer {
  const key = `${scheme} ${wrapOid}`;
  let der = keyAgreeAlgorithms.get(key);
  if (!der) keyAgreeAlgorithms.set(key, (der = algorithm(scheme, algorithm(wrapOid))));
  return der;
}
/** version 3 and the OriginatorPublicKey algorithm id-ecPublicKey with absent parameters (RFC 5753 §3.1.1), constant. */
const KARI_VERSION = smallInteger(3);
const EC_PUBLIC_KEY_ALGORITHM = algorithm(ENVELOPE_OID.idEcPublicKey);
const BIT_STRING_NO_UNUSED_BITS = Buffer.from([0]);

/**
 * RecipientInfo kari: [1] KeyAgreeRecipientInfo v3 (RFC 5652 §6.2.2, RFC 5753 §3.1.1) with the
 * ephemeral public key as originatorKey ([0] { [1] OriginatorPublicKey }), keyEncryptionAlgorithm
 * `scheme` with the key wrap AlgorithmIdentifier as parameter, and one RecipientEncryptedKey.
 */
export function keyAgreeRecipientInfo(p: { ephemeralPoint: Uint8Array; scheme: string; wrapOid: string; rid: RecipientIdentifier; encryptedKey: Uint8Array }): Buffer {
  const originatorKey = tlv(0xa1, EC_PUBLIC_KEY_ALGORITHM, tlv(0x03, BIT_STRING_NO_UNUSED_BITS, p.ephemeralPoint));
  return tlv(
    0xa1,
    KARI_VERSION,
    explicit(0, originatorKey),
    keyAgreeAlgorithm(p.scheme, p.wrapOid),
    sequence(sequence(keyAgreeRid(p.rid), octetString(p.encryptedKey))),
  );
}

/** RSAES-OAEP-params (RFC 4055 §4.1) for `hash` with MGF1 over the same hash; pSourceFunc default. */
export function rsaesOaepParams(hash: HashName): Buffer {
  const hashOid = Object.entries(HASH_BY_OID).find(([, name]) => name === hash)![0];
  const hashAlg = algorithm(hashOid, derNull());
  return sequence(explicit(0, hashAlg), explicit(1, algorithm(ENVELOPE_OID.mgf1, hashAlg)));
}

/**
 * RecipientInfo ktri: KeyTransRecipientInfo (RFC 5652 §6.2.1) with RSAES-OAEP (RFC 4055 §4): v0 for
 * issuerAndSerialNumber, v2 for [0] subjectKeyIdentifier.
 */
export function keyTransRecipientInfo(p: { rid: RecipientIdentifier; hash: HashName; encryptedKey: Uint8Array }): Buffer {
  const rid = p.rid.type === "issuerAndSerialNumber" ? issuerAndSerialNumber(p.rid.issuer, p.rid.serialNumber) : tlv(0x80, p.rid.keyIdentifier);
  return sequence(
    smallInteger(p.rid.type === "issuerAndSerialNumber" ? 0 : 2),
    rid,
    algorithm(ENVELOPE_OID.rsaesOaep, rsaesOaepParams(p.hash)),
    octetString(p.encryptedKey),
  );
}

/** Identifier and length octets of a TLV whose contents are `length` octets (X.690 §8.1.2–8.1.3). */
const header = (tag: number, length: number): Buffer => Buffer.concat([Buffer.from([tag]), derLength(length)]);
const totalLength = (chunks: readonly Uint8Array[]): number => chunks.reduce((n, c) => n + c.length, 0);

/**
 * EncryptedContentInfo (RFC 5652 §6.1) of id-data under AES-GCM with GCMParameters (RFC 5084 §3.2:
 * 12-octet nonce, ICV length 16 written out since the default is 12) and [0] IMPLICIT encryptedContent,
 * as chunks whose concatenation is the DER: the ciphertext is not copied here.
 */
export function encryptedContentInfo(gcmOid: string, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array[] {
  const head = Buffer.concat([oid(ENVELOPE_OID.data), algorithm(gcmOid, sequence(octetString(nonce), smallInteger(16))), header(0x80, ciphertext.length)]);
  return [header(0x30, head.length + ciphertext.length), head, ciphertext];
}

/**
 * ContentInfo { id-ct-authEnvelopedData, [0] AuthEnvelopedData v0 } (RFC 5083 §2.1) from encoded
 * parts: `recipientInfos` are sorted into a DER SET OF (X.690 §11.6); `rest` is the
 * authEncryptedContentInfo, optional authAttrs, mac and optional unauthAttrs, as chunks whose
 * concatenation is their encoding. The content is copied once, into the result.
 */
export function authEnvelopedContentInfo(p: { originatorInfo?: Uint8Array; recipientInfos: Uint8Array[]; rest: Uint8Array[] }): Buffer {
  const ris = [...p.recipientInfos].sort(Buffer.compare);
  const body = [smallInteger(0), ...(p.originatorInfo ? [p.originatorInfo] : []), set(...ris), ...p.rest];
  const aedHeader = header(0x30, totalLength(body));
  const explicitHeader = header(0xa0, aedHeader.length + totalLength(body));
  const type = oid(ENVELOPE_OID.authEnvelopedData);
  const ciHeader = header(0x30, type.length + explicitHeader.length + aedHeader.length + totalLength(body));
  return Buffer.concat([ciHeader, type, explicitHeader, aedHeader, ...body]);
}

// ---------------------------------------------------------------------------------------------
// Reader (BER)

/** An AlgorithmIdentifier as read: OID and the parameters element (undefined when absent). */
export interface ReadAlgorithm {
  oid: string;
  parameters?: asn1js.AsnType;
}

/** One RecipientInfo as read, with its encoding. */
export type ReadRecipientInfo =
  | { kind: "ktri"; der: Uint8Array; rid: RecipientIdentifier; keyEncryptionAlgorithm: ReadAlgorithm; encryptedKey: Uint8Array }
  | {
      kind: "kari";
      der: Uint8Array;
      /** The originator's ephemeral public key point (BIT STRING content), or undefined when the originator is named by certificate. */
      ephemeralPoint?: Uint8Array;
      originatorAlgorithm?: ReadAlgorithm;
      ukm?: Uint8Array;
      keyEncryptionAlgorithm: ReadAlgorithm;
      recipientEncryptedKeys: { rid: RecipientIdentifier; encryptedKey: Uint8Array }[];
    }
  | { kind: "other"; der: Uint8Array };

/** An AuthEnvelopedData as read; `*Der` fields are the elements' encodings, copied verbatim on a forward. */
export interface ReadAuthEnvelopedData {
  originatorInfoDer?: Uint8Array;
  recipientInfos: ReadRecipientInfo[];
  encryptedContentInfoDer: Uint8Array;
  contentType: string;
  contentEncryptionAlgorithm: ReadAlgorithm;
  /** encryptedContent octets (constructed BER strings joined). */
  encryptedContent: Uint8Array;
  authAttrsDer?: Uint8Array;
  macDer: Uint8Array;
  mac: Uint8Array;
  unauthAttrsDer?: Uint8Array;
}

const fail = (what: string): never => {
  throw new EnvelopeError(`envelope: ${what}`, "MALFORMED");
};

const encoded = (e: asn1js.AsnType): Uint8Array => new Uint8Array(e.valueBeforeDecodeView);
const isContext = (e: asn1js.AsnType, n: number): boolean => e.idBlock.tagClass === 3 && e.idBlock.tagNumber === n;
const isUniversal = (e: asn1js.AsnType, n: number): boolean => e.idBlock.tagClass === 1 && e.idBlock.tagNumber === n;

function childrenOf(e: asn1js.AsnType, what: string): asn1js.AsnType[] {
  const value = (e as asn1js.Constructed).valueBlock?.value;
  if (!e.idBlock.isConstructed || !Array.isArray(value)) return fail(`${what} is not constructed`);
  return value as asn1js.AsnType[];
}

/** Octets of an OCTET STRING (or an implicitly tagged one), primitive or constructed (X.690 §8.7). */
function octetsOf(e: asn1js.AsnType, what: string): Uint8Array {
  if (!e.idBlock.isConstructed) return new Uint8Array((e as asn1js.Primitive).valueBlock.valueHexView);
  return Buffer.concat(childrenOf(e, what).map((c) => octetsOf(c, what)));
}

function oidOf(e: asn1js.AsnType, what: string): string {
  if (!(e instanceof asn1js.ObjectIdentifier)) return fail(`${what} is not an OBJECT IDENTIFIER`);
  return e.valueBlock.toString();
}

function integerOf(e: asn1js.AsnType, what: string): Uint8Array {
  if (!(e instanceof asn1js.Integer)) return fail(`${what} is not an INTEGER`);
  const v = new Uint8Array(e.valueBlock.valueHexView);
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.subarray(i);
}

/** Reads an AlgorithmIdentifier element (RFC 5280 §4.1.1.2). @throws EnvelopeError "MALFORMED". */
export function readAlgorithm(e: asn1js.AsnType, what: string): ReadAlgorithm {
  const [o, parameters] = childrenOf(e, what);
  if (!o) return fail(`${what} is empty`);
  return { oid: oidOf(o, what), parameters };
}

function readIssuerAndSerial(e: asn1js.AsnType, what: string): RecipientIdentifier {
  const [issuer, serial] = childrenOf(e, what);
  if (!issuer || !serial) return fail(`${what}: IssuerAndSerialNumber incomplete`);
  return { type: "issuerAndSerialNumber", issuer: encoded(issuer), serialNumber: integerOf(serial, `${what} serialNumber`) };
}

function readKeyTrans(e: asn1js.AsnType): ReadRecipientInfo {
  const [, rid, alg, key] = childrenOf(e, "KeyTransRecipientInfo");
  if (!rid || !alg || !key) return fail("KeyTransRecipientInfo incomplete");
  const recipient: RecipientIdentifier = isContext(rid, 0)
    ? { type: "subjectKeyIdentifier", keyIdentifier: octetsOf(rid, "subjectKeyIdentifier") }
    : readIssuerAndSerial(rid, "KeyTransRecipientInfo rid");
  return { kind: "ktri", der: encoded(e), rid: recipient, keyEncryptionAlgorithm: readAlgorithm(alg, "keyEncryptionAlgorithm"), encryptedKey: octetsOf(key, "encryptedKey") };
}

function readKeyAgree(e: asn1js.AsnType): ReadRecipientInfo {
  const fields = childrenOf(e, "KeyAgreeRecipientInfo");
  const originator = fields.find((f) => isContext(f, 0));
  const ukmField = fields.find((f) => isContext(f, 1));
  const rest = fields.filter((f) => !isContext(f, 0) && !isContext(f, 1) && !isUniversal(f, 2));
  const [alg, reks] = rest;
  if (!originator || !alg || !reks) return fail("KeyAgreeRecipientInfo incomplete");
  const [choice] = childrenOf(originator, "originator");
  let ephemeralPoint: Uint8Array | undefined;
  let originatorAlgorithm: ReadAlgorithm | undefined;
  if (choice && isContext(choice, 1)) {
    const [oAlg, key] = childrenOf(choice, "OriginatorPublicKey");
    if (!oAlg || !(key instanceof asn1js.BitString)) return fail("OriginatorPublicKey incomplete");
    originatorAlgorithm = readAlgorithm(oAlg, "originatorKey algorithm");
    ephemeralPoint = new Uint8Array(key.valueBlock.valueHexView);
  }
  const recipientEncryptedKeys = childrenOf(reks, "RecipientEncryptedKeys").map((rek) => {
    const [rid, key] = childrenOf(rek, "RecipientEncryptedKey");
    if (!rid || !key) return fail("RecipientEncryptedKey incomplete");
    const recipient: RecipientIdentifier = isContext(rid, 0)
      ? { type: "subjectKeyIdentifier", keyIdentifier: octetsOf(childrenOf(rid, "rKeyId")[0] ?? fail("rKeyId empty"), "rKeyId") }
      : readIssuerAndSerial(rid, "RecipientEncryptedKey rid");
    return { rid: recipient, encryptedKey: octetsOf(key, "encryptedKey") };
  });
  return {
    kind: "kari",
    der: encoded(e),
    ephemeralPoint,
    originatorAlgorithm,
    ukm: ukmField ? octetsOf(childrenOf(ukmField, "ukm")[0] ?? fail("ukm empty"), "ukm") : undefined,
    keyEncryptionAlgorithm: readAlgorithm(alg, "keyEncryptionAlgorithm"),
    recipientEncryptedKeys,
  };
}

/**
 * Reads a ContentInfo holding AuthEnvelopedData (RFC 5083 §2.1), BER or DER.
 * @throws EnvelopeError "NOT_AUTH_ENVELOPED" for another content type, "MALFORMED" otherwise.
 */
export function readAuthEnvelopedData(bytes: Uint8Array): ReadAuthEnvelopedData {
  const parsed = asn1js.fromBER(new Uint8Array(bytes));
  if (parsed.offset === -1) return fail(`not BER (${parsed.result.error})`);
  if (parsed.offset !== bytes.length) return fail("trailing bytes after ContentInfo");
  const [type, wrapped] = childrenOf(parsed.result, "ContentInfo");
  if (!type || !wrapped || !isContext(wrapped, 0)) return fail("ContentInfo incomplete");
  const contentType = oidOf(type, "contentType");
  if (contentType !== ENVELOPE_OID.authEnvelopedData) {
    throw new EnvelopeError(`envelope: content type ${contentType} is not id-ct-authEnvelopedData (RFC 5083)`, "NOT_AUTH_ENVELOPED");
  }
  const [aed] = childrenOf(wrapped, "content");
  if (!aed) return fail("AuthEnvelopedData missing");
  const fields = childrenOf(aed, "AuthEnvelopedData");
  let i = 0;
  const version = fields[i++];
  if (!version || !(version instanceof asn1js.Integer) || version.valueBlock.valueDec !== 0) return fail("AuthEnvelopedData version is not 0");
  const originatorInfoDer = fields[i] && isContext(fields[i], 0) ? encoded(fields[i++]) : undefined;
  const ris = fields[i++];
  const eci = fields[i++];
  if (!ris || !eci || !isUniversal(ris, 17)) return fail("recipientInfos missing");
  const authAttrsDer = fields[i] && isContext(fields[i], 1) ? encoded(fields[i++]) : undefined;
  const mac = fields[i++];
  if (!mac || !isUniversal(mac, 4)) return fail("mac missing");
  const unauthAttrsDer = fields[i] && isContext(fields[i], 2) ? encoded(fields[i++]) : undefined;
  if (i !== fields.length) return fail("unexpected fields after mac");

  const recipientInfos = childrenOf(ris, "recipientInfos").map((ri): ReadRecipientInfo => {
    if (isUniversal(ri, 16)) return readKeyTrans(ri);
    if (isContext(ri, 1)) return readKeyAgree(ri);
    return { kind: "other", der: encoded(ri) };
  });
  const [ct, cea, content] = childrenOf(eci, "authEncryptedContentInfo");
  if (!ct || !cea) return fail("authEncryptedContentInfo incomplete");
  if (!content || !isContext(content, 0)) return fail("encryptedContent absent (detached content is not supported)");
  return {
    originatorInfoDer,
    recipientInfos,
    encryptedContentInfoDer: encoded(eci),
    contentType: oidOf(ct, "contentType"),
    contentEncryptionAlgorithm: readAlgorithm(cea, "contentEncryptionAlgorithm"),
    encryptedContent: octetsOf(content, "encryptedContent"),
    authAttrsDer,
    macDer: encoded(mac),
    mac: octetsOf(mac, "mac"),
    unauthAttrsDer,
  };
}

/** GCMParameters (RFC 5084 §3.2): nonce and ICV length (default 12). */
export function readGcmParameters(parameters: asn1js.AsnType | undefined): { nonce: Uint8Array; icvLength: number } {
  if (!parameters) return fail("GCMParameters absent");
  const [nonce, icv] = childrenOf(parameters, "GCMParameters");
  if (!nonce || !isUniversal(nonce, 4)) return fail("GCMParameters nonce missing");
  const icvLength = icv instanceof asn1js.Integer ? icv.valueBlock.valueDec : 12;
  return { nonce: octetsOf(nonce, "aes-nonce"), icvLength };
}

/** RSAES-OAEP-params (RFC 4055 §4.1): the hash (MGF1 must use the same; pSource must be empty). */
export function readOaepHash(parameters: asn1js.AsnType | undefined): HashName {
  // Absent parameters mean the defaults: SHA-1, MGF1-SHA-1, empty label.
  if (!parameters || isUniversal(parameters, 5)) return "SHA-1";
  let hash: HashName = "SHA-1";
  let mgfHash: HashName = "SHA-1";
  for (const f of childrenOf(parameters, "RSAES-OAEP-params")) {
    const [inner] = childrenOf(f, "RSAES-OAEP-params field");
    if (!inner) return fail("RSAES-OAEP-params field empty");
    const alg = readAlgorithm(inner, "RSAES-OAEP-params");
    if (isContext(f, 0)) hash = HASH_BY_OID[alg.oid] ?? unsupported(`OAEP hash ${alg.oid}`);
    else if (isContext(f, 1)) {
      if (alg.oid !== ENVELOPE_OID.mgf1 || !alg.parameters) return unsupported(`OAEP mask generation ${alg.oid}`);
      mgfHash = HASH_BY_OID[readAlgorithm(alg.parameters, "MGF1 hash").oid] ?? unsupported("MGF1 hash");
    } else if (isContext(f, 2)) {
      const label = alg.parameters ? octetsOf(alg.parameters, "pSpecified") : new Uint8Array(0);
      if (alg.oid !== ENVELOPE_OID.pSpecified || label.length > 0) return unsupported("OAEP with a label");
    }
  }
  if (hash !== mgfHash) return unsupported(`OAEP with hash ${hash} but MGF1-${mgfHash} (WebCrypto and PKCS#11 cards use one hash)`);
  return hash;
}

function unsupported(what: string): never {
  throw new EnvelopeError(`envelope: unsupported ${what}`, "UNSUPPORTED_ALGORITHM");
}

/** OCTET STRING TLV (the mac field of AuthEnvelopedData, RFC 5083 §2.1). */
export { octetString as octetStringDer } from "./der.ts";
