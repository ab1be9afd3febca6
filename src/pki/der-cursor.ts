/**
 * The one strict DER reader of src/pki (ITU-T X.690 §8, §10). It walks bytes by offsets instead of
 * building asn1js objects (~1 µs instead of ~100 µs per certificate), so the pre-issuance lint,
 * SubjectKeyIdentifier computation and the Name / hcRole decoders all share one set of rules:
 * definite, minimal lengths (§10.1), minimally encoded tags (§8.1.2.4), children exactly tiling
 * their parent, exactly one element with no trailing bytes, primitive character strings
 * (§10.2), minimal OID arcs (§8.19.2). asn1js alone accepts overruns and BER; pkijs is used
 * only after this reader has accepted the bytes (csr.ts, inspect.ts).
 *
 * Two ways to fail: the cursor functions throw DerReadError (with the offset); the `fail`-style
 * helpers (parseDer, children, oidOf, decodeString) throw through the caller's `fail` so each
 * module keeps its own error class. Pure: bytes in, values out.
 */

/** Thrown on any encoding that is not well-formed DER; `offset` is where reading failed. */
export class DerReadError extends Error {
  override name = "DerReadError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

/**
 * One TLV inside `buf`: content is buf[contentStart, end), the whole element buf[start, end).
 * `tag` is the first identifier octet (class, constructed bit, tag number < 31 — every X.509
 * tag); a high tag number (X.690 §8.1.2.4) shows as low bits 0x1f, its number is not kept.
 */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Reads the TLV starting at `offset`, which must end at or before `limit`.
 * Throws DerReadError on a truncated or non-minimal tag, an indefinite length, a length with
 * redundant octets (X.690 §10.1) or an element overrunning `limit`.
 */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerReadError("truncated element", offset);
  const tag = buf[offset];
  let p = offset + 1;
  if ((tag & 0x1f) === 0x1f) p = skipHighTagNumber(buf, p, limit);
  let len = buf[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerReadError("indefinite length (BER, not DER)", offset);
    if (n > 4 || p + n > limit) throw new DerReadError("length too long", offset);
    if (buf[p] === 0) throw new DerReadError("non-minimal length", offset);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    if (len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1)))) throw new DerReadError("non-minimal length", offset);
    p += n;
  }
  const end = p + len;
  if (end > limit) throw new DerReadError("element overruns its container", offset);
  return { tag, start: offset, contentStart: p, end };
}

/** High-tag-number form (X.690 §8.1.2.4): base-128 octets, no leading 0x80, number ≥ 31. */
function skipHighTagNumber(buf: Uint8Array, p: number, limit: number): number {
  const first = p;
  if (buf[p] === 0x80) throw new DerReadError("non-minimal tag number", p);
  let n = 0;
  for (;;) {
    if (p >= limit - 1 || p - first >= 4) throw new DerReadError("truncated or oversized tag number", first - 1);
    const b = buf[p++];
    n = n * 128 + (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  if (n < 31) throw new DerReadError("non-minimal tag number", first - 1);
  return p;
}

/** The elements inside a constructed `parent`, in order; throws DerReadError on a primitive one. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  if (!(parent.tag & 0x20)) throw new DerReadError("expected a constructed element", parent.start);
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** Reads a whole buffer as exactly one element with no trailing bytes (children not checked). */
export function readSingle(buf: Uint8Array): Tlv {
  const t = readTlv(buf, 0, buf.length);
  if (t.end !== buf.length) throw new DerReadError("trailing bytes after the element", t.end);
  return t;
}

/**
 * Walks every constructed element below `t` so that any BER length form anywhere in the tree is
 * caught; primitive contents (OCTET STRING extnValues included) are not entered.
 */
export function assertDerTree(buf: Uint8Array, t: Tlv): void {
  if (!(t.tag & 0x20)) return;
  for (const c of childrenOf(buf, t)) assertDerTree(buf, c);
}

/**
 * Strict DER of a whole buffer (X.690 §10): exactly one element, its constructed tree checked to
 * the leaves (assertDerTree), then no trailing bytes. Returns the top TLV; throws DerReadError.
 */
export function readDer(buf: Uint8Array): Tlv {
  const t = readTlv(buf, 0, buf.length);
  assertDerTree(buf, t);
  if (t.end !== buf.length) throw new DerReadError(`${buf.length - t.end} trailing byte(s) after the DER element`, t.end);
  return t;
}

/** Content octets of `t` (a view, no copy). */
export const contentOf = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.contentStart, t.end);

/** The whole TLV of `t` (a view, no copy). */
export const bytesOf = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.start, t.end);

/** Byte equality of two views. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Universal class with this tag number (constructed or not), e.g. isUniversal(t, 16) for SEQUENCE. */
export const isUniversal = (t: Tlv, tagNumber: number): boolean => (t.tag & 0xdf) === tagNumber;

/** Context-specific [n], constructed when EXPLICIT (X.690 §8.1.2). */
export const isContext = (t: Tlv, n: number, constructed: boolean): boolean => t.tag === (constructed ? 0xa0 : 0x80) + n;

/**
 * Dotted-decimal form of OBJECT IDENTIFIER content octets (X.690 §8.19), arcs of any size.
 * Throws DerReadError (at `offset` + index) on empty content, a non-minimal (0x80-led) or
 * truncated arc.
 */
export function decodeOid(content: Uint8Array, offset = 0): string {
  if (content.length === 0) throw new DerReadError("empty OBJECT IDENTIFIER", offset);
  const arcs: (number | bigint)[] = [];
  let v = 0;
  let big: bigint | undefined; // once an arc exceeds 2^46, continue it exactly
  for (let i = 0; i < content.length; i++) {
    const b = content[i];
    if (v === 0 && big === undefined && b === 0x80) throw new DerReadError("non-minimal OID arc", offset + i);
    if (big !== undefined) big = big * 128n + BigInt(b & 0x7f);
    else if (v >= 2 ** 46) big = BigInt(v) * 128n + BigInt(b & 0x7f);
    else v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(big ?? v);
      v = 0;
      big = undefined;
    } else if (i === content.length - 1) throw new DerReadError("truncated OID arc", offset + i);
  }
  const a0 = arcs[0];
  if (typeof a0 === "bigint") arcs.splice(0, 1, 2, a0 - 80n);
  else {
    const first = a0 < 40 ? 0 : a0 < 80 ? 1 : 2;
    arcs.splice(0, 1, first, a0 - first * 40);
  }
  return arcs.join(".");
}

// ---- character strings (X.680 §8.4, X.690 §8.23) ----

/** ASN.1 universal tag numbers of character strings (X.680 §8.4) → display names. */
export const STRING_TYPES: Readonly<Record<number, string>> = {
  12: "UTF8String",
  18: "NumericString",
  19: "PrintableString",
  20: "TeletexString",
  22: "IA5String",
  26: "VisibleString",
  28: "UniversalString",
  30: "BMPString",
};

/** The DirectoryString CHOICE (X.520 / RFC 5280 §4.1.2.4). */
export const DIRECTORY_STRING_TYPES = new Set(["TeletexString", "PrintableString", "UniversalString", "UTF8String", "BMPString"]);

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf16beDecoder = new TextDecoder("utf-16be", { fatal: true, ignoreBOM: true });

/** Bytes as Latin-1 text, one character per octet (also right for 7-bit ASCII). */
export const latin1Text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

/** Strict UTF-8 (no BOM stripping), with a fast path for ASCII; undefined when not valid UTF-8. */
export function utf8Text(b: Uint8Array): string | undefined {
  let ascii = true;
  for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) ascii = false;
  if (ascii) return b.length < 4096 ? String.fromCharCode(...b) : latin1Text(b);
  try {
    return utf8Decoder.decode(b);
  } catch {
    return undefined;
  }
}

/** Throws the caller's error type with a message; never returns. */
export type Fail = (message: string) => never;

/**
 * Decodes the character string at `t` to JS text. Returns `{ value, stringType }` (a STRING_TYPES
 * name). UTF8String must be valid UTF-8, BMPString valid UTF-16BE, UniversalString valid UCS-4BE;
 * TeletexString is read as Latin-1 (as OpenSSL does); the 7-bit types must be ASCII.
 * `fail`s on a non-string tag or a constructed string (BER, X.690 §10.2) and on bad content.
 */
export function decodeString(buf: Uint8Array, t: Tlv, what: string, fail: Fail): { value: string; stringType: string } {
  const type = t.tag & 0xc0 ? undefined : STRING_TYPES[t.tag & 0x1f];
  if (!type) fail(`${what}: not a character string (tag 0x${t.tag.toString(16)})`);
  if (t.tag & 0x20) fail(`${what}: constructed ${type} (BER, not DER)`);
  return { value: decodeText(contentOf(buf, t), type, what, fail), stringType: type };
}

function decodeText(b: Uint8Array, type: string, what: string, fail: Fail): string {
  switch (type) {
    case "UTF8String":
      return utf8Text(b) ?? fail(`${what}: UTF8String is not valid UTF-8`);
    case "BMPString":
      if (b.length % 2) fail(`${what}: BMPString has an odd number of bytes`);
      try {
        return utf16beDecoder.decode(b);
      } catch {
        return fail(`${what}: BMPString is not valid UTF-16BE`);
      }
    case "UniversalString": {
      if (b.length % 4) fail(`${what}: UniversalString length is not a multiple of 4`);
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      let s = "";
      for (let i = 0; i < b.length; i += 4) {
        const cp = view.getUint32(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`${what}: UniversalString has invalid code point`);
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case "TeletexString":
      return latin1Text(b);
    default:
      if (b.some((c) => c > 0x7f)) fail(`${what}: ${type} contains non-ASCII bytes`);
      return latin1Text(b);
  }
}

// ---- `fail`-style helpers for decoders with their own error class ----

/**
 * readDer through the caller's error: `fail`s with "<what>: empty input" or
 * "<what>: not valid DER (<reason> at offset N)" (truncation, overrun, BER lengths, bad tags,
 * trailing bytes). Encapsulated contents of OCTET/BIT STRINGs are not entered.
 */
export function parseDer(bytes: Uint8Array, what: string, fail: Fail): Tlv {
  if (bytes.length === 0) fail(`${what}: empty input`);
  return guard(what, fail, () => readDer(bytes));
}

/** Children of a constructed element, or `fail` ("<what>: expected a constructed element"). */
export function children(buf: Uint8Array, t: Tlv, what: string, fail: Fail): Tlv[] {
  if (!(t.tag & 0x20)) fail(`${what}: expected a constructed element`);
  return guard(what, fail, () => childrenOf(buf, t));
}

/** Dotted OID of the OBJECT IDENTIFIER at `t`, or `fail` (not an OID / malformed OID). */
export function oidOf(buf: Uint8Array, t: Tlv, what: string, fail: Fail): string {
  if (t.tag !== 0x06) fail(`${what}: expected an OBJECT IDENTIFIER`);
  try {
    return decodeOid(contentOf(buf, t), t.contentStart);
  } catch (e) {
    if (!(e instanceof DerReadError)) throw e;
    return fail(`${what}: malformed OBJECT IDENTIFIER`);
  }
}

function guard<T>(what: string, fail: Fail, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof DerReadError)) throw e;
    return fail(`${what}: not valid DER (${e.message})`);
  }
}

/** Copies bytes into an ArrayBuffer-backed view, the BufferSource type asn1js/pkijs declare. */
export function ab(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}
