/**
 * The relying party's local revocation index (RFC 5280 §6.3 with CRLs as the source): per issuing
 * CA, the revoked serial numbers as a sorted BigUint64Array of 64-bit serial digests, looked up by
 * binary search. 1,000,000 revoked serials take 8 MB (a Set of hex strings takes ~10× that; the
 * `sso` bench measures both). A digest collision could only make a good certificate look revoked
 * (probability ≈ n / 2^64 per lookup, 5·10⁻¹⁴ at a million entries): the index never errs towards
 * accepting. Each issuer's list carries the time it is good until (a CRL's nextUpdate, or the
 * database refresh time plus the allowed staleness); past it, or with no list at all, a lookup
 * answers "unknown" and the verifier fails closed.
 * Pure: no I/O; loading from CRLs or the database is the caller's job (src/status/certificate-verifier.ts).
 */
import { createHash } from "node:crypto";

/** The answer of a lookup: "unknown" means no current list for the issuer (fail closed). */
export type RevocationStatus = "good" | "revoked" | "unknown";

/**
 * Where path validation asks for the status of one certificate: the RevocationIndex, or a
 * composite of it and verified OCSP answers (src/status/ocsp-fallback.ts). `issuerKeyId` is the
 * issuer's issuerKeyId (hex SHA-256 of its SubjectPublicKeyInfo), `serial` the certificate's serial
 * magnitude, `at` the validation instant. Synchronous: the hot path never awaits.
 */
export interface RevocationSource {
  status(issuerKeyId: string, serial: Uint8Array, at: Date): RevocationStatus;
}

/**
 * 64-bit digest of a serial magnitude: the first 8 octets of SHA-256 over the magnitude without
 * leading zero octets, so 0x00FF and 0xFF are the same serial (RFC 5280 §4.1.2.2 INTEGER value).
 */
export function serialDigest(serial: Uint8Array): bigint {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  const h = createHash("sha256").update(serial.subarray(i)).digest();
  return h.readBigUInt64BE(0);
}

/** One issuer's revoked set and its freshness window. */
export interface IssuerRevocations {
  /** Sorted ascending digests (serialDigest); duplicates allowed. */
  digests: BigUint64Array;
  /** Start of the list's validity (CRL thisUpdate, or when the database was read). */
  thisUpdate: Date;
  /** The list may be used until this instant (CRL nextUpdate, or read time + allowed staleness). */
  goodUntil: Date;
  /** Where it came from, for logs and errors: "crl:<url or file>" or "database". */
  source: string;
}

/** Collects digests of one issuer's revoked serials, then `finish` sorts them into an IssuerRevocations. */
export class DigestListBuilder {
  private buf: BigUint64Array;
  private n = 0;
  constructor(expected = 1024) {
    this.buf = new BigUint64Array(Math.max(16, expected));
  }
  /** Adds one serial magnitude. */
  add(serial: Uint8Array): void {
    this.addDigest(serialDigest(serial));
  }
  /** Adds a digest computed elsewhere. */
  addDigest(d: bigint): void {
    if (this.n === this.buf.length) {
      const grown = new BigUint64Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.n++] = d;
  }
  /** Entries added so far. */
  get size(): number {
    return this.n;
  }
  /** Sorted copy trimmed to size (TypedArray sort: numeric, native). */
  finish(): BigUint64Array {
    return this.buf.slice(0, this.n).sort();
  }
}

/** Merges sorted `a` with unsorted extra digests into a new sorted array. */
export function mergeDigests(a: BigUint64Array, extra: BigUint64Array): BigUint64Array {
  if (extra.length === 0) return a;
  const out = new BigUint64Array(a.length + extra.length);
  out.set(a);
  out.set(extra, a.length);
  return out.sort();
}

/** Binary search of a sorted BigUint64Array. */
export function containsDigest(sorted: BigUint64Array, d: bigint): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid];
    if (v === d) return true;
    if (v < d) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/**
 * Revocation lists per issuer key id (see issuerKeyId in path-validation.ts) and per source: an
 * issuer may have several (our database read, and its CRL or ARL from the repository). A lookup
 * uses the newest list that is current at the instant asked, so a stale database read does not
 * hide a CRL that is still within its nextUpdate (RFC 5280 §6.3.3: any current CRL will do).
 */
export class RevocationIndex implements RevocationSource {
  private readonly lists = new Map<string, Map<string, IssuerRevocations>>();

  /** Installs (replaces) the list of the issuer `issuerKeyId` from `list.source`. */
  set(issuerKeyId: string, list: IssuerRevocations): void {
    let bySource = this.lists.get(issuerKeyId);
    if (!bySource) this.lists.set(issuerKeyId, (bySource = new Map()));
    bySource.set(list.source, list);
  }

  /** The list of an issuer from `source` ("database", a CRL URL or file), if any. */
  get(issuerKeyId: string, source: string): IssuerRevocations | undefined {
    return this.lists.get(issuerKeyId)?.get(source);
  }

  /**
   * Status of `serial` issued by `issuerKeyId` at instant `at`, from the issuer's newest list
   * (latest thisUpdate) current at `at`: "unknown" when no list has `at` inside [thisUpdate,
   * goodUntil] (RFC 5280 §6.3.3 (a): a CRL past nextUpdate is not current), else "revoked" or "good".
   */
  status(issuerKeyId: string, serial: Uint8Array, at: Date): RevocationStatus {
    const bySource = this.lists.get(issuerKeyId);
    if (!bySource) return "unknown";
    const t = at.getTime();
    let best: IssuerRevocations | undefined;
    for (const l of bySource.values()) {
      if (t > l.goodUntil.getTime() || t < l.thisUpdate.getTime()) continue;
      if (!best || l.thisUpdate.getTime() > best.thisUpdate.getTime()) best = l;
    }
    if (!best) return "unknown";
    return containsDigest(best.digests, serialDigest(serial)) ? "revoked" : "good";
  }

  /** Total digests held and their bytes (8 per entry). */
  footprint(): { issuers: number; entries: number; bytes: number } {
    let entries = 0;
    for (const bySource of this.lists.values()) for (const l of bySource.values()) entries += l.digests.length;
    return { issuers: this.lists.size, entries, bytes: entries * 8 };
  }
}
