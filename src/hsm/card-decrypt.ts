/**
 * Decryption on the card (issue 15 §3): the recipient's private key stays on the token
 * (CKA_SENSITIVE, not extractable) and does only the private-key step of opening an envelope.
 * - EC P-256: CKM_ECDH1_DERIVE with CKD_NULL (PKCS#11 v2.40 §2.3.16) into a session-only
 *   CKO_SECRET_KEY holding the raw shared secret Z, read once as the X9.63 KDF input (RFC 5753 §3.1.2)
 *   and destroyed at once. CKD_NULL is the only KDF SoftHSM and most cards offer; the KDF with the
 *   ECC-CMS-SharedInfo runs on the host, as in every CMS implementation over PKCS#11.
 * - RSA: CKM_RSA_PKCS_OAEP decrypt (v2.40 §2.1.8) returns the content key.
 */
import type graphene from "graphene-pk11";
import pkcs11 from "pkcs11js";
import type { RecipientKeyAgent } from "../pki/envelope-key-agent.ts";
import type { CardSession } from "./cards.ts";
import { HsmError } from "./errors.ts";

type Handle = Buffer;

/** Hashes an RSA-OAEP RecipientInfo may name, as PKCS#11 hash mechanism and MGF1 generator. */
const OAEP_HASH: Readonly<Record<string, { hashAlg: number; mgf: number }>> = {
  "SHA-1": { hashAlg: pkcs11.CKM_SHA_1, mgf: pkcs11.CKG_MGF1_SHA1 },
  "SHA-256": { hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256 },
  "SHA-384": { hashAlg: pkcs11.CKM_SHA384, mgf: pkcs11.CKG_MGF1_SHA384 },
  "SHA-512": { hashAlg: pkcs11.CKM_SHA512, mgf: pkcs11.CKG_MGF1_SHA512 },
};

/** CKZ_DATA_SPECIFIED (v2.40 §2.1.8): the OAEP label source; an empty label. */
const CKZ_DATA_SPECIFIED = 1;

/**
 * ECDH on the token (CKM_ECDH1_DERIVE, CKD_NULL) between the private key `privateKey` and the
 * uncompressed point `publicPoint` (04‖X‖Y): returns Z (32 bytes for P-256). The derived object is a
 * session object (CKA_TOKEN false) of CKK_GENERIC_SECRET, destroyed before returning.
 * Synchronous: call inside Pkcs11Module.track on the card's session.
 */
export function ecdhDeriveOn(session: graphene.Session, privateKey: Handle, publicPoint: Uint8Array): Buffer {
  const point = Buffer.from(publicPoint);
  if (point.length !== 65 || point[0] !== 0x04) throw new HsmError("ECDH: the peer key is not an uncompressed P-256 point", "CKR_ARGUMENTS_BAD");
  const { lib, handle } = session;
  const secret = lib.C_DeriveKey(
    handle,
    { mechanism: pkcs11.CKM_ECDH1_DERIVE, parameter: { type: pkcs11.CK_PARAMS_EC_DH, kdf: pkcs11.CKD_NULL, publicData: point } as pkcs11.ECDH1 },
    privateKey,
    [
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
      { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_GENERIC_SECRET },
      { type: pkcs11.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11.CKA_TOKEN, value: false },
      { type: pkcs11.CKA_PRIVATE, value: true },
      // Readable once: Z is the KDF input on the host (RFC 5753 §3.1.2), never a stored key.
      { type: pkcs11.CKA_SENSITIVE, value: false },
      { type: pkcs11.CKA_EXTRACTABLE, value: true },
      { type: pkcs11.CKA_ENCRYPT, value: false },
      { type: pkcs11.CKA_DECRYPT, value: false },
      { type: pkcs11.CKA_WRAP, value: false },
      { type: pkcs11.CKA_UNWRAP, value: false },
      { type: pkcs11.CKA_DERIVE, value: false },
    ],
  );
  try {
    const [value] = lib.C_GetAttributeValue(handle, secret, [{ type: pkcs11.CKA_VALUE }]);
    return Buffer.from(value.value as Buffer);
  } finally {
    lib.C_DestroyObject(handle, secret);
  }
}

/**
 * RSAES-OAEP decryption on the token (CKM_RSA_PKCS_OAEP, v2.40 §2.1.8) with `hash` and MGF1 over the
 * same hash, empty label. Asynchronous C_Decrypt (worker thread): call inside Pkcs11Module.track.
 * @throws HsmError "CKR_MECHANISM_PARAM_INVALID" for a hash the table does not know.
 */
export function rsaOaepDecryptOn(session: graphene.Session, privateKey: Handle, encrypted: Uint8Array, hash: string): Promise<Buffer> {
  const h = OAEP_HASH[hash];
  if (!h) return Promise.reject(new HsmError(`RSA-OAEP with ${hash} is not supported`, "CKR_MECHANISM_PARAM_INVALID"));
  const { lib, handle } = session;
  lib.C_DecryptInit(handle, { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: { type: pkcs11.CK_PARAMS_RSA_OAEP, ...h, source: CKZ_DATA_SPECIFIED } as pkcs11.RsaOAEP }, privateKey);
  return new Promise((resolve, reject) => {
    lib.C_Decrypt(handle, Buffer.from(encrypted), Buffer.alloc(512), (err, out) => (err ? reject(err) : resolve(Buffer.from(out))));
  });
}

/**
 * The envelope key agent (src/pki/envelope.ts) of a logged-in card: opening an envelope addressed
 * to `certificate` runs the private-key step on the card's key `keyId` (the "enc" key, issue 15 §3).
 */
export function cardKeyAgent(card: CardSession, keyId: Buffer, certificate: Uint8Array): RecipientKeyAgent {
  return {
    certificate,
    ecdh: (point) => card.ecdh(keyId, point),
    rsaOaepDecrypt: (encryptedKey, hash) => card.rsaOaepDecrypt(keyId, encryptedKey, hash),
  };
}
