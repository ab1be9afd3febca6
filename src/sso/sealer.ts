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
import { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { SealingKey } from "../hsm/sealing-key.ts";
import { ensureSoftHsmConfig, ensureSsoToken } from "../hsm/softhsm.ts";
import { isEmbedded } from "../store/db.ts";
import { withSsoKeyLock } from "./keys.ts";

/** CKA_LABEL of the SSO center's sealing key on its token. */
export const SSO_SEALING_KEY_LABEL = "hpki-sso-sealing-key";

/** The opened sealing key; close() releases the pool and the module. */
export interface SsoSealer {
  key: SealingKey;
  close(): Promise<void>;
}

/**
 * Opens the SSO token and its sealing key, creating them when missing (the key's creation is
 * audited as "sso.sealing-key-created"). In embedded mode with Postgres, another process sharing
 * $HPKI_HOME may have created the token after this one initialised SoftHSM, which reads its token
 * directory only in C_Initialize: when the token is missing but its PIN file or HPKI_SSO_PIN exists,
 * the module is re-initialised once (sessions of other roles in this process heal) before a token is
 * created, so there is never a second token under the label.
 * @throws HsmError "TOKEN_NOT_FOUND" (real HSM without the token; English + Japanese),
 *   "PIN_UNAVAILABLE", "PIN_FILE_INSECURE", "TOKEN_CONFLICT", "KEY_UNSAFE", or a CKR_ code.
 */
export async function openSsoSealer(cfg: Config, db: Knex): Promise<SsoSealer> {
  ensureSoftHsmConfig(cfg);
  const mod = Pkcs11Module.open(cfg.pkcs11Module);
  let pool: SessionPool | undefined;
  try {
    const key = await withSsoKeyLock(db, async () => {
      const missing = !mod.findSlotByTokenLabel(cfg.ssoTokenLabel);
      if (missing && cfg.embeddedHsm && !isEmbedded(db) && (cfg.ssoTokenPinEnv || fs.existsSync(cfg.ssoTokenPinFile))) {
        mod.reinitialize();
        await mod.whenReady();
      }
      const token = ensureSsoToken(mod, cfg);
      pool = new SessionPool(mod, { tokenLabel: cfg.ssoTokenLabel, pin: token.pin, size: 2 });
      const { key, created } = await SealingKey.ensure(pool, SSO_SEALING_KEY_LABEL);
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
