/**
 * Medical PO box envelopes (issue 15 §2, §6): CMS AuthEnvelopedData (RFC 5083) with AES-256-GCM
 * content encryption (RFC 5084) and one RecipientInfo per reader — ECDH ephemeral-static key
 * agreement for EC P-256 certificates (RFC 5753), RSAES-OAEP-SHA-256 key transport for RSA
 * certificates (RFC 8017, RFC 4055). `openssl cms -decrypt` opens what {@link sealEnvelope} makes;
 * {@link openEnvelope} opens what `openssl cms -encrypt -aes-256-gcm` makes.
 *
 * Forwarding (issue 15 §6) re-wraps only the content key: {@link addRecipient} appends a
 * RecipientInfo and copies authEncryptedContentInfo and mac byte for byte, so the box can check with
 * {@link forwardedRecipients} that a forward changed nothing but the recipients.
 *
 * Pure: no I/O. The private-key step of opening is a {@link RecipientKeyAgent} (a card or software).
 */
import { createDecipheriv, createHash, randomBytes } from "node:crypto";
import {
  EnvelopeError, GCM_KEY_BYTES, authEnvelopedContentInfo, readAuthEnvelopedData, readGcmParameters,
  type ReadAuthEnvelopedData, type RecipientIdentifier,
} from "./envelope-asn1.ts";
import { encryptContent } from "./envelope-content.ts";
import type { RecipientKeyAgent } from "./envelope-key-agent.ts";
import {
  contentKeyFrom, encryptedKeyFor, recipientIdentifierOf, recipientInfoFor, recipientKeyOf, ridMatches, type RecipientIdentifierChoice, type RecipientKey,
} from "./envelope-recipients.ts";
import { startKeyAgreements, type KeyAgreement } from "./key-agreement-pool.ts";
import { parseCertificate } from "./x509-parse.ts";

export { EnvelopeError, type RecipientIdentifier } from "./envelope-asn1.ts";
export { softwareKeyAgent, type RecipientKeyAgent } from "./envelope-key-agent.ts";
export type { RecipientIdentifierChoice } from "./envelope-recipients.ts";

/** A reader's certificate, DER (EC P-256 with keyAgreement, or RSA with keyEncipherment). */
export type RecipientCertificate = Uint8Array;

/** Options of {@link sealEnvelope} and {@link addRecipient}. */
export interface SealOptions {
  /** How RecipientInfos name readers (RFC 5652 §6.2.1); default issuerAndSerialNumber, as OpenSSL does. */
  recipientIdentifier?: RecipientIdentifierChoice;
  /**
   * sealEnvelope: share the readers' key agreements with the helper thread while the content is
   * encrypted (src/pki/key-agreement-pool.ts; default true). false keeps all work on this thread.
   */
  keyAgreementHelper?: boolean;
}

/** A reader named in an envelope. */
export interface EnvelopeRecipient {
  /** "kari" = key agreement (EC), "ktri" = key transport (RSA). */
  kind: "kari" | "ktri";
  /** keyEncryptionAlgorithm OID (e.g. dhSinglePass-stdDH-sha256kdf-scheme, id-RSAES-OAEP). */
  keyEncryptionAlgorithm: string;
  rid: RecipientIdentifier;
  /** Stable text form of `rid`: "ias:<sha256(issuer DER) hex>:<serial hex>" or "ski:<hex>" ({@link recipientKey}). */
  key: string;
}

/** What the box may know of an envelope without opening it. */
export interface EnvelopeSummary {
  recipients: EnvelopeRecipient[];
  /** contentEncryptionAlgorithm OID (id-aes256-GCM for ours). */
  contentEncryptionAlgorithm: string;
  /** Length of the encryptedContent octets. */
  encryptedContentLength: number;
  /** SHA-256 (hex) over the authEncryptedContentInfo encoding followed by the mac encoding: unchanged by a forward. */
  contentDigest: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Text form of a recipient identifier: "ias:<sha256(issuer DER)>:<serial>" or "ski:<keyIdentifier>", hex. */
export function recipientKey(rid: RecipientIdentifier): string {
  return rid.type === "issuerAndSerialNumber"
    ? `ias:${createHash("sha256").update(rid.issuer).digest("hex")}:${hex(rid.serialNumber)}`
    : `ski:${hex(rid.keyIdentifier)}`;
}

/** The {@link recipientKey} an envelope sealed to `certificate` with `choice` names it by. */
export function recipientKeyOfCertificate(certificate: RecipientCertificate, choice: RecipientIdentifierChoice = "issuerAndSerialNumber"): string {
  return recipientKey(recipientIdentifierOf(parseCertificate(certificate), choice));
}

/**
 * Seals `content` for `recipients` (RFC 5083 §2.1): a fresh 256-bit content key and 96-bit nonce,
 * AES-256-GCM with a 16-octet tag as mac, no authAttrs, one RecipientInfo per certificate.
 * @returns the DER ContentInfo (id-ct-authEnvelopedData).
 * @throws EnvelopeError "BAD_RECIPIENT_CERTIFICATE" for a certificate that cannot receive a key.
 */
export async function sealEnvelope(content: Uint8Array, recipients: readonly RecipientCertificate[], opts: SealOptions = {}): Promise<Uint8Array> {
  if (recipients.length === 0) throw new EnvelopeError("an envelope needs at least one recipient", "BAD_RECIPIENT_CERTIFICATE");
  const keys = recipients.map((r) => recipientKeyOf(r)); // each certificate read once; a bad one refused before any work
  const ecKeys = keys.filter((k): k is Extract<RecipientKey, { kind: "ec" }> => k.kind === "ec");
  const cek = randomBytes(32);
  try {
    // The helper thread starts on the key agreements while this one encrypts the content, then joins it.
    const agreements = startKeyAgreements(ecKeys.map((k) => k.point), { sideWorkBytes: content.length, helper: opts.keyAgreementHelper });
    let rest;
    try {
      rest = encryptContent(cek, content);
    } catch (e) {
      // The agreements are finished (the helper's shared buffer zeroed) and their secrets wiped.
      for (const a of agreements.finish()) a.z.fill(0);
      throw e;
    }
    const agreed = new Map<RecipientKey, KeyAgreement>(agreements.finish().map((a, i) => [ecKeys[i], a]));
    try {
      const recipientInfos = keys.map((k) => recipientInfoFor(cek, k, opts.recipientIdentifier, agreed.get(k)));
      return authEnvelopedContentInfo({ recipientInfos, rest });
    } finally {
      // recipientInfoFor wipes each Z it uses; these are the ones a failure left unused.
      for (const a of agreed.values()) a.z.fill(0);
    }
  } finally {
    cek.fill(0);
  }
}

/** Reads the envelope, or throws EnvelopeError "MALFORMED" / "NOT_AUTH_ENVELOPED". */
function read(envelope: Uint8Array): ReadAuthEnvelopedData {
  return readAuthEnvelopedData(envelope);
}

/**
 * Recovers the content-encryption key addressed to the agent's certificate (RFC 5652 §6.2): finds
 * the RecipientInfo naming it and has the agent do ECDH or RSA-OAEP. Needed by a forwarder.
 * @throws EnvelopeError "NO_RECIPIENT_INFO" when none names the certificate; see also contentKeyFrom.
 */
export async function unwrapContentKey(envelope: Uint8Array, agent: RecipientKeyAgent): Promise<Uint8Array> {
  return (await unwrapFrom(read(envelope), agent)).contentKey;
}

async function unwrapFrom(env: ReadAuthEnvelopedData, agent: RecipientKeyAgent): Promise<{ contentKey: Uint8Array }> {
  const cert = parseCertificate(agent.certificate);
  for (const ri of env.recipientInfos) {
    const encryptedKey = encryptedKeyFor(ri, cert);
    if (encryptedKey) return { contentKey: await contentKeyFrom(ri, encryptedKey, agent) };
  }
  throw new EnvelopeError("no RecipientInfo in the envelope is addressed to this certificate", "NO_RECIPIENT_INFO");
}

/**
 * Decrypts and authenticates the content with a known content key (RFC 5083 §2.2, RFC 5084 §3.2):
 * AAD is the DER SET OF of authAttrs when present.
 * @throws EnvelopeError "AUTHENTICATION_FAILED" when the tag does not verify (tampered or wrong key).
 */
export function decryptContent(envelope: Uint8Array, contentKey: Uint8Array): Uint8Array {
  return decryptRead(read(envelope), contentKey);
}

function decryptRead(env: ReadAuthEnvelopedData, contentKey: Uint8Array): Uint8Array {
  const alg = env.contentEncryptionAlgorithm;
  const keyBytes = GCM_KEY_BYTES[alg.oid];
  if (!keyBytes) throw new EnvelopeError(`content encryption ${alg.oid} is not AES-GCM`, "UNSUPPORTED_ALGORITHM");
  if (contentKey.length !== keyBytes) throw new EnvelopeError("content key length does not match the algorithm", "AUTHENTICATION_FAILED");
  const { nonce, icvLength } = readGcmParameters(alg.parameters);
  if (icvLength !== env.mac.length || icvLength < 12 || icvLength > 16) throw new EnvelopeError(`mac length ${env.mac.length} (ICV ${icvLength})`, "MALFORMED");
  const name = `aes-${keyBytes * 8}-gcm` as "aes-256-gcm";
  try {
    const d = createDecipheriv(name, contentKey, nonce, { authTagLength: icvLength });
    if (env.authAttrsDer) d.setAAD(Buffer.concat([Buffer.from([0x31]), env.authAttrsDer.subarray(1)]));
    d.setAuthTag(env.mac);
    return Buffer.concat([d.update(env.encryptedContent), d.final()]);
  } catch {
    throw new EnvelopeError("envelope authentication failed: the content or its key was altered (AES-GCM tag mismatch)", "AUTHENTICATION_FAILED");
  }
}

/**
 * Opens an envelope as the agent's recipient: unwraps the content key ({@link unwrapContentKey})
 * and decrypts and authenticates the content ({@link decryptContent}).
 */
export async function openEnvelope(envelope: Uint8Array, agent: RecipientKeyAgent): Promise<Uint8Array> {
  const env = read(envelope);
  const { contentKey } = await unwrapFrom(env, agent);
  try {
    return decryptRead(env, contentKey);
  } finally {
    contentKey.fill(0);
  }
}

/**
 * Forwarding (issue 15 §6): returns the envelope with one more RecipientInfo carrying `contentKey`
 * to `newRecipient`. Version, originatorInfo, authEncryptedContentInfo, authAttrs, mac and
 * unauthAttrs are copied byte for byte; the recipient infos are re-sorted as a DER SET OF.
 * The content key is checked against the tag first, so a wrong key never reaches a new reader.
 * @throws EnvelopeError "RECIPIENT_EXISTS" when a RecipientInfo already names the certificate,
 *   "AUTHENTICATION_FAILED" for a wrong key, "BAD_RECIPIENT_CERTIFICATE".
 */
export async function addRecipient(envelope: Uint8Array, contentKey: Uint8Array, newRecipient: RecipientCertificate, opts: SealOptions = {}): Promise<Uint8Array> {
  const env = read(envelope);
  const cert = recipientKeyOf(newRecipient).certificate;
  if (env.recipientInfos.some((ri) => encryptedKeyFor(ri, cert) !== undefined)) {
    throw new EnvelopeError("the envelope already has a RecipientInfo for this certificate", "RECIPIENT_EXISTS");
  }
  decryptRead(env, contentKey);
  const added = recipientInfoFor(contentKey, newRecipient, opts.recipientIdentifier);
  return authEnvelopedContentInfo({
    originatorInfo: env.originatorInfoDer,
    recipientInfos: [...env.recipientInfos.map((ri) => ri.der), added],
    rest: [env.encryptedContentInfoDer, ...(env.authAttrsDer ? [env.authAttrsDer] : []), env.macDer, ...(env.unauthAttrsDer ? [env.unauthAttrsDer] : [])],
  });
}

function recipientsOf(env: ReadAuthEnvelopedData): EnvelopeRecipient[] {
  return env.recipientInfos.flatMap((ri): EnvelopeRecipient[] => {
    if (ri.kind === "ktri") return [{ kind: "ktri", keyEncryptionAlgorithm: ri.keyEncryptionAlgorithm.oid, rid: ri.rid, key: recipientKey(ri.rid) }];
    if (ri.kind === "kari") {
      return ri.recipientEncryptedKeys.map((k) => ({ kind: "kari" as const, keyEncryptionAlgorithm: ri.keyEncryptionAlgorithm.oid, rid: k.rid, key: recipientKey(k.rid) }));
    }
    return [];
  });
}

/** The readers an envelope names (RFC 5652 §6.2 rid / RecipientEncryptedKey rid), in encoded order. */
export function envelopeRecipients(envelope: Uint8Array): EnvelopeRecipient[] {
  return recipientsOf(read(envelope));
}

/** Whether an envelope has a RecipientInfo for `certificate` (by issuer+serial or subjectKeyIdentifier). */
export function isAddressedTo(envelope: Uint8Array, certificate: RecipientCertificate): boolean {
  const cert = parseCertificate(certificate);
  return recipientsOf(read(envelope)).some((r) => ridMatches(r.rid, cert));
}

/** The box's view of an envelope: readers, algorithm, sizes and the content digest a forward keeps. */
export function envelopeSummary(envelope: Uint8Array): EnvelopeSummary {
  const env = read(envelope);
  return {
    recipients: recipientsOf(env),
    contentEncryptionAlgorithm: env.contentEncryptionAlgorithm.oid,
    encryptedContentLength: env.encryptedContent.length,
    contentDigest: createHash("sha256").update(env.encryptedContentInfoDer).update(env.macDer).digest("hex"),
  };
}

/**
 * Checks that `forwarded` is `original` plus recipients (issue 15 §6): the same content digest and
 * every original RecipientInfo kept byte for byte. @returns the recipients added.
 * @throws EnvelopeError "MALFORMED" naming what changed.
 */
export function forwardedRecipients(original: Uint8Array, forwarded: Uint8Array): EnvelopeRecipient[] {
  const a = read(original);
  const b = read(forwarded);
  const digest = (e: ReadAuthEnvelopedData) => createHash("sha256").update(e.encryptedContentInfoDer).update(e.macDer).digest("hex");
  if (digest(a) !== digest(b)) throw new EnvelopeError("forward changed the encrypted content or its mac", "MALFORMED");
  const kept = new Set(b.recipientInfos.map((ri) => hex(ri.der)));
  if (a.recipientInfos.some((ri) => !kept.has(hex(ri.der)))) throw new EnvelopeError("forward removed or altered a RecipientInfo", "MALFORMED");
  const before = new Set(a.recipientInfos.map((ri) => hex(ri.der)));
  return recipientsOf({ ...b, recipientInfos: b.recipientInfos.filter((ri) => !before.has(hex(ri.der))) });
}
