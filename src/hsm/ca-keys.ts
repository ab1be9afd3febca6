/**
 * CA signing keys kept in the HSM: generation without overwrite, lookup by label, signing for
 * X.509 (certificates, CRLs, OCSP) through the session pool.
 */
import { randomBytes } from "node:crypto";
import type graphene from "graphene-pk11";
import { certificateTemplate, readCertificates } from "./cert-object.ts";
import { HsmError, pkcs11ErrorName } from "./errors.ts";
import { findKeyPair, generateKeyPairOn, objectId, objectsWithLabel, privateKeyFlags, publicKeySpki, signDigestOn, signOn } from "./keys.ts";
import { assertLoggedIn } from "./login.ts";
import type { SessionPool } from "./pool.ts";
import type { KeyAlgorithm } from "./spki.ts";

export type { KeyAlgorithm } from "./spki.ts";

/** A CA key pair in the HSM, identified by CKA_LABEL and CKA_ID; `spki` is SubjectPublicKeyInfo DER. */
export interface HsmKeyRef {
  label: string;
  /** CKA_ID of both halves (20 random bytes for keys generated here). */
  id: Buffer;
  algorithm: KeyAlgorithm;
  spki: Buffer;
}

/** Handles die with their session, so the cache is per Session object (a new session = a new map). */
type HandleCache = WeakMap<graphene.Session, Map<string, Buffer>>;

/** Object-handle errors after which the cached handle is dropped and looked up again once. */
const STALE_HANDLE_RVS = new Set(["CKR_KEY_HANDLE_INVALID", "CKR_OBJECT_HANDLE_INVALID"]);

/** CA key pairs on the pool's token. All methods are safe to call concurrently. */
export class CaKeyStore {
  private readonly handles: HandleCache = new WeakMap();
  /** Serialises generation so two concurrent calls cannot both pass the duplicate-label check. */
  private generating: Promise<unknown> = Promise.resolve();

  constructor(private readonly pool: SessionPool) {}

  /**
   * Generates a key pair in the HSM (PKCS#11 v2.40 §5.14 C_GenerateKeyPair): private key
   * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false, sign only (no decrypt,
   * unwrap, derive); `label` and a random 20-byte CKA_ID on both halves.
   * @throws HsmError "KEY_EXISTS" when any object with `label` exists on the token (never overwrites
   *   or duplicates; checked within this process — do not generate from two processes at once).
   */
  generateKeyPair(label: string, algorithm: KeyAlgorithm): Promise<HsmKeyRef> {
    const job = this.generating.then(() =>
      this.pool.run(async (session) => {
        if (objectsWithLabel(session, label).length > 0) {
          throw new HsmError(`a key labelled "${label}" already exists on token "${this.pool.tokenLabel}"; refusing to create another`, "KEY_EXISTS");
        }
        const id = randomBytes(20);
        const keys = await generateKeyPairOn(session, label, id, algorithm);
        return { label, id, algorithm, spki: publicKeySpki(session, keys.publicKey!, algorithm) };
      }),
    );
    this.generating = job.catch(() => undefined);
    return job;
  }

  /**
   * The key pair labelled `label` (its public half gives the SPKI), or null when no private key has
   * that label on the token (a token that vanished is healed by the pool, or reported
   * "TOKEN_UNAVAILABLE" — never a null that says the key does not exist). @throws HsmError "KEY_AMBIGUOUS" when several do, "KEY_NOT_FOUND" when the public
   * half is missing (the SPKI cannot be built).
   */
  findKey(label: string): Promise<HsmKeyRef | null> {
    return this.pool.run((session) => {
      const found = findKeyPair(session, { label });
      if (!found) {
        // A vanished token directory shows as "no such key" on the open session: heal, not null.
        assertLoggedIn(session, `token "${this.pool.tokenLabel}"`);
        this.pool.assertTokenPresent();
        return null;
      }
      if (!found.publicKey) throw new HsmError(`public key for "${label}" not found on token`, "KEY_NOT_FOUND");
      const id = objectId(session, found.privateKey);
      return { label, id, algorithm: found.algorithm, spki: publicKeySpki(session, found.publicKey, found.algorithm) };
    });
  }

  /**
   * Signs `tbs` (the complete to-be-signed DER, not a hash) with the private key of `key`:
   * sha256WithRSAEncryption (CKM_SHA256_RSA_PKCS) → 256-byte signature; ecdsa-with-SHA256
   * (SHA-256 here, then CKM_ECDSA) → DER Ecdsa-Sig-Value (RFC 3279 §2.2.3). Runs on a pooled
   * session and a worker thread, so up to pool.size signatures proceed in parallel.
   * @throws HsmError "KEY_NOT_FOUND" when the key (label + id) is not on the token.
   */
  sign(key: HsmKeyRef, tbs: Uint8Array): Promise<Buffer> {
    return this.withPrivateKey(key, (session, handle) => signOn(session, handle, key.algorithm, tbs));
  }

  /**
   * Signs a precomputed SHA-256 `digest` (32 bytes) of the to-be-signed DER: the same signature
   * value `sign` gives for the message (sha256WithRSAEncryption via CKM_RSA_PKCS over the DigestInfo,
   * RFC 8017 §9.2; ecdsa-with-SHA256 via CKM_ECDSA). For large messages such as CRLs, which are
   * hashed where they lie instead of being copied to the HSM.
   * @throws RangeError for a digest that is not 32 bytes; HsmError "KEY_NOT_FOUND" as `sign`.
   */
  signDigest(key: HsmKeyRef, digest: Uint8Array): Promise<Buffer> {
    return this.withPrivateKey(key, (session, handle) => signDigestOn(session, handle, key.algorithm, digest));
  }

  /** Protection attributes of the private key of `key` (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE). */
  keyAttributes(key: HsmKeyRef): Promise<{ sensitive: boolean; extractable: boolean; alwaysSensitive: boolean; neverExtractable: boolean }> {
    return this.withPrivateKey(key, (session, handle) => {
      const { sensitive, extractable, alwaysSensitive, neverExtractable } = privateKeyFlags(session, handle);
      return { sensitive, extractable, alwaysSensitive, neverExtractable };
    });
  }

  /** The X.509 certificate object stored on the token with `key`'s CKA_ID, or null (PKCS#11 v2.40 §4.6.3). */
  readCertificate(key: HsmKeyRef): Promise<Buffer | null> {
    return this.pool.run((session) => readCertificates(session).find((c) => c.id.equals(key.id))?.der ?? null);
  }

  /**
   * Stores `der` on the token as a certificate object (CKO_CERTIFICATE / CKC_X_509) with `key`'s
   * CKA_ID and label, so the certificate travels with its key. @throws HsmError "BAD_CERTIFICATE".
   */
  writeCertificate(key: HsmKeyRef, der: Uint8Array): Promise<void> {
    return this.pool.run((session) => {
      session.lib.C_CreateObject(session.handle, certificateTemplate(key.id, der, key.label));
    });
  }

  /** Runs `fn` with the (cached) private key handle; a stale handle is looked up again once. */
  private withPrivateKey<T>(key: HsmKeyRef, fn: (session: graphene.Session, handle: Buffer) => T | Promise<T>): Promise<T> {
    const cacheKey = `${key.id.toString("hex")}/${key.label}`;
    return this.pool.run(async (session) => {
      let cache = this.handles.get(session);
      if (!cache) this.handles.set(session, (cache = new Map()));
      let handle = cache.get(cacheKey);
      if (handle) {
        try {
          return await fn(session, handle);
        } catch (err) {
          if (!STALE_HANDLE_RVS.has(pkcs11ErrorName(err) ?? "")) throw err;
          cache.delete(cacheKey);
          assertLoggedIn(session, `token "${this.pool.tokenLabel}"`);
        }
      }
      const found = findKeyPair(session, { id: key.id, label: key.label });
      if (!found) {
        assertLoggedIn(session, `token "${this.pool.tokenLabel}"`);
        // The token itself gone (directory moved away): the pool re-initialises and retries.
        this.pool.assertTokenPresent();
      }
      if (!found) throw new HsmError(`key "${key.label}" (id ${key.id.toString("hex")}) not found on token "${this.pool.tokenLabel}"`, "KEY_NOT_FOUND");
      handle = found.privateKey;
      cache.set(cacheKey, handle);
      return fn(session, handle);
    });
  }
}
