/**
 * The SSO center's HSM side: its own token (cfg.ssoTokenLabel, default "hpki-sso", PIN from
 * HPKI_SSO_PIN or $HPKI_HOME/hsm/sso-token.pin; created in embedded SoftHSM mode; never the CA or
 * OCSP token — the sso role opens no other), a two-session pool on it, and the AES-256 sealing key
 * "hpki-sso-sealing-key" under which keys.ts seals the provider's key material.
 *
 * Token and key are found or created under the SSO key lock (a Postgres advisory lock across
 * processes), so two SSO processes starting together create one of each.
 */
import fs from "node:fs";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Config } from "../config.ts";
import { pkcs11ErrorName } from "../hsm/errors.ts";
import type { TokenHealth } from "../hsm/health.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { SealingKey } from "../hsm/sealing-key.ts";
import { ensureSoftHsmConfig, ensureSsoToken } from "../hsm/softhsm.ts";
import { withSsoKeyLock } from "./keys.ts";

/** CKA_LABEL of the SSO center's sealing key on its token. */
export const SSO_SEALING_KEY_LABEL = "hpki-sso-sealing-key";

/** The opened sealing key; close() releases the pool and the module. */
export interface SsoSealer {
  key: SealingKey;
  /** The SSO token's health as its session pool sees it (src/hsm/health.ts; for /healthz and the audit of outages). */
  health: TokenHealth;
  close(): Promise<void>;
}

/**
 * Opens the SSO token and its sealing key, creating them when missing (the key's creation is
 * audited as "sso.sealing-key-created").
 *
 * Embedded SoftHSM with Postgres: another process sharing $HPKI_HOME may create the token while
 * this one starts, and SoftHSM reads its token directory (and each token's PINs) only in
 * C_Initialize. So, under the SSO key lock, when the token is missing from this process's view but
 * its PIN file or HPKI_SSO_PIN exists, or when it is there but not yet usable (the view was taken
 * between C_InitToken and C_InitPIN: CKR_USER_PIN_NOT_INITIALIZED), the module is re-initialised
 * once (sessions of other roles in this process heal) and the token looked up again — never a
 * second token under the label, never a PIN file overwritten.
 * @throws HsmError "TOKEN_NOT_FOUND" (real HSM without the token; English + Japanese),
 *   "PIN_UNAVAILABLE", "PIN_FILE_INSECURE", "TOKEN_CONFLICT", "KEY_UNSAFE", or a CKR_ code.
 */
export async function openSsoSealer(cfg: Config, db: Knex): Promise<SsoSealer> {
  ensureSoftHsmConfig(cfg);
  const mod = Pkcs11Module.open(cfg.pkcs11Module);
  const viewMayBeStale = cfg.embeddedHsm;
  const reread = async () => {
    mod.reinitialize();
    await mod.whenReady();
  };
  let pool: SessionPool | undefined;
  /** Ensures the token, opens the pool and logs in once (so an unusable token shows now). */
  const openToken = async () => {
    const token = ensureSsoToken(mod, cfg);
    pool = new SessionPool(mod, { tokenLabel: cfg.ssoTokenLabel, pin: token.pin, size: 2 });
    await pool.run(() => undefined);
    return token;
  };
  try {
    const key = await withSsoKeyLock(db, async () => {
      if (viewMayBeStale && !mod.findSlotByTokenLabel(cfg.ssoTokenLabel) && (cfg.ssoTokenPinEnv || fs.existsSync(cfg.ssoTokenPinFile))) await reread();
      let token;
      try {
        token = await openToken();
      } catch (e) {
        if (!viewMayBeStale || pkcs11ErrorName(e) !== "CKR_USER_PIN_NOT_INITIALIZED") throw e;
        pool?.close();
        await reread();
        token = await openToken();
      }
      const { key, created } = await SealingKey.ensure(pool!, SSO_SEALING_KEY_LABEL);
      if (created) {
        await db.transaction((trx) => appendAudit(trx, [{
          actor: "system", role: "sso", action: "sso.sealing-key-created", objectType: "hsm-key", objectId: `${cfg.ssoTokenLabel}/${key.label}`,
          details: { token: cfg.ssoTokenLabel, tokenCreated: token.created, label: key.label, id: key.id.toString("hex"), keyType: "AES-256", mechanism: "CKM_AES_GCM" },
        }]));
      }
      return key;
    });
    const opened = pool!;
    return {
      key,
      health: opened.health,
      async close() {
        opened.close();
        await mod.release();
      },
    };
  } catch (e) {
    pool?.close();
    await mod.release();
    throw e;
  }
}
