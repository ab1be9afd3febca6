/** publicKeyFromSpki (src/pki/public-key.ts): the same key as node's SPKI import, by a faster route for RSA. */
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { publicKeyFromSpki } from "../../src/pki/public-key.ts";

const spkiOf = (k: ReturnType<typeof generateKeyPairSync>["publicKey"]) => k.export({ type: "spki", format: "der" });

describe("publicKeyFromSpki", () => {
  it("imports an rsaEncryption SPKI as the same RSA key, which verifies the holder's signatures", () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const key = publicKeyFromSpki(spkiOf(publicKey));
    expect(key.asymmetricKeyType).toBe("rsa");
    expect(key.export({ format: "jwk" })).toEqual(publicKey.export({ format: "jwk" }));
    const sig = sign("sha256", Buffer.from("チャレンジ"), privateKey);
    expect(verify("sha256", Buffer.from("チャレンジ"), key, sig)).toBe(true);
  });

  it("imports EC and RSA-PSS keys through the SPKI import", () => {
    for (const k of [generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey, generateKeyPairSync("rsa-pss", { modulusLength: 2048 }).publicKey]) {
      const key = publicKeyFromSpki(spkiOf(k));
      expect(key.asymmetricKeyType).toBe(k.asymmetricKeyType);
      expect(key.equals(createPublicKey({ key: spkiOf(k), format: "der", type: "spki" }))).toBe(true);
    }
  });

  it("throws on a damaged key as node's import does", () => {
    const der = Buffer.from(spkiOf(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey));
    expect(() => publicKeyFromSpki(der.subarray(0, der.length - 10))).toThrow();
    expect(() => publicKeyFromSpki(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]))).toThrow();
  });
});
