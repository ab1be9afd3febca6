import { describe, expect, it } from "vitest";
import { unsignedInteger } from "../../src/pki/der.ts";
import { newSerialNumber, serialHex } from "../../src/pki/serial.ts";

describe("newSerialNumber", () => {
  const samples = Array.from({ length: 20000 }, () => newSerialNumber());

  it("is 16 octets, positive, with no leading zero octet, so the DER INTEGER has 16 content octets", () => {
    for (const s of samples) {
      expect(s.length).toBe(16);
      expect(s[0] & 0x80).toBe(0);
      expect(s[0]).not.toBe(0);
      const der = unsignedInteger(s);
      expect(der.length).toBe(18); // tag, length, 16 octets ≤ 20 (RFC 5280 §4.1.2.2)
    }
  });

  it("does not repeat and looks uniformly random (each bit set about half the time)", () => {
    expect(new Set(samples.map((s) => s.toString("hex"))).size).toBe(samples.length);
    // bit 7 of octet 0 is forced 0; every other bit (except the nonzero-first-octet bias, < 1%) ≈ 50 %
    for (let bit = 1; bit < 128; bit++) {
      const ones = samples.filter((s) => s[bit >> 3] & (0x80 >> (bit & 7))).length / samples.length;
      expect(ones).toBeGreaterThan(0.47);
      expect(ones).toBeLessThan(0.53);
    }
  });
});

describe("serialHex", () => {
  it("is uppercase hex without separators", () => {
    expect(serialHex(Buffer.from([0x01, 0x5e]))).toBe("015E");
    expect(serialHex(new Uint8Array([0xab, 0xcd]).subarray(1))).toBe("CD");
  });
});
