/**
 * PKCS #10 certification requests (RFC 2986): strict parsing and proof of possession (the
 * request's self-signature, RFC 2986 §3 / §4.2), plus a key-policy check. Pure: bytes or text in,
 * values out. Signatures are verified by node:crypto; nothing cryptographic is done by hand.
 *
 *   CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
 *                                           subjectPKInfo SubjectPublicKeyInfo, attributes [0] Attributes }
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { ab, bytesOf, children, parseDer } from "./der-cursor.ts";
import { decodeName, formatRdns, type NameAttribute } from "./name-decode.ts";
import { OID } from "./oids.ts";
import { describePublicKey, SIGNATURE_ALGORITHM_NAMES } from "./public-key.ts";
import { ACCEPTED_SIGNATURE_ALGORITHMS } from "./signature-algorithms.ts";

/** Why a CSR was refused. */
export type CsrErrorCode = "malformed" | "bad-signature" | "unsupported-algorithm" | "weak-key";

/** Refusal of a CSR: `code` for programs, `message` in English, `messageJa` in Japanese. */
export class CsrError extends Error {
  override name = "CsrError";
  constructor(
    readonly code: CsrErrorCode,
    message: string,
    readonly messageJa: string,
  ) {
    super(message);
  }
}

/** A parsed CSR whose self-signature has been verified. */
export interface ParsedCsr {
  /** The whole request, DER. */
  der: Buffer;
  /** SubjectPublicKeyInfo, DER, exactly as in the request. */
  subjectPublicKeyInfo: Buffer;
  keyAlgorithm: "RSA" | "EC";
  rsaModulusBits?: number;
  rsaPublicExponent?: number;
  /** "P-256", "P-384" or "P-521". */
  namedCurve?: string;
  /** Signature algorithm OID, dotted. */
  signatureAlgorithm: string;
  /** Its name, e.g. "sha256WithRSAEncryption". */
  signatureAlgorithmName: string;
  subject: { der: Buffer; text: string; rdns: NameAttribute[][] };
  /** OIDs of the request attributes (e.g. 1.2.840.113549.1.9.14 extensionRequest). */
  attributeTypes: string[];
  /**
   * dNSNames of a subjectAltName in the extensionRequest (PKCS #9 §5.4.2), as written (not yet
   * validated as host names: the subject check does that). Other requested extensions are ignored:
   * the profile decides the certificate's extensions.
   */
  dnsNames: string[];
}

/** One acceptable key kind for checkCsrKey. */
export interface CsrKeyRule {
  algorithm: "RSA" | "EC";
  /** RSA: minimum modulus size in bits. */
  minBits?: number;
  /** RSA: exact modulus sizes allowed. */
  bits?: number[];
  /** EC: allowed curves ("P-256", …). */
  curves?: string[];
}

const CURVES = new Set(["P-256", "P-384", "P-521"]);
const verifyAsync = promisify(verify);

const malformed = (en: string, ja: string): never => {
  throw new CsrError("malformed", `malformed CSR: ${en}`, `CSRの形式が不正です: ${ja}`);
};
const unsupported = (en: string, ja: string): never => {
  throw new CsrError("unsupported-algorithm", `unsupported CSR algorithm: ${en}`, `対応していないアルゴリズムです: ${ja}`);
};

/**
 * Parses a PKCS #10 request (PEM "CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST", or DER) and
 * verifies its self-signature. Accepts RSA and EC (P-256/384/521) keys signed with SHA-256/384/512
 * (PKCS #1 v1.5 or ECDSA). Rejects with CsrError:
 * - "malformed": not PEM/DER, bad base64, BER instead of DER, trailing bytes, wrong structure,
 *   version ≠ v1, undecodable subject or key;
 * - "unsupported-algorithm": DSA, Ed25519/Ed448, RSA-PSS, SHA-1/MD5, other curves, or a signature
 *   algorithm that does not fit the key;
 * - "bad-signature": the signature does not verify with the request's own key.
 */
export async function parseCertificationRequest(input: Uint8Array | string): Promise<ParsedCsr> {
  const der = toDer(input);
  parseDer(der, "DER", (m) => malformed(m, "DERとして解析できません"));
  let csr: pkijs.CertificationRequest;
  try {
    csr = pkijs.CertificationRequest.fromBER(ab(der));
  } catch (e) {
    return malformed(`not a PKCS #10 CertificationRequest (${(e as Error).message})`, "PKCS #10 の構造ではありません");
  }
  if (csr.version !== 0) malformed(`version ${csr.version} (only v1 = 0 exists)`, "バージョンが v1 ではありません");

  const sigOid = csr.signatureAlgorithm.algorithmId;
  const sigName = SIGNATURE_ALGORITHM_NAMES[sigOid] ?? sigOid;
  const sig = ACCEPTED_SIGNATURE_ALGORITHMS[sigOid] ?? unsupported(`signature algorithm ${sigName}`, `署名アルゴリズム ${sigName}`);
  // RFC 4055 §5: RSA PKCS#1 v1.5 parameters are NULL (or absent); RFC 5758 §3.2: ECDSA has none.
  const params = csr.signatureAlgorithm.algorithmParams as asn1js.AsnType | undefined;
  const paramsOk = !params || (sig.key === "RSA" && params instanceof asn1js.Null);
  if (!paramsOk) malformed(`unexpected ${sigName} parameters`, "署名アルゴリズムのパラメータが不正です");
  if (csr.signatureValue.valueBlock.unusedBits !== 0) malformed("signature BIT STRING has unused bits", "署名値のビット列が不正です");
  // The SPKI bytes exactly as signed (CertificationRequestInfo field 3), not a pkijs re-encoding.
  const badInfo = (m: string) => malformed(m, "CertificationRequestInfo の構造が不正です");
  const infoDer = csr.tbsView;
  const infoFields = children(infoDer, parseDer(infoDer, "CertificationRequestInfo", badInfo), "CertificationRequestInfo", badInfo);
  const spki = Buffer.from(bytesOf(infoDer, infoFields[2]));
  const keyOid = csr.subjectPublicKeyInfo.algorithm.algorithmId;
  if (keyOid !== OID.rsaEncryption && keyOid !== OID.idEcPublicKey) {
    unsupported(`public key algorithm ${keyOid} (only RSA and EC)`, `公開鍵アルゴリズム ${keyOid} (RSA・ECのみ対応)`);
  }
  let key: KeyObject;
  let info: ReturnType<typeof describePublicKey>;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
    info = describePublicKey(spki);
  } catch (e) {
    // An EC key on a curve OpenSSL does not know lands here too; both are unusable keys.
    return malformed(`public key does not decode (${(e as Error).message})`, "公開鍵を解析できません");
  }
  if (info.algorithm === "EC" && !CURVES.has(info.namedCurve ?? "")) {
    unsupported(`EC curve ${info.namedCurve} (only P-256, P-384, P-521)`, `楕円曲線 ${info.namedCurve} (P-256・P-384・P-521のみ対応)`);
  }
  if (info.algorithm !== sig.key) {
    unsupported(`${sigName} signature with an ${info.algorithm} key`, `${info.algorithm} 鍵に対する ${sigName} 署名`);
  }

  const signature = csr.signatureValue.valueBlock.valueHexView;
  const ok = await verifyAsync(sig.hash, csr.tbsView, key, signature).catch(() => false);
  if (!ok) {
    throw new CsrError(
      "bad-signature",
      "CSR signature does not verify with the request's public key (no proof of possession)",
      "CSRの署名を公開鍵で検証できません (秘密鍵の所持を確認できません)",
    );
  }

  const subjectDer = Buffer.from(csr.subject.valueBeforeDecode);
  let rdns: NameAttribute[][];
  try {
    rdns = decodeName(subjectDer);
  } catch (e) {
    return malformed(`subject: ${(e as Error).message}`, "主体者名を解析できません");
  }
  return {
    der,
    subjectPublicKeyInfo: spki,
    keyAlgorithm: info.algorithm as "RSA" | "EC",
    ...(info.algorithm === "RSA" ? { rsaModulusBits: info.bits, rsaPublicExponent: info.publicExponent } : { namedCurve: info.namedCurve }),
    signatureAlgorithm: sigOid,
    signatureAlgorithmName: sigName,
    subject: { der: subjectDer, text: formatRdns(rdns), rdns },
    attributeTypes: (csr.attributes ?? []).map((a) => a.type),
    dnsNames: requestedDnsNames(csr),
  };
}

const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

/** The dNSName GeneralNames [2] of a requested subjectAltName (RFC 5280 §4.2.1.6). */
function requestedDnsNames(csr: pkijs.CertificationRequest): string[] {
  const attr = (csr.attributes ?? []).find((a) => a.type === EXTENSION_REQUEST);
  if (!attr) return [];
  if (attr.values.length !== 1) malformed("extensionRequest must have exactly one value", "extensionRequest の値が1つではありません");
  let extensions: pkijs.Extensions;
  try {
    extensions = new pkijs.Extensions({ schema: attr.values[0] });
  } catch (e) {
    return malformed(`extensionRequest is not Extensions (${(e as Error).message})`, "extensionRequest の構造が不正です");
  }
  const san = extensions.extensions.find((x) => x.extnID === OID.subjectAltName);
  if (!san) return [];
  const names = (san.parsedValue as pkijs.AltName | undefined)?.altNames;
  if (!names) return malformed("requested subjectAltName does not decode", "要求された subjectAltName を解析できません");
  return names.filter((n) => n.type === 2).map((n) => String(n.value));
}

/**
 * Checks the CSR's key against a profile's allowed keys; returns normally when one rule accepts
 * it. RSA keys also need an odd public exponent ≥ 65537. Throws CsrError "unsupported-algorithm"
 * when no rule names the key's algorithm, "weak-key" when rules exist but none accepts the size,
 * curve or exponent (e.g. RSA-1024 against `{ algorithm: "RSA", minBits: 2048 }`).
 */
export function checkCsrKey(csr: ParsedCsr, allowed: readonly CsrKeyRule[]): void {
  const rules = allowed.filter((r) => r.algorithm === csr.keyAlgorithm);
  if (rules.length === 0) {
    unsupported(`${csr.keyAlgorithm} keys are not allowed here`, `${csr.keyAlgorithm} 鍵はこのプロファイルでは使用できません`);
  }
  const desc =
    csr.keyAlgorithm === "RSA" ? `RSA-${csr.rsaModulusBits} (e=${csr.rsaPublicExponent})` : `EC ${csr.namedCurve}`;
  if (csr.keyAlgorithm === "RSA") {
    const e = csr.rsaPublicExponent ?? 0;
    if (e < 65537 || e % 2 === 0) weak(desc);
  }
  const accepts = (r: CsrKeyRule) =>
    r.algorithm === "RSA"
      ? (r.minBits === undefined || (csr.rsaModulusBits ?? 0) >= r.minBits) && (r.bits === undefined || r.bits.includes(csr.rsaModulusBits ?? 0))
      : r.curves === undefined || r.curves.includes(csr.namedCurve ?? "");
  if (!rules.some(accepts)) weak(desc);
}

function weak(desc: string): never {
  throw new CsrError("weak-key", `key ${desc} is not allowed (too weak or not in the allowed list)`, `鍵 ${desc} は許可されていません (強度不足または対象外)`);
}

// PEM (RFC 7468 §7, with the legacy "NEW CERTIFICATE REQUEST" label) or DER → DER, strictly.
function toDer(input: Uint8Array | string): Buffer {
  if (typeof input !== "string" && input.length > 0 && input[0] === 0x30) return Buffer.from(input);
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  const m = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END \1?CERTIFICATE REQUEST-----/.exec(text);
  if (!m) return malformed("neither DER nor a PEM CERTIFICATE REQUEST block", "DERでもPEM (CERTIFICATE REQUEST) でもありません");
  const body = m[2].replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
    malformed("PEM body is not valid base64", "PEMの本体が正しいBase64ではありません");
  }
  const der = Buffer.from(body, "base64");
  if (der.length === 0) malformed("empty PEM body", "PEMの本体が空です");
  return der;
}
