/**
 * Test helpers for a throw-away SoftHSM2 instance. One instance per test file: SoftHSM reads
 * SOFTHSM2_CONF in C_Initialize and a PKCS#11 library is initialised once per process (vitest runs
 * each file in its own fork, see vitest.config.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SOFTHSM2_MODULE } from "../../../src/config.ts";
import { Pkcs11Module } from "../../../src/hsm/module.ts";
import { SessionPool } from "../../../src/hsm/pool.ts";
import { renderSoftHsmConfig } from "../../../src/hsm/softhsm.ts";

export { SOFTHSM2_MODULE };

/** A temporary SoftHSM2 configuration: `dir` holds `conf` and the empty `tokenDir`. */
export interface TempSoftHsm {
  dir: string;
  conf: string;
  tokenDir: string;
  /** Removes `dir`. Does not finalise the module: close pools/modules first. */
  cleanup(): void;
}

/**
 * Creates a temp dir with a SoftHSM2 config from hsm/softhsm2.conf.template and an empty token
 * directory, and (unless `setEnv: false`) sets process.env.SOFTHSM2_CONF to it — call before
 * Pkcs11Module.open.
 */
export function makeTempSoftHsm(opts: { setEnv?: boolean } = {}): TempSoftHsm {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-softhsm-"));
  const tokenDir = path.join(dir, "tokens");
  fs.mkdirSync(tokenDir, { mode: 0o700 });
  const conf = path.join(dir, "softhsm2.conf");
  fs.writeFileSync(conf, renderSoftHsmConfig(tokenDir), { mode: 0o600 });
  if (opts.setEnv !== false) process.env.SOFTHSM2_CONF = conf;
  return { dir, conf, tokenDir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A temp SoftHSM with one initialised token and a session pool on it. */
export interface TempToken {
  hsm: TempSoftHsm;
  mod: Pkcs11Module;
  pool: SessionPool;
  label: string;
  /** User PIN (test value). */
  pin: string;
  soPin: string;
  /** Closes the pool, finalises the module, removes the directory. */
  close(): void;
}

/**
 * {@link makeTempSoftHsm} + Pkcs11Module.open(SoftHSM2) + a token `label` (default "test-ca")
 * initialised with fixed test PINs + a SessionPool (`poolSize`, default the pool's default).
 */
export function openTempToken(opts: { label?: string; poolSize?: number } = {}): TempToken {
  const hsm = makeTempSoftHsm();
  const mod = Pkcs11Module.open(SOFTHSM2_MODULE);
  const label = opts.label ?? "test-ca";
  const pin = "123456";
  const soPin = "so-123456";
  mod.initToken(label, soPin, pin);
  const pool = new SessionPool(mod, { tokenLabel: label, pin, size: opts.poolSize });
  return {
    hsm, mod, pool, label, pin, soPin,
    close() {
      pool.close();
      mod.close();
      hsm.cleanup();
    },
  };
}
