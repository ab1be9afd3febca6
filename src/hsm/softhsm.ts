/**
 * Embedded default HSM: SoftHSM2 with its configuration and tokens under $HPKI_HOME/hsm, and the
 * tokens hpki-ca uses (CA, OCSP responder, SSO center) created on first use. With a real HSM
 * (PKCS11_MODULE set) nothing is created: a missing token is an error naming the variable to set.
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
    // Written aside and linked into place: a process starting on the same $HPKI_HOME at the same
    // moment sees either no file or a whole one, and the loser of the link keeps the winner's.
    const tmp = `${cfg.softhsmConf}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, renderSoftHsmConfig(cfg.softhsmTokenDir), { mode: 0o600 });
    try {
      fs.linkSync(tmp, cfg.softhsmConf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      fs.unlinkSync(tmp);
    }
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
    const mode = (st.mode & 0o777).toString(8);
    throw new HsmError(`PIN file ${file} is accessible by group/others (mode ${mode}); chmod 600 it`, "PIN_FILE_INSECURE", {
      messageJa: `PIN ファイル ${file} がグループ/他者から読めます(モード ${mode})。chmod 600 にしてください。`,
    });
  }
  return fs.readFileSync(file, "utf8").trim();
}

/** A token hpki-ca uses: its label, PIN sources and the variable an operator sets. */
interface TokenSpec {
  what: string;
  whatJa: string;
  label: string;
  /** Variable that sets the label (named when the token is missing from a real HSM). */
  labelVariable: string;
  pinEnv: string | undefined;
  pinFile: string;
  pinVariable: string;
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
  return ensureToken(mod, cfg, {
    what: "CA token", whatJa: "CA トークン", label: cfg.caTokenLabel, labelVariable: "HPKI_HSM_TOKEN",
    pinEnv: cfg.caTokenPinEnv, pinFile: cfg.caTokenPinFile, pinVariable: "HPKI_HSM_PIN",
  });
}

/**
 * The OCSP responder token (cfg.ocspTokenLabel, PIN from HPKI_OCSP_PIN or cfg.ocspTokenPinFile),
 * created in embedded mode like the CA token. It holds only delegated responder keys, so the
 * repository role may open it; it must never be the CA token.
 * @throws HsmError as ensureCaToken; "TOKEN_CONFLICT" when its label equals the CA token's.
 */
export function ensureOcspToken(mod: Pkcs11Module, cfg: Config): { pin: string; created: boolean } {
  if (cfg.ocspTokenLabel === cfg.caTokenLabel) {
    throw new HsmError(`the OCSP token label "${cfg.ocspTokenLabel}" is the CA token's: responder keys need a token of their own (HPKI_OCSP_TOKEN)`, "TOKEN_CONFLICT", {
      messageJa: `OCSP トークンのラベル「${cfg.ocspTokenLabel}」が CA トークンと同じです。レスポンダ鍵には専用のトークンが必要です(HPKI_OCSP_TOKEN)。`,
    });
  }
  return ensureToken(mod, cfg, {
    what: "OCSP token", whatJa: "OCSP トークン", label: cfg.ocspTokenLabel, labelVariable: "HPKI_OCSP_TOKEN",
    pinEnv: cfg.ocspTokenPinEnv, pinFile: cfg.ocspTokenPinFile, pinVariable: "HPKI_OCSP_PIN",
  });
}

/**
 * The SSO center's token (cfg.ssoTokenLabel, default "hpki-sso"; PIN from HPKI_SSO_PIN or
 * cfg.ssoTokenPinFile), created in embedded mode like the CA token. It holds only the sealing key
 * of the SSO center's secrets (sealing-key.ts): the sso role opens this token and no other.
 * @throws HsmError as ensureCaToken; "TOKEN_CONFLICT" when its label is the CA or the OCSP token's.
 */
export function ensureSsoToken(mod: Pkcs11Module, cfg: Config): { pin: string; created: boolean } {
  for (const [other, otherJa, label] of [["CA", "CA", cfg.caTokenLabel], ["OCSP", "OCSP", cfg.ocspTokenLabel]] as const) {
    if (cfg.ssoTokenLabel === label) {
      throw new HsmError(`the SSO token label "${label}" is the ${other} token's: the SSO center needs a token of its own (HPKI_SSO_TOKEN)`, "TOKEN_CONFLICT", {
        messageJa: `SSO トークンのラベル「${label}」が ${otherJa} トークンと同じです。SSO センターには専用のトークンが必要です(HPKI_SSO_TOKEN)。`,
      });
    }
  }
  return ensureToken(mod, cfg, {
    what: "SSO token", whatJa: "SSO トークン", label: cfg.ssoTokenLabel, labelVariable: "HPKI_SSO_TOKEN",
    pinEnv: cfg.ssoTokenPinEnv, pinFile: cfg.ssoTokenPinFile, pinVariable: "HPKI_SSO_PIN",
  });
}

/**
 * The consoles' operator-secrets token (label `t.label`, default "hpki-ops", see
 * src/operators/operator-secrets.ts), created in embedded mode like the SSO token. It holds only
 * the sealing key of operators' TOTP secrets: the lra, ra, ia and sso consoles open it and never
 * the CA or OCSP token for that.
 * @throws HsmError as ensureCaToken; "TOKEN_CONFLICT" when its label is another token's.
 */
export function ensureOpsToken(mod: Pkcs11Module, cfg: Config, t: { label: string; pinEnv: string | undefined; pinFile: string }): { pin: string; created: boolean } {
  for (const [other, label] of [["CA", cfg.caTokenLabel], ["OCSP", cfg.ocspTokenLabel], ["SSO", cfg.ssoTokenLabel]] as const) {
    if (t.label === label) {
      throw new HsmError(`the operators' token label "${label}" is the ${other} token's: operator secrets need a token of their own (HPKI_OPS_TOKEN)`, "TOKEN_CONFLICT", {
        messageJa: `オペレータ用トークンのラベル「${label}」が ${other} トークンと同じです。専用のトークンが必要です(HPKI_OPS_TOKEN)。`,
      });
    }
  }
  return ensureToken(mod, cfg, { what: "operators' token", whatJa: "オペレータ用トークン", label: t.label, labelVariable: "HPKI_OPS_TOKEN", pinEnv: t.pinEnv, pinFile: t.pinFile, pinVariable: "HPKI_OPS_PIN" });
}

function ensureToken(mod: Pkcs11Module, cfg: Config, t: TokenSpec): { pin: string; created: boolean } {
  const exists = mod.findSlotByTokenLabel(t.label) !== null;
  if (!exists) {
    if (!cfg.embeddedHsm) {
      throw new HsmError(
        `${t.what} "${t.label}" not found in ${cfg.pkcs11Module} (looked up by label): initialise a token with that label on the HSM, or set ${t.labelVariable} to the label of an existing one`,
        "TOKEN_NOT_FOUND",
        { messageJa: `${t.whatJa}「${t.label}」が ${cfg.pkcs11Module} に見つかりません(ラベルで検索)。HSM にこのラベルのトークンを初期化するか、${t.labelVariable} に既存のトークンのラベルを設定してください。` },
      );
    }
    const pin = t.pinEnv ?? randomAlphanumeric(16);
    if (!t.pinEnv) {
      fs.mkdirSync(path.dirname(t.pinFile), { recursive: true, mode: 0o700 });
      // "w" not "wx": a PIN file left by a token that no longer exists is useless.
      fs.writeFileSync(t.pinFile, pin + "\n", { mode: 0o600 });
      fs.chmodSync(t.pinFile, 0o600);
    }
    mod.initToken(t.label, randomBytes(24).toString("base64url"), pin);
    return { pin, created: true };
  }
  if (t.pinEnv) return { pin: t.pinEnv, created: false };
  if (fs.existsSync(t.pinFile)) return { pin: readPinFile(t.pinFile), created: false };
  throw new HsmError(`no PIN for ${t.what} "${t.label}": set ${t.pinVariable} or create ${t.pinFile} (mode 0600)`, "PIN_UNAVAILABLE", {
    messageJa: `${t.whatJa}「${t.label}」の PIN がありません。${t.pinVariable} を設定するか、${t.pinFile} をモード 0600 で作成してください。`,
  });
}
