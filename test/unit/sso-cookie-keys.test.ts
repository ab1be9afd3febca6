/**
 * The SSO cookie signer (src/sso/cookie-keys.ts) against Keygrip itself (the package koa's cookies
 * use by default): the same signatures, so cookies signed before the change keep verifying, and
 * the same answers to verify/index, including for tampered, truncated and non-canonical digests.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { CookieKeys } from "../../src/sso/cookie-keys.ts";

type Grip = { sign(d: string): string; verify(d: string, s: string): boolean; index(d: string, s: string): number };
const Keygrip = createRequire(import.meta.url)("keygrip") as (keys: string[]) => Grip;

describe("CookieKeys (Keygrip-compatible cookie signatures)", () => {
  const data = "_session=Qx3k9-ZlT0a2b";
  const keys = ["new-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "old-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"];

  it("signs exactly as Keygrip does, with the first key", () => {
    expect(new CookieKeys(keys).sign(data)).toBe(Keygrip(keys).sign(data));
    expect(new CookieKeys(["日本語の鍵"]).sign("名前=値")).toBe(Keygrip(["日本語の鍵"]).sign("名前=値"));
  });

  it("finds the key a signature was made with, as Keygrip's index", () => {
    const ours = new CookieKeys(keys);
    const byOld = Keygrip([keys[1]]).sign(data);
    expect(ours.index(data, byOld)).toBe(1);
    expect(ours.index(data, ours.sign(data))).toBe(0);
    expect(ours.verify(data, byOld)).toBe(true);
  });

  it("refuses what Keygrip refuses: another value, a changed, shortened, padded or empty digest", () => {
    const ours = new CookieKeys(keys);
    const grip = Keygrip(keys);
    const good = ours.sign(data);
    const flipped = (good[0] === "A" ? "B" : "A") + good.slice(1);
    for (const [d, digest] of [["_session=other", good], [data, flipped], [data, good.slice(0, -1)], [data, `${good}=`], [data, ""], [data, good.replace(/-/g, "+").replace(/_/g, "/")]] as const) {
      expect(ours.index(d, digest), `${d} ${digest}`).toBe(grip.index(d, digest));
      expect(ours.verify(d, digest)).toBe(false);
    }
    expect(ours.verify(data, undefined as unknown as string)).toBe(false);
  });

  it("needs a key", () => {
    expect(() => new CookieKeys([])).toThrow(/at least one key/);
  });
});
