/**
 * AES key wrap (RFC 3394 §2.2, the id-aes*-wrap algorithms of RFC 3565 §2.3.2) with node:crypto's
 * id-aes128/192/256-wrap ciphers (OpenSSL's implementation) and the default initial value
 * A6A6A6A6A6A6A6A6 (RFC 3394 §2.2.3.1) passed explicitly. Pure and synchronous.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";

/** RFC 3394 §2.2.3.1 default initial value. */
const RFC3394_IV = Buffer.from("a6a6a6a6a6a6a6a6", "hex");
const WRAP_CIPHER: Readonly<Record<number, string>> = { 16: "id-aes128-wrap", 24: "id-aes192-wrap", 32: "id-aes256-wrap" };

function wrapCipher(kek: Uint8Array): string {
  const name = WRAP_CIPHER[kek.length];
  if (!name) throw new RangeError(`AES key wrap: key-encryption key of ${kek.length} octets`);
  return name;
}

/** Wraps `key` (a multiple of 8 octets, at least 16) under `kek` (16, 24 or 32 octets), RFC 3394 §2.2.1. */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  const c = createCipheriv(wrapCipher(kek), kek, RFC3394_IV);
  return Buffer.concat([c.update(key), c.final()]);
}

/**
 * Unwraps `wrapped` under `kek` and checks the integrity value (RFC 3394 §2.2.2–2.2.3).
 * @returns the key, or undefined when the check fails (wrong key-encryption key or altered input).
 */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer | undefined {
  const name = wrapCipher(kek);
  try {
    const d = createDecipheriv(name, kek, RFC3394_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch {
    return undefined;
  }
}
