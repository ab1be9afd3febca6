/**
 * Streaming X.509 v2 CRL encoder (RFC 5280 §5). Entries are written straight into one growing
 * byte arena — never one object per entry kept — so a million-entry CRL costs its own size in
 * memory (~49 bytes an entry) and nothing more. The arena reserves room in front of the entries
 * for the TBSCertList header and the CertificateList header, whose lengths are only known at the
 * end; the finished CRL is a view of the arena, built without copying the entries again.
 *
 * Pure: bytes in, bytes out. Hashing and signing the TBSCertList is the caller's job (HSM).
 */
import { Tag, derBoolean, derLength, oid, sequence, smallInteger, time, tlv, unsignedInteger } from "./der.ts";
import { algorithmIdentifier, type SignatureAlgorithmName } from "./certificate.ts";
import { extension } from "./extensions.ts";
import { OID } from "./oids.ts";

/** CRLReason codes (RFC 5280 §5.3.1); value 7 is not used. */
export const CRL_REASON_CODES = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type CrlReason = keyof typeof CRL_REASON_CODES;

/** One revokedCertificates entry (RFC 5280 §5.1.2.6, §5.3). */
export interface CrlEntry {
  /** userCertificate: the serial number as an unsigned big-endian magnitude (leading zeros allowed). */
  serial: Uint8Array;
  revocationDate: Date;
  /** reasonCode entry extension; omitted for undefined and for "unspecified" (RFC 5280 §5.3.1 SHOULD). */
  reason?: CrlReason;
  /** invalidityDate entry extension (RFC 5280 §5.3.2), always GeneralizedTime. */
  invalidityDate?: Date;
}

/** issuingDistributionPoint (RFC 5280 §5.2.5), always marked critical as the RFC requires. */
export interface IssuingDistributionPoint {
  /** distributionPoint fullName: a directoryName (Name DER) and/or a URI. */
  fullName?: { directoryName?: Uint8Array; uri?: string };
  onlyContainsUserCerts?: boolean;
  /** True for an ARL (the root's list of revoked CA certificates). */
  onlyContainsCACerts?: boolean;
}

/** Everything in a TBSCertList except the entries. */
export interface CrlHeader {
  signatureAlgorithm: SignatureAlgorithmName;
  /** issuer: the CA's subject Name DER, byte for byte as in its certificate. */
  issuer: Uint8Array;
  /** authorityKeyIdentifier extnValue DER (RFC 5280 §5.2.1), e.g. from authorityKeyIdentifierValue. */
  authorityKeyIdentifier: Uint8Array;
  /** cRLNumber (RFC 5280 §5.2.3): non-negative, at most 20 octets. */
  crlNumber: bigint | number;
  thisUpdate: Date;
  nextUpdate: Date;
  issuingDistributionPoint?: IssuingDistributionPoint;
}

/** A finished TBSCertList: `tbs` (a view, do not mutate) is what the CA signs. */
export interface EncodedTbsCertList {
  tbs: Buffer;
  /** Number of revokedCertificates entries. */
  entries: number;
  /**
   * CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
   * (RFC 5280 §5.1.1) around `signatureValue` (PKCS#1 v1.5 octets, or DER Ecdsa-Sig-Value).
   * Written in place after the TBS: call once. Returns the CRL DER (a view of the arena).
   */
  certificateList(signatureValue: Uint8Array): Buffer;
}

/** Maximum DER header size (tag + 5 length octets) reserved for each header written at the end. */
const HEADER_ROOM = 6;
/** Room kept after the TBS for the AlgorithmIdentifier and a signature BIT STRING of up to 512 octets. */
const TAIL_ROOM = 600;
/** Fixed prefixes of the entry extensions: SEQUENCE { extnID, extnValue OCTET STRING { … } }. */
const REASON_PREFIX = Buffer.from([0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01]);
const INVALIDITY_PREFIX = Buffer.from([0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11, 0x18, 0x0f]);

/**
 * Incremental encoder: `add` entries in strictly increasing serial order, then `finish`.
 * `expectedEntries` sizes the arena up front (untouched capacity costs address space, not RSS).
 */
export class CrlEncoder {
  private buf: Buffer;
  private pos: number;
  private readonly entriesStart: number;
  private readonly prefix: Buffer;
  private readonly extensions: Buffer;
  private readonly algorithm: Buffer;
  private count = 0;
  private prevSerialStart = -1;
  private prevSerialLen = 0;
  private finished = false;

  /** @throws RangeError when nextUpdate is not after thisUpdate or crlNumber is out of range. */
  constructor(header: CrlHeader, expectedEntries = 1024) {
    if (!(header.nextUpdate.getTime() > header.thisUpdate.getTime())) throw new RangeError("nextUpdate must be after thisUpdate");
    this.algorithm = algorithmIdentifier(header.signatureAlgorithm);
    // version v2 (INTEGER 1), signature, issuer, thisUpdate, nextUpdate (RFC 5280 §5.1.2.1–5.1.2.5).
    this.prefix = Buffer.concat([smallInteger(1), this.algorithm, header.issuer, time(header.thisUpdate), time(header.nextUpdate)]);
    this.extensions = crlExtensions(header);
    this.entriesStart = 3 * HEADER_ROOM + this.prefix.length;
    this.buf = Buffer.allocUnsafeSlow(this.entriesStart + Math.max(16, expectedEntries) * 80 + this.extensions.length + TAIL_ROOM);
    this.pos = this.entriesStart;
  }

  /**
   * Appends one RevokedCertificate. @throws RangeError when the serial is not strictly greater
   * than the previous one (entries must be sorted and unique), longer than 20 octets, the reason is
   * unknown, or a date is invalid.
   */
  add(e: CrlEntry): void {
    const code = e.reason === undefined ? 0 : CRL_REASON_CODES[e.reason];
    if (code === undefined) throw new RangeError(`unknown CRLReason ${String(e.reason)}`);
    const rev = e.revocationDate.getTime();
    const inv = e.invalidityDate ? e.invalidityDate.getTime() : -1;
    if (Number.isNaN(rev)) throw new RangeError("invalid revocationDate");
    if (Number.isNaN(inv)) throw new RangeError("invalid invalidityDate");
    this.addEntry(e.serial, Math.floor(rev / 1000), code, inv < 0 ? -1 : Math.floor(inv / 1000));
  }

  /**
   * The allocation-free form of `add` for bulk sources: revocationDate and invalidityDate as whole
   * Unix seconds (invalidity −1 when absent, otherwise ≥ 0), reasonCode as its RFC 5280 number
   * (0 = no extension). Same errors as `add`.
   */
  addEntry(serial: Uint8Array, revocationSeconds: number, reasonCode: number, invaliditySeconds: number): void {
    if (this.finished) throw new Error("CrlEncoder: add after finish");
    const s = serial;
    let i = 0;
    while (i < s.length - 1 && s[i] === 0) i++;
    const mag = s.length - i;
    const pad = s[i] & 0x80 ? 1 : 0;
    const intLen = mag + pad;
    if (s.length === 0 || intLen > 20) throw new RangeError(`CRL entry serial must be 1–20 octets, got ${intLen}`);
    if (!Number.isInteger(reasonCode) || reasonCode < 0 || reasonCode > 10 || reasonCode === 7) throw new RangeError(`unknown CRLReason code ${reasonCode}`);
    if (!Number.isFinite(revocationSeconds) || !Number.isFinite(invaliditySeconds)) throw new RangeError("invalid revocation or invalidity time");
    const hasInvalidity = invaliditySeconds >= 0;
    const extsLen = (reasonCode !== 0 ? REASON_PREFIX.length + 1 : 0) + (hasInvalidity ? INVALIDITY_PREFIX.length + 15 : 0);
    // UTCTime for 1950–2049 (RFC 5280 §5.1.2.6 via §4.1.2.5): −631152000 = 1950-01-01, 2524608000 = 2050-01-01.
    const generalized = revocationSeconds < -631152000 || revocationSeconds >= 2524608000;
    const timeLen = generalized ? 17 : 15;
    const bodyLen = 2 + intLen + timeLen + (extsLen ? 2 + extsLen : 0);
    this.ensure(2 + bodyLen);
    const b = this.buf;
    let p = this.pos;
    b[p++] = Tag.SEQUENCE;
    b[p++] = bodyLen; // < 128: at most 2+20+17+2+12+26 = 79
    b[p++] = Tag.INTEGER;
    b[p++] = intLen;
    const serialStart = p;
    if (pad) b[p++] = 0;
    b.set(s.subarray(i), p);
    p += mag;
    if (this.prevSerialStart >= 0) {
      const order = intLen - this.prevSerialLen || b.compare(b, this.prevSerialStart, this.prevSerialStart + this.prevSerialLen, serialStart, serialStart + intLen);
      if (order <= 0) throw new RangeError(`CRL entries must be sorted by serial, strictly increasing (entry ${this.count})`);
    }
    b[p++] = generalized ? Tag.GeneralizedTime : Tag.UTCTime;
    b[p++] = generalized ? 15 : 13;
    p = writeTimeDigits(b, p, revocationSeconds, generalized);
    if (extsLen) {
      b[p++] = Tag.SEQUENCE;
      b[p++] = extsLen;
      if (reasonCode !== 0) {
        REASON_PREFIX.copy(b, p);
        p += REASON_PREFIX.length;
        b[p++] = reasonCode;
      }
      if (hasInvalidity) {
        INVALIDITY_PREFIX.copy(b, p);
        p = writeTimeDigits(b, p + INVALIDITY_PREFIX.length, invaliditySeconds, true);
      }
    }
    // Only now: a throw above leaves the encoder exactly as it was.
    this.prevSerialStart = serialStart;
    this.prevSerialLen = intLen;
    this.pos = p;
    this.count++;
  }

  /** Closes the TBSCertList: writes its headers in the reserved room and the crlExtensions after the entries. */
  finish(): EncodedTbsCertList {
    if (this.finished) throw new Error("CrlEncoder: finish called twice");
    this.finished = true;
    const entriesLen = this.pos - this.entriesStart;
    this.ensure(this.extensions.length + TAIL_ROOM);
    const b = this.buf;
    this.extensions.copy(b, this.pos);
    const tbsEnd = this.pos + this.extensions.length;
    let start = this.entriesStart;
    // revokedCertificates is absent, not empty, when nothing is revoked (RFC 5280 §5.1.2.6).
    if (this.count > 0) start = writeHeaderBefore(b, start, Tag.SEQUENCE, entriesLen);
    start -= this.prefix.length;
    this.prefix.copy(b, start);
    const tbsStart = writeHeaderBefore(b, start, Tag.SEQUENCE, tbsEnd - start);
    const tbs = b.subarray(tbsStart, tbsEnd);
    let signed = false;
    return {
      tbs,
      entries: this.count,
      certificateList: (signatureValue) => {
        if (signed) throw new Error("certificateList called twice");
        signed = true;
        const sig = tlv(Tag.BIT_STRING, Buffer.from([0]), signatureValue);
        if (this.algorithm.length + sig.length > TAIL_ROOM) throw new RangeError("signature too long");
        this.algorithm.copy(b, tbsEnd);
        sig.copy(b, tbsEnd + this.algorithm.length);
        const end = tbsEnd + this.algorithm.length + sig.length;
        const outer = writeHeaderBefore(b, tbsStart, Tag.SEQUENCE, end - tbsStart);
        return b.subarray(outer, end);
      },
    };
  }

  /** Grows the arena (×1.5, one copy) when `n` more bytes do not fit; only when expectedEntries was low. */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.pos + n + TAIL_ROOM, Math.floor(this.buf.length * 1.5)));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * Encodes a whole TBSCertList from `entries` (sync or async iterable, sorted by serial) without
 * keeping them. See CrlEncoder for errors.
 */
export async function encodeTbsCertList(
  header: CrlHeader,
  entries: Iterable<CrlEntry> | AsyncIterable<CrlEntry>,
  expectedEntries?: number,
): Promise<EncodedTbsCertList> {
  const enc = new CrlEncoder(header, expectedEntries);
  for await (const e of entries) enc.add(e);
  return enc.finish();
}

/** crlExtensions [0] EXPLICIT: AKI, cRLNumber, then issuingDistributionPoint (critical) when given — the real HPKI order. */
function crlExtensions(h: CrlHeader): Buffer {
  const exts = [extension(OID.authorityKeyIdentifier, false, h.authorityKeyIdentifier), extension(OID.cRLNumber, false, crlNumberInteger(h.crlNumber))];
  if (h.issuingDistributionPoint) exts.push(extension(OID.issuingDistributionPoint, true, issuingDistributionPointValue(h.issuingDistributionPoint)));
  return tlv(0xa0, sequence(...exts));
}

/** CRLNumber ::= INTEGER (0..MAX), at most 20 octets (RFC 5280 §5.2.3). */
function crlNumberInteger(n: bigint | number): Buffer {
  const v = BigInt(n);
  if (v < 0n) throw new RangeError("cRLNumber must not be negative");
  const hex = v.toString(16);
  const int = unsignedInteger(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
  if (int.length - 2 > 20) throw new RangeError("cRLNumber longer than 20 octets");
  return int;
}

/**
 * IssuingDistributionPoint (RFC 5280 §5.2.5): [0] distributionPoint { [0] fullName GeneralNames },
 * [1] onlyContainsUserCerts, [2] onlyContainsCACerts — IMPLICIT BOOLEANs, present only when TRUE
 * (DER omits DEFAULT FALSE).
 */
export function issuingDistributionPointValue(idp: IssuingDistributionPoint): Buffer {
  const parts: Buffer[] = [];
  const names: Buffer[] = [];
  if (idp.fullName?.directoryName) names.push(tlv(0xa4, idp.fullName.directoryName));
  if (idp.fullName?.uri) names.push(tlv(0x86, Buffer.from(idp.fullName.uri, "ascii")));
  if (names.length) parts.push(tlv(0xa0, tlv(0xa0, ...names)));
  const implicitTrue = (n: number) => {
    const b = derBoolean(true);
    b[0] = 0x80 | n;
    return b;
  };
  if (idp.onlyContainsUserCerts) parts.push(implicitTrue(1));
  if (idp.onlyContainsCACerts) parts.push(implicitTrue(2));
  return sequence(...parts);
}

/** Writes tag + minimal length ending exactly at `end`; returns the header's start offset. */
function writeHeaderBefore(b: Buffer, end: number, tag: number, length: number): number {
  const len = derLength(length);
  const start = end - 1 - len.length;
  b[start] = tag;
  len.copy(b, start + 1);
  return start;
}

/**
 * YYMMDDHHMMSSZ (or YYYYMMDDHHMMSSZ) of Unix time `seconds` in UTC, from integer arithmetic
 * (proleptic Gregorian days-to-civil), so a million entries need no Date objects.
 */
function writeTimeDigits(b: Buffer, p: number, seconds: number, fourDigitYear: boolean): number {
  const days = Math.floor(seconds / 86400);
  let rest = seconds - days * 86400;
  const z = days + 719468; // days since 0000-03-01
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (fourDigitYear) p = two(b, p, Math.floor(year / 100));
  p = two(b, p, year % 100);
  p = two(b, p, month);
  p = two(b, p, day);
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  p = two(b, p, hours);
  p = two(b, p, minutes);
  p = two(b, p, rest - minutes * 60);
  b[p++] = 0x5a; // 'Z'
  return p;
}

function two(b: Buffer, p: number, n: number): number {
  b[p] = 0x30 + Math.floor(n / 10);
  b[p + 1] = 0x30 + (n % 10);
  return p + 2;
}
