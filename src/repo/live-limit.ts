/**
 * Per-source rate limit of live OCSP signing (issue 10 §9, issue 11 §6): a token bucket per
 * source address, refilled at `perSecond`, holding at most `burst`. Live signatures cost an HSM
 * operation each (≈ 1,600/s RSA-2048 on SoftHSM, 2 cores); pre-signed answers cost none and are
 * never limited. Over the limit the responder falls back (ocsp-responder.ts): a nonce-bearing
 * request for a certificate with a current pre-signed response gets that response without the
 * nonce (RFC 8954 §3 lets a responder ignore the nonce), anything else tryLater (RFC 6960 §4.2.1).
 *
 * Sources are IPv4 addresses, IPv6 /64 prefixes (one host usually holds a whole /64).
 * Memory: idle buckets (full again) are swept once they exceed `maxSources`.
 */
import net from "node:net";

export interface LiveLimitOptions {
  /** Sustained live signatures per second per source. */
  perSecond: number;
  /** Live signatures a source may take at once. */
  burst: number;
  /** Buckets kept before idle ones are swept; default 100,000. */
  maxSources?: number;
  nowMs?: () => number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export class LiveSigningLimit {
  private readonly buckets = new Map<string, Bucket>();
  private readonly nowMs: () => number;

  constructor(private readonly opts: LiveLimitOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** Takes one live signature for `address` (the socket's remoteAddress); false when over the limit. */
  take(address: string | undefined): boolean {
    const key = sourceKey(address);
    const now = this.nowMs();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= (this.opts.maxSources ?? 100_000)) this.sweep(now);
      b = { tokens: this.opts.burst, atMs: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.atMs) / 1000) * this.opts.perSecond);
      b.atMs = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Drops buckets that have refilled completely (their sources are idle). */
  private sweep(now: number): void {
    const fullAfterMs = (this.opts.burst / this.opts.perSecond) * 1000;
    for (const [k, b] of this.buckets) if (now - b.atMs >= fullAfterMs) this.buckets.delete(k);
  }
}

/** The rate-limit key of an address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function sourceKey(address: string | undefined): string {
  if (!address) return "?";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!net.isIPv6(address)) return address;
  const [head, tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail !== undefined && tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":") + "::/64";
}
