/**
 * The ANSI X9.63 key derivation function (ANSI X9.63-2001 §5.6.3, SEC 1 v2 §3.6.1): the KDF that
 * RFC 5753 §7.2 names for dhSinglePass-stdDH-sha*kdf-scheme. The hash is node:crypto's; this file
 * only composes it as the standard says. Pure and synchronous.
 */
import { createHash } from "node:crypto";

/** Digests the KDF runs over (node:crypto names) and their output lengths in octets. */
export const X963_HASH_BYTES = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 } as const;
export type X963Hash = keyof typeof X963_HASH_BYTES;

/**
 * K = Hash(Z ‖ Counter ‖ SharedInfo) for Counter = 00000001, 00000002, … (32-bit big-endian),
 * concatenated and truncated to `length` octets (SEC 1 v2 §3.6.1 steps 1–5).
 * @throws RangeError when `length` is not a positive integer or exceeds hashlen × (2^32 − 1).
 */
export function x963Kdf(hash: X963Hash, z: Uint8Array, sharedInfo: Uint8Array, length: number): Buffer {
  const hashLength = X963_HASH_BYTES[hash];
  if (!Number.isInteger(length) || length <= 0 || length > hashLength * 0xffffffff) throw new RangeError(`x963Kdf: key length ${length}`);
  const blocks = Math.ceil(length / hashLength);
  const out = Buffer.allocUnsafe(blocks * hashLength);
  const counter = Buffer.alloc(4);
  for (let i = 1; i <= blocks; i++) {
    counter.writeUInt32BE(i);
    createHash(hash).update(z).update(counter).update(sharedInfo).digest().copy(out, (i - 1) * hashLength);
  }
  return out.subarray(0, length);
}
