/**
 * Certificate serial numbers (RFC 5280 §4.1.2.2; CA/B BR §7.1 style entropy): random, positive,
 * at most 20 octets. Uniqueness per issuer is the store's job (unique index); 127 random bits make
 * a collision practically impossible anyway.
 */
import { randomBytes } from "node:crypto";

/** Octets drawn from the CSPRNG; the top bit is cleared so the INTEGER is positive without a pad. */
const SERIAL_OCTETS = 16;

/**
 * Returns a new serial magnitude: 16 octets from node:crypto randomBytes with the high bit cleared
 * (so 127 bits of entropy, a positive INTEGER with no 0x00 pad) and a nonzero first octet (so the
 * DER INTEGER is exactly 16 octets, no leading zero octet). Values are uniform over [2^120, 2^127).
 */
export function newSerialNumber(): Buffer {
  for (;;) {
    const b = randomBytes(SERIAL_OCTETS);
    b[0] &= 0x7f;
    // Redraw instead of forcing a bit: keeps the distribution uniform (1 in 128 draws).
    if (b[0] !== 0) return b;
  }
}

/** Uppercase hex of a serial magnitude, no separators (e.g. "015E"); the form used in logs and index files. */
export function serialHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex").toUpperCase();
}

/**
 * A serial number as a person types it (hex, optional 0x, colons or spaces, any case, leading
 * zeros) in the form stored in certificates.serial_hex and revocations.serial_hex: uppercase hex of
 * the minimal magnitude, padded to an even number of digits. Null unless it is 1–42 hex digits.
 */
export function canonicalSerialHex(input: string): string | null {
  const hex = input.trim().replace(/^0x/i, "").replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{1,42}$/.test(hex)) return null;
  const digits = hex.replace(/^0+(?=.)/, "");
  return digits.length % 2 ? `0${digits}` : digits;
}
