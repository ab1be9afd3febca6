/** CaKeyStore.signDigest: a precomputed SHA-256 signed in the HSM equals signing the message itself. */
import { createHash, createPublicKey, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaKeyStore, type HsmKeyRef } from "../../src/hsm/ca-keys.ts";
import { openTempToken, type TempToken } from "./helpers/softhsm.ts";

let t: TempToken;
let store: CaKeyStore;
let rsa: HsmKeyRef;
let ec: HsmKeyRef;
const message = Buffer.alloc(300_000, 0x5a);
const digest = createHash("sha256").update(message).digest();
const verifyWith = (key: HsmKeyRef, sig: Buffer) => verify("sha256", message, createPublicKey({ key: key.spki, format: "der", type: "spki" }), sig);

beforeAll(async () => {
  t = openTempToken();
  store = new CaKeyStore(t.pool);
  rsa = await store.generateKeyPair("digest-rsa", "RSA-2048");
  ec = await store.generateKeyPair("digest-ec", "P-256");
});
afterAll(() => t?.close());

describe("CaKeyStore.signDigest", () => {
  it("RSA: CKM_RSA_PKCS over the DigestInfo gives the very bytes of CKM_SHA256_RSA_PKCS", async () => {
    const viaDigest = await store.signDigest(rsa, digest);
    expect(viaDigest.equals(await store.sign(rsa, message))).toBe(true);
    expect(verifyWith(rsa, viaDigest)).toBe(true);
  });

  it("P-256: a DER ECDSA signature over the message that node:crypto verifies", async () => {
    expect(verifyWith(ec, await store.signDigest(ec, digest))).toBe(true);
  });

  it("refuses a digest that is not 32 bytes", async () => {
    await expect(store.signDigest(rsa, digest.subarray(0, 20))).rejects.toThrow(/32 bytes/);
  });
});
