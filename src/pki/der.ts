/**
 * Minimal DER (ITU-T X.690 §10) writer: tag-length-value building blocks used by the template
 * tbsCertificate builder and, later, streamed CRL encoding. Encoding only; parsing uses asn1js.
 * All functions return Buffers (a Uint8Array subclass) because Buffer.concat is the fastest join.
 */

/** Universal tag numbers used here (X.680 §8.4). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  NumericString: 0x12,
  PrintableString: 0x13,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** DER length octets (X.690 §8.1.3, definite form, minimal). `n` in bytes, 0 ≤ n < 2^32. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** One TLV: `tag` is the full identifier octet (e.g. 0x30, 0xa0). */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? content[0] : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(Tag.SEQUENCE, ...items);
export const set = (...items: Uint8Array[]): Buffer => tlv(Tag.SET, ...items);
/** [n] EXPLICIT, constructed context-specific tag (X.690 §8.14). */
export const explicit = (n: number, ...items: Uint8Array[]): Buffer => tlv(0xa0 | n, ...items);
/** [n] IMPLICIT primitive context-specific tag. */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

export const derNull = (): Buffer => Buffer.from([Tag.NULL, 0]);
export const derBoolean = (v: boolean): Buffer => Buffer.from([Tag.BOOLEAN, 1, v ? 0xff : 0]);
export const octetString = (b: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, b);
/** BIT STRING with `unusedBits` (0–7) in the last octet. */
export const bitString = (b: Uint8Array, unusedBits = 0): Buffer =>
  tlv(Tag.BIT_STRING, Buffer.from([unusedBits]), b);

/**
 * INTEGER from an unsigned big-endian magnitude (e.g. a certificate serial): strips redundant
 * leading zeros and prefixes 0x00 when the high bit is set, so the value stays positive (X.690 §8.3).
 */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m[0] & 0x80 ? tlv(Tag.INTEGER, Buffer.from([0]), m) : tlv(Tag.INTEGER, m);
}

/** INTEGER from a small non-negative JS number (< 2^31), e.g. a version or pathLenConstraint. */
export function smallInteger(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`smallInteger: ${n}`);
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n >>>= 8;
  } while (n > 0);
  return unsignedInteger(Buffer.from(bytes));
}

/** OBJECT IDENTIFIER TLV from dotted form (X.690 §8.19). Throws on a malformed OID. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`malformed OID: ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] > 39n)) {
    throw new Error(`malformed OID: ${dotted}`);
  }
  const out: number[] = [];
  const push = (v: bigint) => {
    const chunk = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      chunk.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...chunk);
  };
  push(arcs[0] * 40n + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  const enc = tlv(Tag.OID, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}
const oidCache = new Map<string, Buffer>();

export const utf8String = (s: string): Buffer => tlv(Tag.UTF8String, Buffer.from(s, "utf8"));
export const ia5String = (s: string): Buffer => tlv(Tag.IA5String, Buffer.from(s, "ascii"));
export const printableString = (s: string): Buffer => {
  if (!isPrintableString(s)) throw new Error(`not a PrintableString: ${JSON.stringify(s)}`);
  return tlv(Tag.PrintableString, Buffer.from(s, "ascii"));
};

/** X.680 §41.4 PrintableString alphabet. */
export function isPrintableString(s: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
}

/** ENUMERATED from a small non-negative number (X.690 §8.4), e.g. OCSPResponseStatus or CRLReason. */
export function enumerated(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7f) throw new RangeError(`enumerated: ${n}`);
  return Buffer.from([0x0a, 1, n]);
}

/**
 * GeneralizedTime YYYYMMDDHHMMSSZ (X.680 §46, no fraction, Zulu), whatever the year — the form
 * RFC 6960 uses for producedAt, thisUpdate, nextUpdate and revocationTime. Milliseconds are dropped.
 */
export function generalizedTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, "0");
  const s = `${String(d.getUTCFullYear()).padStart(4, "0")}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(Tag.GeneralizedTime, Buffer.from(s, "ascii"));
}

/**
 * Time per RFC 5280 §4.1.2.5: UTCTime for years 1950–2049, GeneralizedTime otherwise,
 * always in Zulu with seconds and no fraction. Millisecond parts are dropped.
 */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.UTCTime, Buffer.from(`${p(y % 100)}${rest}`, "ascii"));
  return tlv(Tag.GeneralizedTime, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "ascii"));
}
