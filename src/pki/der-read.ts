/**
 * Strict DER reading on top of asn1js (ITU-T X.690 §10): asn1js accepts BER, so this layer adds
 * the DER rules that matter for untrusted input — exactly one top-level element, no trailing
 * bytes, definite minimal lengths, primitive strings — and decodes ASN.1 character strings.
 * Pure: bytes in, values out. Errors are thrown through the caller's `fail` so each module keeps
 * its own error class.
 */
import * as asn1js from "asn1js";

/** Copies bytes into an ArrayBuffer-backed view, the BufferSource type asn1js/pkijs declare. */
export function ab(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** Throws the caller's error type with a message; never returns. */
export type Fail = (message: string) => never;

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
export const DIRECTORY_STRING_TYPES = new Set([
  "TeletexString",
  "PrintableString",
  "UniversalString",
  "UTF8String",
  "BMPString",
]);

/**
 * Parses exactly one DER element covering all of `bytes`. Rejects parse errors, trailing bytes,
 * indefinite lengths and non-minimal length encodings anywhere in the constructed tree
 * (X.690 §10.1). Encapsulated contents of OCTET/BIT STRINGs are not parsed.
 */
export function parseDer(bytes: Uint8Array, what: string, fail: Fail): asn1js.AsnType {
  if (bytes.length === 0) fail(`${what}: empty input`);
  const { offset, result } = asn1js.fromBER(ab(bytes), { parseEmbedded: false });
  if (offset === -1 || result.error) fail(`${what}: not valid DER (${result.error || "parse error"})`);
  if (offset !== bytes.length) fail(`${what}: ${bytes.length - offset} trailing byte(s) after the DER element`);
  assertDerTree(result, what, fail);
  return result;
}

function assertDerTree(block: asn1js.AsnType, what: string, fail: Fail): void {
  const len = block.lenBlock;
  if (len.isIndefiniteForm) fail(`${what}: indefinite length (BER, not DER)`);
  if (len.warnings.length) fail(`${what}: non-minimal length encoding (BER, not DER)`);
  if (block.idBlock.isConstructed) {
    const kids = (block.valueBlock as { value?: asn1js.AsnType[] }).value ?? [];
    // asn1js lets a child run past its parent's declared length; DER children must tile it exactly.
    const used = kids.reduce((n, k) => n + k.blockLength, 0);
    if (used !== len.length) fail(`${what}: element contents overrun or underrun the declared length`);
    for (const kid of kids) assertDerTree(kid, what, fail);
  }
}

/** Universal class? (asn1js tagClass 1 = universal, 3 = context-specific.) */
export function isUniversal(block: asn1js.AsnType, tagNumber: number): boolean {
  return block.idBlock.tagClass === 1 && block.idBlock.tagNumber === tagNumber;
}

/** Context-specific [n] tag (constructed when EXPLICIT). */
export function isContext(block: asn1js.AsnType, n: number, constructed: boolean): boolean {
  return block.idBlock.tagClass === 3 && block.idBlock.tagNumber === n && block.idBlock.isConstructed === constructed;
}

/** Children of a constructed element, or `fail` when it is primitive. */
export function children(block: asn1js.AsnType, what: string, fail: Fail): asn1js.AsnType[] {
  if (!block.idBlock.isConstructed) fail(`${what}: expected a constructed element`);
  return (block.valueBlock as { value: asn1js.AsnType[] }).value;
}

/** Content octets of a primitive element. */
export function contentOf(block: asn1js.AsnType): Uint8Array {
  return (block.valueBlock as unknown as { valueHexView: Uint8Array }).valueHexView;
}

/** Dotted OID of an OBJECT IDENTIFIER element, or `fail`. */
export function oidOf(block: asn1js.AsnType, what: string, fail: Fail): string {
  if (!(block instanceof asn1js.ObjectIdentifier)) fail(`${what}: expected an OBJECT IDENTIFIER`);
  const s = block.valueBlock.toString();
  if (!/^\d+(\.\d+)+$/.test(s)) fail(`${what}: malformed OBJECT IDENTIFIER`);
  return s;
}

/**
 * Decodes an ASN.1 character string element to JS text. Returns `{ value, stringType }`.
 * UTF8String must be valid UTF-8, BMPString valid UTF-16BE, UniversalString valid UCS-4BE;
 * TeletexString is read as Latin-1 (as OpenSSL does); the 7-bit types must be ASCII.
 * Constructed (BER) strings and non-string tags fail.
 */
export function decodeString(block: asn1js.AsnType, what: string, fail: Fail): { value: string; stringType: string } {
  const type = block.idBlock.tagClass === 1 ? STRING_TYPES[block.idBlock.tagNumber] : undefined;
  if (!type) fail(`${what}: not a character string (tag ${block.idBlock.tagClass}/${block.idBlock.tagNumber})`);
  if (block.idBlock.isConstructed) fail(`${what}: constructed ${type} (BER, not DER)`);
  const b = contentOf(block);
  return { value: decodeBytes(b, type, what, fail), stringType: type };
}

function decodeBytes(b: Uint8Array, type: string, what: string, fail: Fail): string {
  switch (type) {
    case "UTF8String":
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
      } catch {
        return fail(`${what}: UTF8String is not valid UTF-8`);
      }
    case "BMPString":
      if (b.length % 2) fail(`${what}: BMPString has an odd number of bytes`);
      try {
        return new TextDecoder("utf-16be", { fatal: true, ignoreBOM: true }).decode(b);
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
      return Buffer.from(b).toString("latin1");
    default:
      if (b.some((c) => c > 0x7f)) fail(`${what}: ${type} contains non-ASCII bytes`);
      return Buffer.from(b).toString("latin1");
  }
}
