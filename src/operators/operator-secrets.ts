/**
 * Operators' TOTP secrets at rest (issue 10 §6): sealed with AES-GCM inside the HSM under the
 * operators' sealing key "hpki-ops-sealing-key" (src/hsm/sealing-key.ts), bound to their row by
 * the AAD "operators.totp_secret:<id>", stored in operators.totp_sealed; never in the clear.
 *
 * Which token: a dedicated operators' token, label HPKI_OPS_TOKEN (default "hpki-ops"), user PIN
 * HPKI_OPS_PIN or $HPKI_HOME/hsm/ops-token.pin (0600), created on demand in embedded SoftHSM like
 * the SSO token. The consoles run in the lra, ra, ia and sso roles: the LRA and RA processes must
 * not open the CA token (its keys would then be one bug away), and the SSO token is the SSO
 * center's own; a token holding only this key keeps every console process to the one key it needs.
 *
 * The key is opened once per database handle and process (ref-counted: `hpki serve --role all`
 * runs four consoles on one Db) by useOperatorSecrets(); addOperator and authenticate then find it
 * with operatorSecrets(db). The first opening also seals the rows an earlier version stored in the
 * clear and erases them, in one transaction with one audit record ("operator.totp-sealed"), then
 * rewrites the table (VACUUM FULL, best effort) so the old row versions leave its files.
 */
import fs from "node:fs";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Config } from "../config.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { SealingKey } from "../hsm/sealing-key.ts";
import { ensureOpsToken, ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { HpkiError } from "../pipeline/errors.ts";
import { advisoryLock } from "../store/advisory-lock.ts";
import { toBuffer } from "../store/rows.ts";

/** CKA_LABEL of the operators' sealing key. */
export const OPS_SEALING_KEY_LABEL = "hpki-ops-sealing-key";

/** AAD binding a sealed TOTP secret to operator `id` (a value copied to another row does not open). */
export const totpSecretAad = (operatorId: number): string => `operators.totp_secret:${operatorId}`;

/** What operator sign-in and creation need: seal and open one operator's TOTP secret (base32). */
export interface OperatorSecrets {
  seal(operatorId: number, secret: string): Promise<Buffer>;
  open(operatorId: number, sealed: Uint8Array): Promise<string>;
  /** Token and key labels (audit records). */
  tokenLabel: string;
  keyLabel: string;
}

/** The operators' token: label and PIN source, from the checked configuration (HPKI_OPS_TOKEN / HPKI_OPS_PIN). */
export function opsTokenSpec(cfg: Config): { label: string; pinEnv: string | undefined; pinFile: string } {
  return { label: cfg.opsTokenLabel, pinEnv: cfg.opsTokenPinEnv, pinFile: cfg.opsTokenPinFile };
}

// "HPOP": serialises token and key creation across processes sharing the database.
const withOpsKeyLock = advisoryLock(0x4850_4f50);

interface Opened {
  secrets: OperatorSecrets;
  close(): Promise<void>;
}
const byDb = new WeakMap<Knex, { ready: Promise<Opened>; users: number }>();

/** A handle on the opened operators' sealing key; release() closes it when the last holder lets go. */
export interface OperatorSecretsHandle {
  secrets: OperatorSecrets;
  release(): Promise<void>;
}

/**
 * Opens (or shares) the operators' sealing key for `db`: the token and key are found or created
 * (embedded SoftHSM; key creation audited "operator.sealing-key-created"), plaintext secrets of
 * earlier versions are sealed (sealPlaintextTotpSecrets). Call release() when done.
 * @throws HsmError (TOKEN_NOT_FOUND, PIN_UNAVAILABLE, TOKEN_CONFLICT, KEY_UNSAFE, CKR_…).
 */
export async function useOperatorSecrets(cfg: Config, db: Knex): Promise<OperatorSecretsHandle> {
  let entry = byDb.get(db);
  if (!entry) {
    entry = { ready: openOperatorSecrets(cfg, db), users: 0 };
    byDb.set(db, entry);
    entry.ready.catch(() => byDb.delete(db));
  }
  entry.users++;
  const e = entry;
  let opened: Opened;
  try {
    opened = await e.ready;
  } catch (err) {
    e.users--;
    throw err;
  }
  let released = false;
  return {
    secrets: opened.secrets,
    async release() {
      if (released) return;
      released = true;
      if (--e.users === 0 && byDb.get(db) === e) {
        byDb.delete(db);
        await opened.close();
      }
    },
  };
}

/** Runs `fn` with the operators' sealing key open for `db` (CLI commands that create or sign in operators). */
export async function withOperatorSecrets<T>(cfg: Config, db: Knex, fn: () => Promise<T>): Promise<T> {
  const h = await useOperatorSecrets(cfg, db);
  try {
    return await fn();
  } finally {
    await h.release();
  }
}

/** True when useOperatorSecrets opened (or is opening) the key for `db` in this process. */
export function hasOperatorSecrets(db: Knex): boolean {
  return byDb.has(db);
}

/**
 * The operators' sealing key opened for `db` by useOperatorSecrets (waits while it opens).
 * @throws HpkiError 503 "operator_secrets_unavailable" when nothing opened it.
 */
export async function operatorSecrets(db: Knex): Promise<OperatorSecrets> {
  const entry = byDb.get(db);
  if (!entry) {
    throw new HpkiError(
      "The operators' sealing key is not open in this process (useOperatorSecrets).",
      "オペレータ用の封印鍵が開かれていません。管理者に連絡してください。",
      503,
      "operator_secrets_unavailable",
    );
  }
  return (await entry.ready).secrets;
}

async function openOperatorSecrets(cfg: Config, db: Knex): Promise<Opened> {
  const spec = opsTokenSpec(cfg);
  ensureSoftHsmConfig(cfg);
  const mod = Pkcs11Module.open(cfg.pkcs11Module);
  let pool: SessionPool | undefined;
  try {
    const key = await withOpsKeyLock(db, async () => {
      // Another process may have created the token since this one initialised the module.
      if (cfg.embeddedHsm && !mod.findSlotByTokenLabel(spec.label) && (spec.pinEnv || fs.existsSync(spec.pinFile))) {
        mod.reinitialize();
        await mod.whenReady();
      }
      const token = ensureOpsToken(mod, cfg, spec);
      pool = new SessionPool(mod, { tokenLabel: spec.label, pin: token.pin, size: 2 });
      const { key, created } = await SealingKey.ensure(pool, OPS_SEALING_KEY_LABEL);
      if (created) {
        await db.transaction((trx) => appendAudit(trx, [{
          actor: "system", role: "admin", action: "operator.sealing-key-created", objectType: "hsm-key", objectId: `${spec.label}/${key.label}`,
          details: { token: spec.label, tokenCreated: token.created, label: key.label, id: key.id.toString("hex"), keyType: "AES-256", mechanism: "CKM_AES_GCM" },
        }]));
      }
      return key;
    });
    const secrets: OperatorSecrets = {
      tokenLabel: spec.label,
      keyLabel: key.label,
      seal: (id, secret) => key.seal(Buffer.from(secret, "utf8"), totpSecretAad(id)),
      open: async (id, sealed) => (await key.open(sealed, totpSecretAad(id))).toString("utf8"),
    };
    await sealPlaintextTotpSecrets(db, secrets);
    const p = pool!;
    return {
      secrets,
      async close() {
        p.close();
        await mod.release();
      },
    };
  } catch (e) {
    pool?.close();
    await mod.release();
    throw e;
  }
}

/**
 * Seals every TOTP secret still stored in the clear (rows of versions before migration 0091) and
 * erases the plaintext: one transaction, rows locked, one audit record "operator.totp-sealed"
 * (usernames only). Then VACUUM FULL operators, best effort (WAL and older backups still hold the
 * erased values). Returns the usernames sealed now.
 */
export async function sealPlaintextTotpSecrets(db: Knex, secrets: OperatorSecrets): Promise<string[]> {
  const done = await db.transaction(async (trx) => {
    const rows = await trx("operators").whereNotNull("totp_secret").orderBy("id").forUpdate().select("id", "username", "totp_secret");
    if (rows.length === 0) return [];
    for (const r of rows) {
      const sealed = await secrets.seal(Number(r.id), String(r.totp_secret));
      await trx("operators").where({ id: r.id }).update({ totp_sealed: sealed, totp_secret: null });
    }
    const usernames = rows.map((r) => String(r.username));
    await appendAudit(trx, [{
      actor: "system", role: "admin", action: "operator.totp-sealed", objectType: "operator", objectId: `${secrets.tokenLabel}/${secrets.keyLabel}`,
      details: { usernames, token: secrets.tokenLabel, sealingKey: secrets.keyLabel },
    }]);
    return usernames;
  });
  if (done.length > 0) await db.raw("VACUUM FULL operators").catch(() => undefined);
  return done;
}

/** The TOTP secret of an operator row: opened from totp_sealed; a row still in the clear is refused. */
export async function openTotpSecret(db: Knex, row: { id: number | string; totp_sealed: Uint8Array | null }): Promise<string> {
  if (!row.totp_sealed) {
    throw new HpkiError("This operator's TOTP secret is not sealed yet.", "このオペレータのワンタイムコード用の秘密情報が封印されていません。管理者に連絡してください。", 503, "operator_secrets_unavailable");
  }
  return (await operatorSecrets(db)).open(Number(row.id), toBuffer(row.totp_sealed));
}
