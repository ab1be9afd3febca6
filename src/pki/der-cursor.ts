/**
 * A small, allocation-light DER reader (ITU-T X.690 §10) for the hot path: the pre-issuance lint
 * and SubjectKeyIdentifier computation walk a tbsCertificate by offsets instead of building asn1js
 * objects (~1 µs instead of ~100 µs). It reads single-octet tags only (every X.509 tag is < 31),
 * and rejects indefinite and non-minimal lengths, so whatever it walks is DER-clean.
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

/** One TLV inside `buf`: `tag` is the identifier octet; content is buf[contentStart, end). */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Reads the TLV starting at `offset`, which must end at or before `limit`.
 * Throws DerReadError on a multi-octet tag, indefinite length, a length with redundant octets
 * (X.690 §10.1) or an element running past `limit`.
 */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (offset + 2 > limit) throw new DerReadError("truncated element", offset);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new DerReadError("multi-octet tag", offset);
  let len = buf[offset + 1];
  let p = offset + 2;
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
  if (end > limit) throw new DerReadError("element runs past its container", offset);
  return { tag, start: offset, contentStart: p, end };
}

/** The elements inside a constructed `parent` (or inside buf[start,end)), in order. */
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

/** Reads a whole buffer as exactly one element with no trailing bytes. */
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

/** Dotted-decimal form of OBJECT IDENTIFIER content octets (X.690 §8.19); throws on bad encoding. */
export function decodeOid(content: Uint8Array, offset = 0): string {
  if (content.length === 0) throw new DerReadError("empty OBJECT IDENTIFIER", offset);
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i];
    if (v === 0 && b === 0x80) throw new DerReadError("non-minimal OID arc", offset + i);
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    } else if (i === content.length - 1) throw new DerReadError("truncated OID arc", offset + i);
  }
  const first = arcs[0] < 40 ? 0 : arcs[0] < 80 ? 1 : 2;
  return [first, arcs[0] - first * 40, ...arcs.slice(1)].join(".");
}
