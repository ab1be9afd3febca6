/**
 * Key-pair primitives on one PKCS#11 session, shared by the CA key store and card sessions:
 * templates, generation, lookup, attribute reads and signing. Raw pkcs11js calls keep the exact
 * attribute set visible (PKCS#11 v2.40 §4: object classes and attributes).
 */
import { createHash } from "node:crypto";
import type graphene from "graphene-pk11";
import pkcs11 from "pkcs11js";
import { HsmError } from "./errors.ts";
import { P256_EC_PARAMS, ecdsaRawToDer, p256Spki, rsaSpki, type KeyAlgorithm } from "./spki.ts";

type Handle = Buffer;

/** Security-relevant boolean attributes of a private key (v2.40 §4.9 common private key attributes, §4.7 CKA_LOCAL). */
export interface PrivateKeyFlags {
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
  local: boolean;
}

/** Public and private object handles of a key pair plus its algorithm; handles die with the session's module generation. */
export interface KeyPairObjects {
  publicKey: Handle | null;
  privateKey: Handle;
  algorithm: KeyAlgorithm;
}

const attr = (type: number, value?: pkcs11.Attribute["value"]): pkcs11.Attribute => ({ type, value });

/**
 * What a generated private key may do: "sign" (signature and authentication keys) or "decrypt"
 * (encryption keys, issue 15 §1/§3: CKA_DERIVE for EC so CKM_ECDH1_DERIVE works, CKA_DECRYPT for
 * RSA-OAEP), never both.
 */
export type KeyPurpose = "sign" | "decrypt";

/**
 * Generates a key pair on the session's token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false; for `purpose` "sign" CKA_SIGN true and CKA_DECRYPT / CKA_UNWRAP /
 * CKA_DERIVE false; for "decrypt" CKA_SIGN false and CKA_DERIVE (EC) or CKA_DECRYPT (RSA) true.
 * Both halves carry `label` and `id`. RSA-2048 uses e = 65537 (CKM_RSA_PKCS_KEY_PAIR_GEN, v2.40
 * §2.1.5); P-256 uses CKM_EC_KEY_PAIR_GEN (§2.3.5).
 * Asynchronous (callback form, worker thread): call inside Pkcs11Module.track.
 */
export function generateKeyPairOn(session: graphene.Session, label: string, id: Buffer, algorithm: KeyAlgorithm, purpose: KeyPurpose = "sign"): Promise<KeyPairObjects> {
  const sign = purpose === "sign";
  const common = [attr(pkcs11.CKA_TOKEN, true), attr(pkcs11.CKA_LABEL, label), attr(pkcs11.CKA_ID, id)];
  const pub = [...common, attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_PRIVATE, false), attr(pkcs11.CKA_VERIFY, sign),
    attr(pkcs11.CKA_ENCRYPT, !sign && algorithm === "RSA-2048"), attr(pkcs11.CKA_WRAP, false)];
  const priv = [...common, attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), attr(pkcs11.CKA_PRIVATE, true), attr(pkcs11.CKA_SENSITIVE, true),
    attr(pkcs11.CKA_EXTRACTABLE, false), attr(pkcs11.CKA_SIGN, sign), attr(pkcs11.CKA_DECRYPT, !sign && algorithm === "RSA-2048"),
    attr(pkcs11.CKA_UNWRAP, false), attr(pkcs11.CKA_DERIVE, !sign && algorithm === "P-256")];
  let mechanism: number;
  if (algorithm === "RSA-2048") {
    mechanism = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub.push(attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), attr(pkcs11.CKA_MODULUS_BITS, 2048), attr(pkcs11.CKA_PUBLIC_EXPONENT, Buffer.from([1, 0, 1])));
    priv.push(attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA));
  } else if (algorithm === "P-256") {
    mechanism = pkcs11.CKM_EC_KEY_PAIR_GEN;
    pub.push(attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), attr(pkcs11.CKA_EC_PARAMS, P256_EC_PARAMS));
    priv.push(attr(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC));
  } else {
    return Promise.reject(new HsmError(`unsupported key algorithm ${String(algorithm)}`, "CKR_MECHANISM_INVALID"));
  }
  return new Promise((resolve, reject) => {
    session.lib.C_GenerateKeyPair(session.handle, { mechanism }, pub, priv, (err, keys) => {
      if (err) reject(err);
      else resolve({ publicKey: keys.publicKey, privateKey: keys.privateKey, algorithm });
    });
  });
}

/** C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal (v2.40 §5.7) over `template`; all matches. */
export function findObjects(session: graphene.Session, template: pkcs11.Template): Handle[] {
  const { lib, handle } = session;
  lib.C_FindObjectsInit(handle, template);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = lib.C_FindObjects(handle, 64);
      out.push(...batch);
      if (batch.length < 64) return out;
    }
  } finally {
    lib.C_FindObjectsFinal(handle);
  }
}

/** Reads attribute values (v2.40 §5.7 C_GetAttributeValue), in the order of `types`. */
export function getAttributes(session: graphene.Session, object: Handle, types: number[]): Buffer[] {
  const res = session.lib.C_GetAttributeValue(session.handle, object, types.map((type) => ({ type })));
  return types.map((t) => res.find((r) => r.type === t)!.value);
}

/** Every object (any class) labelled `label` on the token: used to refuse duplicate labels. */
export function objectsWithLabel(session: graphene.Session, label: string): Handle[] {
  return findObjects(session, [attr(pkcs11.CKA_LABEL, label)]);
}

/** The CKA_KEY_TYPE of a key object mapped to a {@link KeyAlgorithm}. @throws HsmError for other key types or curves. */
export function keyAlgorithmOf(session: graphene.Session, key: Handle): KeyAlgorithm {
  const [keyType] = getAttributes(session, key, [pkcs11.CKA_KEY_TYPE]);
  const kt = keyType.readUIntLE(0, Math.min(keyType.length, 6));
  if (kt === pkcs11.CKK_RSA) return "RSA-2048";
  if (kt === pkcs11.CKK_EC) return "P-256";
  throw new HsmError(`unsupported key type 0x${kt.toString(16)}`, "CKR_KEY_TYPE_INCONSISTENT");
}

/**
 * Finds the key pair with CKA_ID `id` (and `label` when given). The public half may be absent
 * (some cards keep only the private key and certificate); the private half must exist.
 * @returns null when there is no such private key.
 * @throws HsmError "KEY_AMBIGUOUS" when several private keys match.
 */
export function findKeyPair(session: graphene.Session, query: { id?: Buffer; label?: string }): KeyPairObjects | null {
  const tmpl: pkcs11.Template = [];
  if (query.id) tmpl.push(attr(pkcs11.CKA_ID, query.id));
  if (query.label !== undefined) tmpl.push(attr(pkcs11.CKA_LABEL, query.label));
  const privs = findObjects(session, [attr(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), ...tmpl]);
  if (privs.length === 0) return null;
  if (privs.length > 1) throw new HsmError(`${privs.length} private keys match ${describe(query)}`, "KEY_AMBIGUOUS");
  const [id] = query.id ? [query.id] : getAttributes(session, privs[0], [pkcs11.CKA_ID]);
  const pubs = findObjects(session, [attr(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY), attr(pkcs11.CKA_ID, id), ...tmpl.filter((a) => a.type !== pkcs11.CKA_ID)]);
  return { privateKey: privs[0], publicKey: pubs[0] ?? null, algorithm: keyAlgorithmOf(session, privs[0]) };
}

function describe(query: { id?: Buffer; label?: string }): string {
  return [query.label !== undefined ? `label "${query.label}"` : "", query.id ? `id ${query.id.toString("hex")}` : ""].filter(Boolean).join(", ");
}

/** CKA_ID of an object. */
export function objectId(session: graphene.Session, object: Handle): Buffer {
  return getAttributes(session, object, [pkcs11.CKA_ID])[0];
}

/** SubjectPublicKeyInfo DER of a public key object (CKA_MODULUS/CKA_PUBLIC_EXPONENT or CKA_EC_POINT). */
export function publicKeySpki(session: graphene.Session, publicKey: Handle, algorithm: KeyAlgorithm): Buffer {
  if (algorithm === "RSA-2048") {
    const [n, e] = getAttributes(session, publicKey, [pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT]);
    return rsaSpki(n, e);
  }
  const [params, point] = getAttributes(session, publicKey, [pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT]);
  if (!params.equals(P256_EC_PARAMS)) throw new HsmError("EC key is not on P-256", "CKR_DOMAIN_PARAMS_INVALID");
  return p256Spki(point);
}

/** Reads the boolean protection attributes of a private key (CK_BBOOL: one byte, non-zero = true). */
export function privateKeyFlags(session: graphene.Session, privateKey: Handle): PrivateKeyFlags {
  const v = getAttributes(session, privateKey, [pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_ALWAYS_SENSITIVE,
    pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_LOCAL]).map((b) => b.length > 0 && b[0] !== 0);
  return { sensitive: v[0], extractable: v[1], alwaysSensitive: v[2], neverExtractable: v[3], local: v[4] };
}

/**
 * Signs `data` with a private key: RSA → CKM_SHA256_RSA_PKCS (v2.40 §2.1.16, PKCS#1 v1.5 over
 * SHA-256, the sha256WithRSAEncryption signature value); P-256 → SHA-256 in node:crypto then
 * CKM_ECDSA (§2.3.6; SoftHSM has no CKM_ECDSA_SHA256), converted to DER Ecdsa-Sig-Value
 * (RFC 3279 §2.2.3). C_Sign runs on a worker thread (callback form): call inside Pkcs11Module.track,
 * and never twice at once on one session.
 */
export function signOn(session: graphene.Session, privateKey: Handle, algorithm: KeyAlgorithm, data: Uint8Array): Promise<Buffer> {
  const isRsa = algorithm === "RSA-2048";
  const input = isRsa ? Buffer.from(data) : createHash("sha256").update(data).digest();
  return signOnce(session, privateKey, isRsa ? pkcs11.CKM_SHA256_RSA_PKCS : pkcs11.CKM_ECDSA, input, !isRsa);
}

/** C_SignInit + asynchronous C_Sign; `ecdsa` converts the raw r‖s into a DER Ecdsa-Sig-Value. */
function signOnce(session: graphene.Session, privateKey: Handle, mechanism: number, input: Buffer, ecdsa: boolean): Promise<Buffer> {
  const { lib, handle } = session;
  lib.C_SignInit(handle, { mechanism }, privateKey);
  // RSA-2048 signatures are 256 bytes, P-256 raw r‖s 64; 512 leaves room and avoids a length query.
  const out = Buffer.alloc(512);
  return new Promise((resolve, reject) => {
    lib.C_Sign(handle, input, out, (err, sig) => {
      if (err) return reject(err);
      try {
        resolve(ecdsa ? ecdsaRawToDer(sig) : Buffer.from(sig));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): AlgorithmIdentifier sha256 + NULL, OCTET STRING of 32. */
const SHA256_DIGEST_INFO_PREFIX = Buffer.from("3031300d060960864801650304020105000420", "hex");

/**
 * Signs a precomputed SHA-256 `digest` (32 bytes): RSA → CKM_RSA_PKCS (v2.40 §2.1.6) over the DER
 * DigestInfo, which is exactly the CKM_SHA256_RSA_PKCS signature of the hashed data (RFC 8017
 * §8.2.1, EMSA-PKCS1-v1_5); P-256 → CKM_ECDSA over the digest, as DER Ecdsa-Sig-Value. Lets a
 * caller hash a large message (a CRL) in place instead of handing the HSM a copy of it.
 * @throws RangeError when `digest` is not 32 bytes.
 */
export function signDigestOn(session: graphene.Session, privateKey: Handle, algorithm: KeyAlgorithm, digest: Uint8Array): Promise<Buffer> {
  if (digest.length !== 32) throw new RangeError(`SHA-256 digest must be 32 bytes, got ${digest.length}`);
  const isRsa = algorithm === "RSA-2048";
  const input = isRsa ? Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]) : Buffer.from(digest);
  return signOnce(session, privateKey, isRsa ? pkcs11.CKM_RSA_PKCS : pkcs11.CKM_ECDSA, input, !isRsa);
}
