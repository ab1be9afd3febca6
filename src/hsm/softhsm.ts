/**
 * Embedded default HSM: SoftHSM2 with its configuration and tokens under $HPKI_HOME/hsm, and the CA
 * token created on first use. Skipped entirely when PKCS11_MODULE names a real HSM.
 */
import { randomBytes, randomInt } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../config.ts";
import { HsmError } from "./errors.ts";
import type { Pkcs11Module } from "./module.ts";

const TEMPLATE = fileURLToPath(new URL("../../hsm/softhsm2.conf.template", import.meta.url));

/**
 * Renders hsm/softhsm2.conf.template for a token directory. Used by {@link ensureSoftHsmConfig}
 * and by tests that need their own SoftHSM instance.
 */
export function renderSoftHsmConfig(tokenDir: string): string {
  return fs.readFileSync(TEMPLATE, "utf8").replaceAll("{{TOKENDIR}}", path.resolve(tokenDir));
}

/**
 * Embedded mode only (no-op when !cfg.embeddedHsm): writes cfg.softhsmConf from the template when it
 * is missing (an existing file is left alone, so operators may edit it), creates
 * cfg.softhsmTokenDir (mode 0700) and sets process.env.SOFTHSM2_CONF. SoftHSM reads the variable in
 * C_Initialize, so call this before Pkcs11Module.open.
 */
export function ensureSoftHsmConfig(cfg: Config): void {
  if (!cfg.embeddedHsm) return;
  fs.mkdirSync(cfg.softhsmTokenDir, { recursive: true, mode: 0o700 });
  if (!fs.existsSync(cfg.softhsmConf)) {
    fs.mkdirSync(path.dirname(cfg.softhsmConf), { recursive: true, mode: 0o700 });
    fs.writeFileSync(cfg.softhsmConf, renderSoftHsmConfig(cfg.softhsmTokenDir), { mode: 0o600, flag: "wx" });
  }
  process.env.SOFTHSM2_CONF = cfg.softhsmConf;
}

/** A random PIN of `length` decimal digits (CSPRNG). */
export function randomDigits(length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += String(randomInt(10));
  return s;
}

/** A random PIN of `length` characters from [A-Za-z0-9] (CSPRNG, unbiased). */
export function randomAlphanumeric(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

function readPinFile(file: string): string {
  const st = fs.statSync(file);
  if (st.mode & 0o077) {
    throw new HsmError(`PIN file ${file} is accessible by group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, "PIN_FILE_INSECURE");
  }
  return fs.readFileSync(file, "utf8").trim();
}

/**
 * The CA token's user PIN: cfg.caTokenPinEnv (HPKI_HSM_PIN) when set, else cfg.caTokenPinFile
 * (must be mode 0600). In embedded mode, when the token cfg.caTokenLabel does not exist it is
 * created (SO PIN random and not kept — SoftHSM tokens are re-created, not unblocked; user PIN
 * the env PIN or a random 16-char one written to the PIN file with mode 0600).
 * @returns the PIN (never log it) and whether the token was created now.
 * @throws HsmError "TOKEN_NOT_FOUND" (external HSM without the token), "PIN_UNAVAILABLE",
 *   "PIN_FILE_INSECURE", or a CKR_ code from token initialisation.
 */
export function ensureCaToken(mod: Pkcs11Module, cfg: Config): { pin: string; created: boolean } {
  const exists = mod.findSlotByTokenLabel(cfg.caTokenLabel) !== null;
  if (!exists) {
    if (!cfg.embeddedHsm) {
      throw new HsmError(`CA token "${cfg.caTokenLabel}" not found in ${cfg.pkcs11Module} (looked up by label)`, "TOKEN_NOT_FOUND");
    }
    const pin = cfg.caTokenPinEnv ?? randomAlphanumeric(16);
    if (!cfg.caTokenPinEnv) {
      fs.mkdirSync(path.dirname(cfg.caTokenPinFile), { recursive: true, mode: 0o700 });
      // "w" not "wx": a PIN file left by a token that no longer exists is useless.
      fs.writeFileSync(cfg.caTokenPinFile, pin + "\n", { mode: 0o600 });
      fs.chmodSync(cfg.caTokenPinFile, 0o600);
    }
    mod.initToken(cfg.caTokenLabel, randomBytes(24).toString("base64url"), pin);
    return { pin, created: true };
  }
  if (cfg.caTokenPinEnv) return { pin: cfg.caTokenPinEnv, created: false };
  if (fs.existsSync(cfg.caTokenPinFile)) return { pin: readPinFile(cfg.caTokenPinFile), created: false };
  throw new HsmError(`no PIN for CA token "${cfg.caTokenLabel}": set HPKI_HSM_PIN or create ${cfg.caTokenPinFile} (mode 0600)`, "PIN_UNAVAILABLE");
}
