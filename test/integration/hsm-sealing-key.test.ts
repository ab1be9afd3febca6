/**
 * The sealing key on a real SoftHSM2 token: attributes as generated (sensitive, never extractable,
 * encrypt/decrypt only), AES-GCM in the HSM (round trip, wrong aad, every altered byte), the
 * sealed format, keys chosen deterministically, and a second process finding the same key.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import graphene from "graphene-pk11";
import pkcs11 from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pkcs11ErrorName } from "../../src/hsm/errors.ts";
import { Pkcs11Module } from "../../src/hsm/module.ts";
import { findObjects } from "../../src/hsm/keys.ts";
import { parseSealed, SEALED_VERSION, SealingKey } from "../../src/hsm/sealing-key.ts";
import { openTempToken, SOFTHSM2_MODULE, type TempToken } from "./helpers/softhsm.ts";

const LABEL = "test-sealing";
let t: TempToken;
let key: SealingKey;

beforeAll(async () => {
  t = openTempToken({ label: "test-sso", poolSize: 2 });
  const first = await SealingKey.ensure(t.pool, LABEL);
  expect(first.created).toBe(true);
  key = first.key;
});
afterAll(() => t?.close());

/** Generates an AES key on the token with the raw template given (for keys the policy refuses, and older keys). */
function rawAesKey(session: graphene.Session, label: string, id: Buffer, extra: pkcs11.Template): Buffer {
  return session.lib.C_GenerateKey(session.handle, { mechanism: pkcs11.CKM_AES_KEY_GEN }, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY }, { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_VALUE_LEN, value: 32 }, { type: pkcs11.CKA_TOKEN, value: true }, { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_LABEL, value: label }, { type: pkcs11.CKA_ID, value: id }, ...extra,
  ]);
}
const safe: pkcs11.Template = [
  { type: pkcs11.CKA_SENSITIVE, value: true }, { type: pkcs11.CKA_EXTRACTABLE, value: false }, { type: pkcs11.CKA_ENCRYPT, value: true },
  { type: pkcs11.CKA_DECRYPT, value: true }, { type: pkcs11.CKA_WRAP, value: false }, { type: pkcs11.CKA_UNWRAP, value: false },
  { type: pkcs11.CKA_SIGN, value: false }, { type: pkcs11.CKA_DERIVE, value: false },
];

describe("SealingKey: the key in the HSM", () => {
  it("is generated once: a second ensure and find return the same key", async () => {
    const again = await SealingKey.ensure(t.pool, LABEL);
    expect(again.created).toBe(false);
    expect(again.key.id.equals(key.id)).toBe(true);
    expect((await SealingKey.find(t.pool, LABEL))!.id.equals(key.id)).toBe(true);
    expect(await SealingKey.find(t.pool, "no-such-key")).toBeNull();
    expect(key.id).toHaveLength(16);
  });

  it("concurrent ensure calls in one process create one key", async () => {
    const all = await Promise.all(Array.from({ length: 6 }, () => SealingKey.ensure(t.pool, "concurrent")));
    expect(all.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(all.map((r) => r.key.id.toString("hex"))).size).toBe(1);
    const count = await t.pool.run((s) => findObjects(s, [{ type: pkcs11.CKA_LABEL, value: "concurrent" }]).length);
    expect(count).toBe(1);
  });

  it("is AES-256, sensitive, never extractable, encrypt/decrypt only, not modifiable", async () => {
    expect(await key.attributes()).toEqual({
      token: true, private: true, sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true, local: true,
      encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false, derive: false, modifiable: false, valueLen: 32,
    });
  });

  it("its value cannot be read, and it cannot be made extractable or copied", async () => {
    const results = await t.pool.run((session) => {
      const [h] = findObjects(session, [{ type: pkcs11.CKA_LABEL, value: LABEL }, { type: pkcs11.CKA_ID, value: key.id }]);
      const attempt = (f: () => unknown) => {
        try {
          f();
          return "succeeded";
        } catch (e) {
          return pkcs11ErrorName(e) ?? String(e);
        }
      };
      return {
        value: attempt(() => session.lib.C_GetAttributeValue(session.handle, h, [{ type: pkcs11.CKA_VALUE }])),
        extractable: attempt(() => session.lib.C_SetAttributeValue(session.handle, h, [{ type: pkcs11.CKA_EXTRACTABLE, value: true }])),
        copy: attempt(() => session.lib.C_CopyObject(session.handle, h, [{ type: pkcs11.CKA_EXTRACTABLE, value: true }])),
      };
    });
    expect(results.value).toBe("CKR_ATTRIBUTE_SENSITIVE");
    expect(results.extractable).not.toBe("succeeded");
    expect(results.copy).not.toBe("succeeded");
  });

  it("a key under the label that is not a safe sealing key is refused, not used", async () => {
    await t.pool.run((s) => rawAesKey(s, "unsafe", randomBytes(16), [{ type: pkcs11.CKA_EXTRACTABLE, value: true }, { type: pkcs11.CKA_SENSITIVE, value: false }]));
    await expect(SealingKey.find(t.pool, "unsafe")).rejects.toMatchObject({ code: "KEY_UNSAFE", message: expect.stringMatching(/not sensitive, extractable/) });
    // SoftHSM's defaults (no CKA_WRAP/CKA_SIGN given) allow wrapping and signing: refused too.
    await t.pool.run((s) => rawAesKey(s, "defaults", randomBytes(16), [{ type: pkcs11.CKA_SENSITIVE, value: true }, { type: pkcs11.CKA_EXTRACTABLE, value: false }]));
    await expect(SealingKey.ensure(t.pool, "defaults")).rejects.toMatchObject({ code: "KEY_UNSAFE", message: expect.stringContaining("wrap") });
  });

  it("of several keys under one label the oldest (smallest CKA_ID) is chosen; values under the other still open", async () => {
    const { key: newer } = await SealingKey.ensure(t.pool, "raced");
    const sealedByNewer = await newer.seal(Buffer.from("sealed before the race was noticed"), "aad:raced");
    const olderId = Buffer.alloc(16); // time 0: sorts before any key generated now
    olderId.writeUInt32BE(0xdeadbeef, 12);
    await t.pool.run((s) => rawAesKey(s, "raced", olderId, safe));
    const chosen = await SealingKey.find(t.pool, "raced");
    expect(chosen!.id.equals(olderId)).toBe(true);
    expect((await chosen!.open(sealedByNewer, "aad:raced")).toString()).toBe("sealed before the race was noticed");
  });
});

describe("SealingKey: seal and open (CKM_AES_GCM in the HSM)", () => {
  const secret = Buffer.from('{"kty":"RSA","d":"private-exponent-of-the-id-token-key"}');

  it("round-trips, and the sealed value is the documented format with no plaintext in it", async () => {
    const sealed = await key.seal(secret, "sso_signing_keys:kid-1");
    expect((await key.open(sealed, "sso_signing_keys:kid-1")).equals(secret)).toBe(true);
    const p = parseSealed(sealed);
    expect(p.version).toBe(SEALED_VERSION);
    expect(sealed[0]).toBe(1);
    expect(p.keyLabel).toBe(LABEL);
    expect(p.keyId.equals(key.id)).toBe(true);
    expect(p.iv).toHaveLength(12);
    expect(p.body).toHaveLength(secret.length + 16);
    expect(sealed.length).toBe(1 + 1 + LABEL.length + 1 + 16 + 12 + secret.length + 16);
    expect(sealed.includes(Buffer.from("private-exponent"))).toBe(false);
    // A fresh IV each time: the same plaintext seals differently.
    const again = await key.seal(secret, "sso_signing_keys:kid-1");
    expect(again.equals(sealed)).toBe(false);
    expect(parseSealed(again).iv.equals(p.iv)).toBe(false);
    // A binary aad works too.
    const one = await key.seal(Buffer.from([7]), Buffer.from([0, 1, 2]));
    expect([...(await key.open(one, Buffer.from([0, 1, 2])))]).toEqual([7]);
  });

  it("does not open with another aad: a value moved to another row is refused", async () => {
    const sealed = await key.seal(secret, "sso_secrets:cookie-key-1");
    for (const aad of ["sso_secrets:pairwise-salt", "sso_secrets:cookie-key-", "sso_secrets:cookie-key-1 ", "sso_signing_keys:cookie-key-1"]) {
      await expect(key.open(sealed, aad)).rejects.toMatchObject({ code: "SEAL_OPEN_FAILED" });
    }
    // The pool's sessions stay usable after the failed decryptions.
    expect((await key.open(sealed, "sso_secrets:cookie-key-1")).equals(secret)).toBe(true);
  });

  it("refuses a value with any single byte altered (header, IV, ciphertext or tag)", async () => {
    const sealed = await key.seal(Buffer.from("short secret"), "aad:tamper");
    const outcomes = new Map<string, number>();
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] ^= 0x01;
      const err = await key.open(bad, "aad:tamper").then(
        () => "OPENED",
        (e: { code?: string }) => e.code ?? String(e),
      );
      outcomes.set(err, (outcomes.get(err) ?? 0) + 1);
      expect(err, `byte ${i}`).not.toBe("OPENED");
      expect(["SEAL_OPEN_FAILED", "SEALED_MALFORMED", "KEY_NOT_FOUND"], `byte ${i}: ${err}`).toContain(err);
    }
    // IV, ciphertext and tag (12 + 12 + 16 bytes) all fail authentication.
    expect(outcomes.get("SEAL_OPEN_FAILED")).toBeGreaterThanOrEqual(40);
  });

  it("refuses malformed values and an empty aad", async () => {
    const sealed = await key.seal(Buffer.from("x"), "aad:format");
    await expect(key.open(sealed.subarray(0, 20), "aad:format")).rejects.toMatchObject({ code: "SEALED_MALFORMED" });
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    await expect(key.open(v2, "aad:format")).rejects.toMatchObject({ code: "SEALED_MALFORMED", message: expect.stringContaining("version 2") });
    await expect(key.open(Buffer.alloc(0), "aad:format")).rejects.toMatchObject({ code: "SEALED_MALFORMED" });
    await expect(key.seal(Buffer.from("x"), "")).rejects.toThrow(RangeError);
    await expect(key.seal(Buffer.alloc(0), "aad:format")).rejects.toThrow(RangeError);
  });

  it("opens values sealed under an older key of the token, which the value names", async () => {
    const { key: old } = await SealingKey.ensure(t.pool, "retired-sealing-key");
    const sealed = await old.seal(Buffer.from("from before the rotation"), "aad:rotation");
    expect((await key.open(sealed, "aad:rotation")).toString()).toBe("from before the rotation");
    const gone = Buffer.from(sealed);
    gone.write("x", 2); // the label now names a key the token does not have
    await expect(key.open(gone, "aad:rotation")).rejects.toMatchObject({ code: "KEY_NOT_FOUND" });
  });

  it("CK_GCM_PARAMS: SoftHSM 2.6 gives the same ciphertext for graphene's AesGcmParams (ulIvBits unset) and the v2.40 layout used here", async () => {
    const sealed = await key.seal(secret, "aad:layout");
    const p = parseSealed(sealed);
    const viaGraphene = await t.pool.run((session) => {
      const [h] = findObjects(session, [{ type: pkcs11.CKA_LABEL, value: LABEL }, { type: pkcs11.CKA_ID, value: key.id }]);
      const param = new graphene.AesGcmParams(p.iv, Buffer.concat([p.header, Buffer.from("aad:layout")]), 128).toCKI();
      expect(param.type).toBe(pkcs11.CK_PARAMS_AES_GCM);
      session.lib.C_EncryptInit(session.handle, { mechanism: pkcs11.CKM_AES_GCM, parameter: param }, h);
      return Buffer.from(session.lib.C_Encrypt(session.handle, secret, Buffer.alloc(secret.length + 16)));
    });
    expect(viaGraphene.equals(p.body)).toBe(true);
  });
});

describe("SealingKey: another process", () => {
  it("finds the same key by label, opens this process's value, and seals one this process opens", async () => {
    const sealed = await key.seal(Buffer.from("from the parent"), "aad:parent");
    const child = path.join(import.meta.dirname, "helpers/sealing-child.ts");
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ["--import", "tsx", child, t.label, t.pin, LABEL, sealed.toString("base64"), "aad:parent", "from the child", "aad:child"], {
        env: { ...process.env, SOFTHSM2_CONF: t.hsm.conf },
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      p.on("error", reject);
      p.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`child exited ${code}: ${stderr}`))));
    });
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as { keyId: string; opened: string; sealed: string };
    expect(r.keyId).toBe(key.id.toString("hex"));
    expect(r.opened).toBe("from the parent");
    expect((await key.open(Buffer.from(r.sealed, "base64"), "aad:child")).toString()).toBe("from the child");
  });
});

describe("Pkcs11Module.release (the SSO role's close)", () => {
  it("finalises the module only when its last holder releases it", async () => {
    const again = Pkcs11Module.open(SOFTHSM2_MODULE); // a second holder, as a role sharing the process
    expect(again).toBe(t.mod);
    const generation = t.mod.generation;
    await again.release();
    expect(t.mod.generation).toBe(generation);
    expect((await key.open(await key.seal(Buffer.from("still open"), "aad:release"), "aad:release")).toString()).toBe("still open");
    await t.mod.release(); // the last holder (openTempToken's open)
    expect(t.mod.generation).toBe(generation + 1);
    expect(t.mod.listTokenLabels.bind(t.mod)).toThrow(/CKR_CRYPTOKI_NOT_INITIALIZED/);
  });
});
