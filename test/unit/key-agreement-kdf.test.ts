/**
 * The two symmetric steps of an ECDH RecipientInfo (RFC 5753 §3.1): the ANSI X9.63 KDF
 * (src/pki/x963-kdf.ts) and AES key wrap (src/pki/aes-key-wrap.ts), against published vectors.
 */
import { describe, expect, it } from "vitest";
import { aesKeyUnwrap, aesKeyWrap } from "../../src/pki/aes-key-wrap.ts";
import { x963Kdf } from "../../src/pki/x963-kdf.ts";

const h = (s: string) => Buffer.from(s, "hex");

describe("x963Kdf (SEC 1 v2 §3.6.1)", () => {
  // NIST CAVS 12.0 ANS X9.63-2001 KDF component test vectors (SP 800-135), SHA-256; OpenSSL's X963KDF gives the same.
  it("SHA-256, 192-bit Z, no SharedInfo, 128-bit key", () => {
    expect(x963Kdf("sha256", h("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08"), new Uint8Array(0), 16).toString("hex")).toBe("443024c3dae66b95e6f5670601558f71");
  });
  it("SHA-256, 192-bit Z, 128-bit SharedInfo, 1024-bit key (four counter blocks)", () => {
    const key = x963Kdf("sha256", h("22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d"), h("75eef81aa3041e33b80971203d2c0c52"), 128);
    expect(key.toString("hex")).toBe(
      "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d0097111485500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21",
    );
  });
  it("refuses a zero or fractional key length", () => {
    expect(() => x963Kdf("sha256", h("00"), h(""), 0)).toThrow(RangeError);
    expect(() => x963Kdf("sha256", h("00"), h(""), 1.5)).toThrow(RangeError);
  });
});

describe("AES key wrap (RFC 3394)", () => {
  // RFC 3394 §4.6: wrap 256 bits of key data with a 256-bit KEK.
  const kek = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const key = h("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
  const wrapped = "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21";
  it("wraps the §4.6 vector and unwraps it back", () => {
    expect(aesKeyWrap(kek, key).toString("hex")).toBe(wrapped);
    expect(aesKeyUnwrap(kek, h(wrapped))?.toString("hex")).toBe(key.toString("hex"));
  });
  it("unwrap reports a failed integrity check as undefined (altered octet, wrong KEK)", () => {
    const altered = h(wrapped);
    altered[5] ^= 1;
    expect(aesKeyUnwrap(kek, altered)).toBeUndefined();
    expect(aesKeyUnwrap(Buffer.alloc(32, 7), h(wrapped))).toBeUndefined();
  });
  it("refuses a KEK that is not 128, 192 or 256 bits", () => {
    expect(() => aesKeyWrap(Buffer.alloc(20), key)).toThrow(RangeError);
  });
});
