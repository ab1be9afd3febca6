/**
 * The signer of oidc-provider's cookies (`cookies.keys`): the interface of the `cookies` package's
 * `keys` (sign / verify / index, as Keygrip) with Keygrip's default construction — HMAC-SHA1 over
 * the cookie's name=value, base64url without padding — so cookies signed before keep verifying.
 * The difference is the comparison: node's timingSafeEqual on the decoded MACs, where Keygrip's
 * tsscmp draws 32 random bytes and computes two more HMACs for every compare (≈ 4 % of the SSO
 * process's CPU per login in the issue 14 benchmark profile).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Keygrip-compatible signer over `keys` (the first one signs; any verifies). */
export class CookieKeys {
  private readonly keys: readonly string[];

  /** @throws when no key is given. */
  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error("cookie signing needs at least one key");
    this.keys = [...keys];
  }

  /** The MAC of `data` under the first key, base64url (Keygrip's `sign`). */
  sign(data: string): string {
    return mac(data, this.keys[0]).toString("base64url");
  }

  /** Whether `digest` is the MAC of `data` under one of the keys. */
  verify(data: string, digest: string): boolean {
    return this.index(data, digest) > -1;
  }

  /** The position of the key whose MAC of `data` is `digest`, or -1 (Keygrip's `index`). */
  index(data: string, digest: string): number {
    if (typeof digest !== "string") return -1;
    const given = Buffer.from(digest, "base64url");
    // Keygrip's text is canonical base64url: anything that does not re-encode the same is refused.
    if (given.toString("base64url") !== digest) return -1;
    for (let i = 0; i < this.keys.length; i++) {
      const expected = mac(data, this.keys[i]);
      if (given.length === expected.length && timingSafeEqual(given, expected)) return i;
    }
    return -1;
  }
}

function mac(data: string, key: string): Buffer {
  return createHmac("sha1", key).update(data).digest();
}
