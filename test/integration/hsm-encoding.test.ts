/** SPKI and ECDSA encodings against node:crypto and asn1js (no HSM needed). */
import { generateKeyPairSync, sign, verify } from "node:crypto";
import * as asn1js from "asn1js";
import { describe, expect, it } from "vitest";
import { ecdsaRawToDer, p256Spki, rsaSpki } from "../../src/hsm/spki.ts";

/** Reference encoding through asn1js. */
function refDer(raw: Uint8Array): Buffer {
  const h = raw.length / 2;
  const int = (b: Uint8Array) => asn1js.Integer.fromBigInt(BigInt("0x" + Buffer.from(b).toString("hex")));
  return Buffer.from(new asn1js.Sequence({ value: [int(raw.subarray(0, h)), int(raw.subarray(h))] }).toBER(false));
}

describe("ecdsaRawToDer", () => {
  it.each([
    ["high bit set", Buffer.concat([Buffer.alloc(32, 0x80), Buffer.alloc(32, 0xff)])],
    ["leading zeros", Buffer.concat([Buffer.from([0, 0, 1]), Buffer.alloc(29, 7), Buffer.from([0]), Buffer.alloc(31, 0x90)])],
    ["all zero", Buffer.alloc(64)],
    ["P-521 size", Buffer.alloc(132, 0xaa)],
  ])("matches asn1js for %s", (_name, raw) => {
    expect(ecdsaRawToDer(raw).equals(refDer(raw))).toBe(true);
  });

  it("turns node's IEEE P1363 signatures into verifiable DER", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    for (let i = 0; i < 200; i++) {
      const msg = Buffer.from(`m${i}`);
      const raw = sign("sha256", msg, { key: privateKey, dsaEncoding: "ieee-p1363" });
      expect(verify("sha256", msg, publicKey, ecdsaRawToDer(raw))).toBe(true);
    }
  });

  it("rejects odd lengths", () => {
    expect(() => ecdsaRawToDer(Buffer.alloc(63))).toThrow(/length/);
  });
});

describe("SPKI from PKCS#11 attributes", () => {
  it("RSA modulus/exponent and EC point round-trip to node's SPKI", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    const jwk = rsa.export({ format: "jwk" });
    const spki = rsaSpki(Buffer.from(jwk.n!, "base64url"), Buffer.from(jwk.e!, "base64url"));
    expect(spki.equals(rsa.export({ type: "spki", format: "der" }))).toBe(true);

    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    const e = ec.export({ format: "jwk" });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(e.x!, "base64url"), Buffer.from(e.y!, "base64url")]);
    const wrapped = Buffer.concat([Buffer.from([0x04, 65]), point]); // CKA_EC_POINT as v2.40 defines it
    expect(p256Spki(wrapped).equals(ec.export({ type: "spki", format: "der" }))).toBe(true);
    expect(p256Spki(point).equals(ec.export({ type: "spki", format: "der" }))).toBe(true);
  });
});
