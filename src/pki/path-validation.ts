/**
 * Certification path validation (RFC 5280 §6.1) for HPKI login and signature verification, to
 * configured trust anchors, in the shape HPKI uses: root → issuing CA → end entity (a third level
 * is allowed, JAHIS card guideline), no cross-certificates, no policy mapping (HPKI-PROFILE §1,
 * §10). Per certificate on the path: signature by the working public key (node:crypto verifies;
 * nothing hand-rolled), validity at `at`, issuer name chaining, revocation through a
 * RevocationIndex (fail closed), no unknown critical extension; for CA certificates
 * basicConstraints cA, keyCertSign and pathLenConstraint; for the end entity the required keyUsage
 * bit, extKeyUsage (when present) holding the required purpose, and the required certificate
 * policy. Policy processing is the HPKI relying-party rule, not the general policy tree: the end
 * entity must assert the CP's EE policy and its issuing CA the CP's CA policy (HPKI-PROFILE §7.3,
 * §10.3) — the two OIDs differ, so the §6.1 valid_policy_tree would reject every real HPKI path.
 *
 * Pure apart from node:crypto. Errors: PathValidationError with a stable `code` and messages in
 * English and Japanese (MESSAGES).
 */
import { createHash, verify, type KeyObject } from "node:crypto";
import { publicKeyFromSpki } from "./public-key.ts";
import { bytesEqual } from "./der-cursor.ts";
import { formatName } from "./name-decode.ts";
import { OID } from "./oids.ts";
import type { KeyUsageBit } from "./profile.ts";
import type { RevocationSource } from "./revocation-index.ts";
import { ACCEPTED_SIGNATURE_ALGORITHMS } from "./signature-algorithms.ts";
import {
  CertificateParseError,
  decodeAuthorityKeyId,
  decodeBasicConstraints,
  decodeCertificatePolicies,
  decodeExtKeyUsage,
  decodeKeyUsage,
  decodeSubjectKeyIdentifier,
  parseCertificate,
  UNDERSTOOD_EXTENSIONS,
  type ParsedCertificate,
} from "./x509-parse.ts";

/** Why a certificate (or a login built on it) is refused. Stable: used in audit records and tests. */
export type CertificateErrorCode =
  | "malformed-certificate"
  | "untrusted-issuer"
  | "bad-signature"
  | "expired"
  | "not-yet-valid"
  | "revoked"
  | "revocation-unknown"
  | "not-a-ca"
  | "path-too-long"
  | "unknown-critical-extension"
  | "wrong-key-usage"
  | "wrong-policy"
  | "hcrole-missing"
  | "hcrole-not-allowed"
  | "bad-challenge-signature"
  | "challenge-invalid"
  | "challenge-replayed"
  | "pin-incorrect"
  | "pin-locked";

/** English and Japanese text per code (shown on the login page and in CLI errors). */
export const MESSAGES: Record<CertificateErrorCode, { en: string; ja: string }> = {
  "malformed-certificate": { en: "The certificate could not be read.", ja: "証明書を読み取れませんでした。" },
  "untrusted-issuer": { en: "The certificate was not issued by a certification authority trusted here.", ja: "この証明書は、ここで信頼されている認証局が発行したものではありません。" },
  "bad-signature": { en: "A signature on the certificate path is invalid.", ja: "証明書パス上の署名が正しくありません。" },
  expired: { en: "The certificate has expired.", ja: "証明書の有効期間が終了しています。" },
  "not-yet-valid": { en: "The certificate is not valid yet.", ja: "証明書の有効期間がまだ始まっていません。" },
  revoked: { en: "The certificate has been revoked.", ja: "証明書は失効しています。" },
  "revocation-unknown": { en: "The revocation status cannot be confirmed (no current CRL or OCSP response); login is refused.", ja: "失効情報（最新のCRLまたはOCSP応答）を確認できないため、ログインできません。" },
  "not-a-ca": { en: "An issuer on the path is not a certification authority.", ja: "証明書パス上の発行者が認証局ではありません。" },
  "path-too-long": { en: "The certificate path is too long.", ja: "証明書パスが長すぎます。" },
  "unknown-critical-extension": { en: "The certificate has a critical extension that is not understood.", ja: "証明書に解釈できない重要（critical）拡張があります。" },
  "wrong-key-usage": { en: "This certificate may not be used for this purpose (key usage).", ja: "この証明書はこの用途（鍵用途）には使用できません。" },
  "wrong-policy": { en: "The certificate is not an HPKI certificate of the required kind (certificate policy).", ja: "必要な種類のHPKI証明書ではありません（証明書ポリシー）。" },
  "hcrole-missing": { en: "The certificate carries no healthcare qualification (hcRole).", ja: "証明書に保健医療福祉分野の資格（hcRole）がありません。" },
  "hcrole-not-allowed": { en: "Your qualification is not allowed to log in to this service.", ja: "この資格ではこのサービスにログインできません。" },
  "bad-challenge-signature": { en: "The signature over the login challenge is invalid.", ja: "ログイン用チャレンジへの署名が正しくありません。" },
  "challenge-invalid": { en: "The login challenge is unknown or has expired. Please start again.", ja: "ログイン用チャレンジが無効か期限切れです。最初からやり直してください。" },
  "challenge-replayed": { en: "This login challenge has already been used.", ja: "このログイン用チャレンジは既に使用されています。" },
  "pin-incorrect": { en: "The card did not accept the PIN. Check the PIN and try again; the card locks after repeated wrong PINs.", ja: "カードがPINを受け付けませんでした。PINを確認してもう一度お試しください。続けて間違えるとカードがロックされます。" },
  "pin-locked": { en: "The card is locked after too many wrong PINs. Ask the registration office that issued it to unlock it.", ja: "PINを続けて間違えたため、カードがロックされています。カードを受け取った受付窓口にロックの解除を依頼してください。" },
};

/**
 * The certificate of a "revocation-unknown" refusal and the CA that issued it: what an OCSP
 * fallback asks about (RFC 6960 §4.1.1 CertID is built from the issuer's name and key and the
 * certificate's serial).
 */
export interface UnknownRevocation {
  certificate: ParsedCertificate;
  issuer: CaCertificate;
}

/**
 * A refused certificate or login. `message` is English; `messageJa` Japanese; `detail` for logs.
 * `unknownRevocation` is set on "revocation-unknown" from path validation: which certificate had
 * no current revocation information.
 */
export class PathValidationError extends Error {
  override name = "PathValidationError";
  readonly messageJa: string;
  constructor(
    readonly code: CertificateErrorCode,
    readonly detail: string,
    readonly unknownRevocation?: UnknownRevocation,
  ) {
    super(`${MESSAGES[code].en} (${code}: ${detail})`);
    this.messageJa = MESSAGES[code].ja;
  }
}

/** A CA certificate the validator can chain to: a trust anchor or an intermediate. */
export interface CaCertificate {
  cert: ParsedCertificate;
  key: KeyObject;
  /** Hex SHA-256 of the SubjectPublicKeyInfo: the revocation index key of what this CA issues. */
  keyId: string;
  anchor: boolean;
  /** Subject as one display line. */
  name: string;
}

/** Revocation index key of an issuer: hex SHA-256 of its SubjectPublicKeyInfo DER. */
export function issuerKeyId(spki: Uint8Array): string {
  return createHash("sha256").update(spki).digest("hex");
}

/**
 * Trust anchors (self-signed roots, trusted as configured: RFC 5280 §6.1.1 (d)) and the CA
 * certificates that may appear between them and an end entity. Intermediates are only chained
 * through, never trusted on their own. A verified signature is remembered with the parsed
 * certificate it belongs to (a WeakMap: gone with the object) — a signature over fixed bytes under
 * a fixed key cannot change — so CA certificates are verified once, and an end entity once per
 * parse (the card-login verifier keeps a session's certificate parsed between uses: issue 14);
 * validity and revocation are checked on every validation.
 */
export class TrustStore {
  private readonly bySubject = new Map<string, CaCertificate[]>();
  /** Parsed certificate → key ids of the issuers whose key verified its signature. */
  private readonly verifiedBy = new WeakMap<ParsedCertificate, string[]>();

  /** @throws CertificateParseError on a certificate that does not parse. */
  constructor(anchors: Uint8Array[], intermediates: Uint8Array[] = []) {
    for (const der of anchors) this.add(der, true);
    for (const der of intermediates) this.add(der, false);
  }

  private add(der: Uint8Array, anchor: boolean): void {
    const cert = parseCertificate(der);
    const hex = Buffer.from(cert.subject).toString("hex");
    const list = this.bySubject.get(hex) ?? [];
    const keyId = issuerKeyId(cert.spki);
    if (list.some((c) => c.keyId === keyId && c.anchor === anchor && bytesEqual(c.cert.der, der))) return;
    list.push({ cert, key: publicKeyFromSpki(cert.spki), keyId, anchor, name: formatName(cert.subject) });
    // Anchors first: a path ends at the first anchor that signed it.
    list.sort((a, b) => Number(b.anchor) - Number(a.anchor));
    this.bySubject.set(hex, list);
  }

  /** Every CA certificate, anchors first. */
  all(): CaCertificate[] {
    return [...this.bySubject.values()].flat();
  }

  /** Candidates whose subject is `issuerName` (byte-equal DER) and whose SKI matches `akid` when both exist. */
  issuersOf(cert: ParsedCertificate): CaCertificate[] {
    const list = this.bySubject.get(Buffer.from(cert.issuer).toString("hex")) ?? [];
    const aki = cert.extensions.get(OID.authorityKeyIdentifier);
    const akid = aki ? decodeAuthorityKeyId(aki.value) : undefined;
    if (!akid) return list;
    return list.filter((c) => {
      const ski = c.cert.extensions.get(OID.subjectKeyIdentifier);
      return !ski || bytesEqual(decodeSubjectKeyIdentifier(ski.value), akid);
    });
  }

  /** Whether `issuer`'s key verifies `cert`'s signature; a success is remembered with `cert`. */
  signatureValid(issuer: CaCertificate, cert: ParsedCertificate): boolean {
    const by = this.verifiedBy.get(cert);
    if (by?.includes(issuer.keyId)) return true;
    const ok = verifySignature(cert.signatureAlgorithm, cert.signatureParameters, issuer.key, cert.tbs, cert.signature);
    if (ok) this.verifiedBy.set(cert, [...(by ?? []), issuer.keyId]);
    return ok;
  }
}

/**
 * Verifies `signature` over `data` with `key` for an X.509 signature algorithm OID: RSA PKCS#1 v1.5
 * with SHA-256/384/512 (RFC 4055 §5: NULL or absent parameters) or ECDSA with SHA-256/384/512
 * (RFC 5758 §3.2: no parameters, DER Ecdsa-Sig-Value). SHA-1 and other algorithms return false.
 * The key type must match the algorithm. Uses node:crypto.verify.
 */
export function verifySignature(algorithm: string, parameters: Uint8Array | undefined, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const a = ACCEPTED_SIGNATURE_ALGORITHMS[algorithm];
  if (!a) return false;
  const ec = a.key === "EC";
  if (key.asymmetricKeyType !== (ec ? "ec" : "rsa")) return false;
  if (parameters && (ec || !(parameters.length === 2 && parameters[0] === 0x05 && parameters[1] === 0))) return false;
  try {
    return verify(a.hash, data, ec ? { key, dsaEncoding: "der" } : key, signature);
  } catch {
    return false;
  }
}

/** What the end entity must be (HPKI-PROFILE §4, §10). */
export interface PathValidationPolicy {
  /** Policy OID the end entity must assert, e.g. OID.hpkiAuthPersonEePolicy. */
  endEntityPolicy: string;
  /** Policy OID the issuing CA must assert, e.g. OID.hpkiAuthPersonCaPolicy; unchecked when absent. */
  issuingCaPolicy?: string;
  /** keyUsage bit the end entity must have (auth: digitalSignature; signature: nonRepudiation). */
  keyUsage: KeyUsageBit;
  /** When the end entity has extKeyUsage, it must contain this purpose (e.g. clientAuth) or anyExtendedKeyUsage. */
  extKeyUsage?: string;
}

/** Login with a person-authentication certificate (HPKI auth-person CP; EE policy inferred). */
export const AUTH_PERSON_POLICY: PathValidationPolicy = {
  endEntityPolicy: OID.hpkiAuthPersonEePolicy,
  issuingCaPolicy: OID.hpkiAuthPersonCaPolicy,
  keyUsage: "digitalSignature",
  extKeyUsage: OID.idKpClientAuth,
};

/** Signature certificates (HPKI signature CP), e.g. for checking the real fixtures. */
export const SIGNATURE_POLICY: PathValidationPolicy = {
  endEntityPolicy: OID.hpkiSignatureEePolicy,
  issuingCaPolicy: OID.hpkiSignatureCaPolicy,
  keyUsage: "nonRepudiation",
};

/** A validated path: the end entity, then its issuers up to and including the anchor. */
export interface ValidatedPath {
  leaf: ParsedCertificate;
  /** leaf's issuer first, the trust anchor last. */
  issuers: CaCertificate[];
}

const MAX_PATH = 4; // anchor + up to two CAs + end entity

/**
 * Validates the end-entity certificate `leafDer` (DER, or as parseCertificate returned it) at
 * instant `at` against `store` and `policy`,
 * checking revocation of every non-anchor certificate in `revocation` (fail closed: status
 * "unknown" → "revocation-unknown", whose error names the certificate and its issuer in
 * `unknownRevocation`). Returns the path; throws PathValidationError with the first failure, in
 * RFC 5280 §6.1.3 order from the anchor down.
 */
export function validateCertificatePath(
  leafDer: Uint8Array | ParsedCertificate,
  store: TrustStore,
  policy: PathValidationPolicy,
  at: Date,
  revocation: RevocationSource,
): ValidatedPath {
  let leaf: ParsedCertificate;
  try {
    leaf = ArrayBuffer.isView(leafDer) ? parseCertificate(leafDer) : leafDer;
  } catch (e) {
    if (e instanceof CertificateParseError) throw new PathValidationError("malformed-certificate", e.message);
    throw e;
  }
  const issuers = buildPath(leaf, store);
  // Process from the anchor down (RFC 5280 §6.1.3): [anchor, ..., issuing CA] then the leaf.
  const anchor = issuers[issuers.length - 1];
  checkValidity(anchor.cert, at, anchor.name);
  for (let i = issuers.length - 2; i >= 0; i--) {
    const ca = issuers[i];
    checkCertificate(ca.cert, issuers[i + 1], at, revocation, ca.name);
    checkCaExtensions(ca.cert, ca.name, i);
  }
  checkCertificate(leaf, issuers[0], at, revocation, "end entity");
  checkEndEntity(leaf, issuers[0], policy);
  return { leaf, issuers };
}

/** Chain from `leaf` by issuer name (and AKI/SKI) to the first anchor whose key verifies it. */
function buildPath(leaf: ParsedCertificate, store: TrustStore): CaCertificate[] {
  const path: CaCertificate[] = [];
  let current = leaf;
  for (let depth = 0; depth < MAX_PATH; depth++) {
    const candidates = store.issuersOf(current);
    if (candidates.length === 0) {
      throw new PathValidationError("untrusted-issuer", `no trusted CA named ${safeName(current.issuer)}`);
    }
    // Prefer a candidate whose key verifies the signature; report bad-signature if none does.
    const issuer = candidates.find((c) => store.signatureValid(c, current));
    if (!issuer) throw new PathValidationError("bad-signature", `signature of ${current === leaf ? "the end entity" : safeName(current.subject)} does not verify with ${candidates[0].name}`);
    if (path.some((p) => p.keyId === issuer.keyId)) throw new PathValidationError("untrusted-issuer", "certificate loop");
    path.push(issuer);
    if (issuer.anchor) return path;
    current = issuer.cert;
  }
  throw new PathValidationError("path-too-long", `more than ${MAX_PATH - 1} certificates below the anchor`);
}

function checkValidity(cert: ParsedCertificate, at: Date, who: string): void {
  const t = at.getTime();
  if (t < cert.notBefore.getTime()) throw new PathValidationError("not-yet-valid", `${who} is valid from ${cert.notBefore.toISOString()}`);
  if (t > cert.notAfter.getTime()) throw new PathValidationError("expired", `${who} expired at ${cert.notAfter.toISOString()}`);
}

function checkCertificate(cert: ParsedCertificate, issuer: CaCertificate, at: Date, revocation: RevocationSource, who: string): void {
  // Signature already verified while building the path (buildPath picks only a verifying issuer).
  checkValidity(cert, at, who);
  const status = revocation.status(issuer.keyId, cert.serial, at);
  if (status === "revoked") throw new PathValidationError("revoked", `${who} serial ${hex(cert.serial)} is on the list of ${issuer.name}`);
  if (status === "unknown") throw new PathValidationError("revocation-unknown", `${who}: no current revocation information from ${issuer.name}`, { certificate: cert, issuer });
  for (const [oid, ext] of cert.extensions) {
    if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(oid)) throw new PathValidationError("unknown-critical-extension", `${who}: ${oid}`);
  }
}

/** RFC 5280 §6.1.4 (k), (l), (n): CA certificates need cA, keyCertSign and a pathLen that allows what follows. */
function checkCaExtensions(cert: ParsedCertificate, who: string, casBelow: number): void {
  const bcExt = cert.extensions.get(OID.basicConstraints);
  const bc = bcExt ? decode(() => decodeBasicConstraints(bcExt.value)) : undefined;
  if (!bc?.ca) throw new PathValidationError("not-a-ca", `${who} has no basicConstraints cA=TRUE`);
  if (bc.pathLen !== undefined && casBelow > bc.pathLen) throw new PathValidationError("path-too-long", `${who} pathLenConstraint ${bc.pathLen}`);
  const kuExt = cert.extensions.get(OID.keyUsage);
  if (kuExt && !decode(() => decodeKeyUsage(kuExt.value)).has("keyCertSign")) throw new PathValidationError("not-a-ca", `${who} keyUsage lacks keyCertSign`);
}

function checkEndEntity(leaf: ParsedCertificate, issuer: CaCertificate, policy: PathValidationPolicy): void {
  const bcExt = leaf.extensions.get(OID.basicConstraints);
  if (bcExt && decode(() => decodeBasicConstraints(bcExt.value)).ca) throw new PathValidationError("wrong-key-usage", "a CA certificate cannot log in");
  const kuExt = leaf.extensions.get(OID.keyUsage);
  const ku = kuExt ? decode(() => decodeKeyUsage(kuExt.value)) : undefined;
  if (!ku?.has(policy.keyUsage)) throw new PathValidationError("wrong-key-usage", `keyUsage must include ${policy.keyUsage}`);
  const ekuExt = leaf.extensions.get(OID.extKeyUsage);
  if (ekuExt && policy.extKeyUsage) {
    const eku = decode(() => decodeExtKeyUsage(ekuExt.value));
    if (!eku.includes(policy.extKeyUsage) && !eku.includes("2.5.29.37.0")) throw new PathValidationError("wrong-key-usage", `extKeyUsage lacks ${policy.extKeyUsage}`);
  }
  const cpExt = leaf.extensions.get(OID.certificatePolicies);
  const policies = cpExt ? decode(() => decodeCertificatePolicies(cpExt.value)) : [];
  if (!policies.includes(policy.endEntityPolicy)) throw new PathValidationError("wrong-policy", `end entity must assert ${policy.endEntityPolicy}; has [${policies.join(", ")}]`);
  if (policy.issuingCaPolicy && !issuer.anchor) {
    const caExt = issuer.cert.extensions.get(OID.certificatePolicies);
    const caPolicies = caExt ? decode(() => decodeCertificatePolicies(caExt.value)) : [];
    if (!caPolicies.includes(policy.issuingCaPolicy)) throw new PathValidationError("wrong-policy", `issuing CA must assert ${policy.issuingCaPolicy}`);
  }
}

function decode<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CertificateParseError) throw new PathValidationError("malformed-certificate", e.message);
    throw e;
  }
}

function safeName(der: Uint8Array): string {
  try {
    return formatName(der);
  } catch {
    return "(unreadable name)";
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();
