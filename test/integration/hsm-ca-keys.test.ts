import fs from "node:fs";
import path from "node:path";
import { createPublicKey, verify } from "node:crypto";
import pkcs11 from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { CaKeyStore, type HsmKeyRef } from "../../src/hsm/ca-keys.ts";
import { HsmError, pkcs11ErrorName } from "../../src/hsm/errors.ts";
import { findKeyPair } from "../../src/hsm/keys.ts";
import { SessionPool } from "../../src/hsm/pool.ts";
import { ensureCaToken, ensureSoftHsmConfig } from "../../src/hsm/softhsm.ts";
import { openTempToken, type TempToken } from "./helpers/softhsm.ts";

let t: TempToken;
let store: CaKeyStore;
let rsa: HsmKeyRef;
let ec: HsmKeyRef;

const tbs = Buffer.from("30820100" + "ab".repeat(256), "hex");
const verifyWith = (key: HsmKeyRef, data: Uint8Array, sig: Buffer) =>
  verify("sha256", data, createPublicKey({ key: key.spki, format: "der", type: "spki" }), sig);

beforeAll(async () => {
  t = openTempToken();
  store = new CaKeyStore(t.pool);
  rsa = await store.generateKeyPair("ca-rsa", "RSA-2048");
  ec = await store.generateKeyPair("ca-ec", "P-256");
});
afterAll(() => t?.close());

describe("CaKeyStore key generation", () => {
  it("returns label, 20-byte id and a parsable SPKI", () => {
    expect(rsa.id).toHaveLength(20);
    expect(ec.id).toHaveLength(20);
    const rk = createPublicKey({ key: rsa.spki, format: "der", type: "spki" });
    expect(rk.asymmetricKeyType).toBe("rsa");
    expect(rk.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    const ek = createPublicKey({ key: ec.spki, format: "der", type: "spki" });
    expect(ek.asymmetricKeyDetails).toMatchObject({ namedCurve: "prime256v1" });
  });

  it.each([["RSA", () => rsa], ["EC", () => ec]])("%s private key is sensitive and never extractable", async (_n, key) => {
    expect(await store.keyAttributes(key())).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
  });

  it.each([["RSA", () => rsa, pkcs11.CKA_PRIVATE_EXPONENT], ["EC", () => ec, pkcs11.CKA_VALUE]])(
    "%s private value cannot be read, nor made extractable",
    async (_n, key, valueAttr) => {
      await t.pool.run((s) => {
        const priv = findKeyPair(s, { id: key().id })!.privateKey;
        let readErr: unknown;
        try {
          s.lib.C_GetAttributeValue(s.handle, priv, [{ type: valueAttr }]);
        } catch (e) {
          readErr = e;
        }
        expect(pkcs11ErrorName(readErr)).toBe("CKR_ATTRIBUTE_SENSITIVE");
        expect(() => s.lib.C_SetAttributeValue(s.handle, priv, [{ type: pkcs11.CKA_EXTRACTABLE, value: true }])).toThrow(/CKR_ATTRIBUTE_READ_ONLY/);
        // Sign-only: the template turned decryption and unwrapping off.
        const [dec, unwrap] = s.lib.C_GetAttributeValue(s.handle, priv, [{ type: pkcs11.CKA_DECRYPT }, { type: pkcs11.CKA_UNWRAP }]);
        expect([dec.value[0], unwrap.value[0]]).toEqual([0, 0]);
      });
    },
  );

  it("refuses a duplicate label and leaves the original key alone", async () => {
    await expect(store.generateKeyPair("ca-rsa", "P-256")).rejects.toMatchObject({ name: "HsmError", code: "KEY_EXISTS" });
    // Concurrent attempts for one new label: exactly one wins.
    const results = await Promise.allSettled([store.generateKeyPair("ca-race", "P-256"), store.generateKeyPair("ca-race", "P-256")]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const found = await store.findKey("ca-rsa");
    expect(found?.id.equals(rsa.id)).toBe(true);
    expect(found?.spki.equals(rsa.spki)).toBe(true);
  });

  it("findKey reads the same SPKI back and returns null for unknown labels", async () => {
    const found = await store.findKey("ca-ec");
    expect(found).toMatchObject({ label: "ca-ec", algorithm: "P-256" });
    expect(found!.spki.equals(ec.spki)).toBe(true);
    expect(found!.id.equals(ec.id)).toBe(true);
    expect(await store.findKey("no-such-key")).toBeNull();
  });
});

describe("CaKeyStore.sign", () => {
  it("RSA signatures verify as sha256WithRSAEncryption", async () => {
    const sig = await store.sign(rsa, tbs);
    expect(sig).toHaveLength(256);
    expect(verifyWith(rsa, tbs, sig)).toBe(true);
    expect(verifyWith(rsa, Buffer.from("other"), sig)).toBe(false);
  });

  it("ECDSA signatures are DER Ecdsa-Sig-Value and verify", async () => {
    const sig = await store.sign(ec, tbs);
    expect(sig[0]).toBe(0x30);
    expect(verifyWith(ec, tbs, sig)).toBe(true);
  });

  it("200 parallel signs across the pool all verify", async () => {
    const jobs = Array.from({ length: 200 }, (_, i) => {
      const key = i % 2 ? rsa : ec;
      const data = Buffer.from(`tbs-${i}`);
      return store.sign(key, data).then((sig) => verifyWith(key, data, sig));
    });
    const ok = await Promise.all(jobs);
    expect(ok.every(Boolean)).toBe(true);
    expect(t.pool.stats.opened).toBeLessThanOrEqual(t.pool.size);
  });

  it("an unknown key gives KEY_NOT_FOUND", async () => {
    const ghost = { ...rsa, label: "ghost" };
    await expect(store.sign(ghost, tbs)).rejects.toMatchObject({ code: "KEY_NOT_FOUND" });
  });
});

describe("pool login and CA token bootstrap", () => {
  it("a wrong PIN is a clear, non-retried error", async () => {
    const bad = new SessionPool(t.mod, { tokenLabel: t.label, pin: "000000", size: 1 });
    // Log everything out first: a logged-in token would accept any 2nd login as "already logged in".
    t.pool.close();
    const err = await bad.run(() => 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect((err as HsmError).code).toBe("CKR_PIN_INCORRECT");
    expect((err as Error).message).toContain("PIN incorrect (CKR_PIN_INCORRECT)");
    expect((err as Error).message).not.toContain("000000");
    bad.close();
  });

  it("an unknown token label gives TOKEN_NOT_FOUND", async () => {
    const p = new SessionPool(t.mod, { tokenLabel: "nope", pin: t.pin, size: 1 });
    await expect(p.run(() => 1)).rejects.toMatchObject({ code: "TOKEN_NOT_FOUND", message: expect.stringContaining('"nope"') });
    p.close();
  });

  it("ensureCaToken creates the token with a 0600 PIN file once, then reads the file", () => {
    const cfg = { ...loadConfig({ HPKI_HOME: path.join(t.hsm.dir, "home") }), caTokenLabel: "boot-ca" };
    const first = ensureCaToken(t.mod, cfg);
    expect(first.created).toBe(true);
    expect(fs.statSync(cfg.caTokenPinFile).mode & 0o777).toBe(0o600);
    const second = ensureCaToken(t.mod, cfg);
    expect(second).toEqual({ pin: first.pin, created: false });
    expect(ensureCaToken(t.mod, { ...cfg, caTokenPinEnv: "from-env" })).toEqual({ pin: "from-env", created: false });
    fs.chmodSync(cfg.caTokenPinFile, 0o644);
    expect(() => ensureCaToken(t.mod, cfg)).toThrow(expect.objectContaining({ code: "PIN_FILE_INSECURE" }));
    expect(() => ensureCaToken(t.mod, { ...cfg, embeddedHsm: false, caTokenLabel: "absent" })).toThrow(
      expect.objectContaining({ code: "TOKEN_NOT_FOUND" }),
    );
  });

  it("ensureSoftHsmConfig writes the config once, sets SOFTHSM2_CONF, and is a no-op for an external HSM", () => {
    const saved = process.env.SOFTHSM2_CONF;
    try {
      const cfg = loadConfig({ HPKI_HOME: path.join(t.hsm.dir, "home2") });
      ensureSoftHsmConfig(cfg);
      expect(process.env.SOFTHSM2_CONF).toBe(cfg.softhsmConf);
      const text = fs.readFileSync(cfg.softhsmConf, "utf8");
      expect(text).toContain(`directories.tokendir = ${cfg.softhsmTokenDir}`);
      expect(text).toMatch(/objectstore\.backend = file/);
      expect(text).toMatch(/log\.level = ERROR/);
      expect(fs.statSync(cfg.softhsmTokenDir).isDirectory()).toBe(true);
      fs.appendFileSync(cfg.softhsmConf, "# operator edit\n");
      ensureSoftHsmConfig(cfg);
      expect(fs.readFileSync(cfg.softhsmConf, "utf8")).toContain("# operator edit");

      const ext = loadConfig({ HPKI_HOME: path.join(t.hsm.dir, "home3"), PKCS11_MODULE: "/opt/hsm/lib.so" });
      process.env.SOFTHSM2_CONF = "unchanged";
      ensureSoftHsmConfig(ext);
      expect(process.env.SOFTHSM2_CONF).toBe("unchanged");
      expect(fs.existsSync(ext.softhsmConf)).toBe(false);
    } finally {
      process.env.SOFTHSM2_CONF = saved;
    }
  });
});
