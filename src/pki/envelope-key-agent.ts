/**
 * The recipient's private-key operation behind an envelope (issue 15 §3): a RecipientKeyAgent does
 * the one step that needs the private key — the ECDH of RFC 5753 §3.1.2 or the RSAES-OAEP decryption
 * of RFC 8017 §7.1.2 — so the key may stay on a card (src/hsm/card-decrypt.ts) or, for software keys
 * (tests, a facility's software key), in a WebCrypto CryptoKey ({@link softwareKeyAgent}).
 */
import { createPrivateKey, webcrypto } from "node:crypto";
import type { HashName } from "./envelope-asn1.ts";

/** The recipient side of an envelope: its certificate and its private-key operation. */
export interface RecipientKeyAgent {
  /** The recipient's certificate (DER): picks the RecipientInfo addressed to it. */
  readonly certificate: Uint8Array;
  /**
   * EC keys: the ECDH primitive (SEC 1 §3.3.1) between the recipient's private key and the
   * originator's ephemeral public key (uncompressed point 04‖X‖Y), returning the shared secret Z
   * (the X coordinate, 32 bytes for P-256) — the KDF input, never the content key.
   */
  ecdh?(ephemeralPublicKey: Uint8Array): Promise<Uint8Array>;
  /** RSA keys: RSAES-OAEP-DECRYPT (RFC 8017 §7.1.2) of `encryptedKey` with `hash` and MGF1-`hash`, empty label. */
  rsaOaepDecrypt?(encryptedKey: Uint8Array, hash: HashName): Promise<Uint8Array>;
}

const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

/**
 * A key agent over a software private key (PKCS#8 DER): EC P-256 → ECDH, RSA → RSA-OAEP. For tests
 * and for keys a facility keeps outside a card; subscribers' keys stay on their cards.
 */
export async function softwareKeyAgent(certificate: Uint8Array, pkcs8: Uint8Array): Promise<RecipientKeyAgent> {
  const type = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }).asymmetricKeyType;
  if (type === "ec") {
    const key = await webcrypto.subtle.importKey("pkcs8", buf(pkcs8), { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    return {
      certificate,
      async ecdh(point) {
        const pub = await webcrypto.subtle.importKey("raw", buf(point), { name: "ECDH", namedCurve: "P-256" }, false, []);
        return new Uint8Array(await webcrypto.subtle.deriveBits({ name: "ECDH", public: pub }, key, 256));
      },
    };
  }
  if (type === "rsa") {
    const keys = new Map<HashName, Promise<CryptoKey>>();
    return {
      certificate,
      async rsaOaepDecrypt(encryptedKey, hash) {
        if (!keys.has(hash)) keys.set(hash, webcrypto.subtle.importKey("pkcs8", buf(pkcs8), { name: "RSA-OAEP", hash }, false, ["decrypt"]));
        return new Uint8Array(await webcrypto.subtle.decrypt({ name: "RSA-OAEP" }, await keys.get(hash)!, buf(encryptedKey)));
      },
    };
  }
  throw new TypeError(`softwareKeyAgent: unsupported key type ${type}`);
}
