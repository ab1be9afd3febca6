/**
 * The IA's runtime: database, PKCS#11 module, CA-token session pool, CA key store, card station
 * and policies, opened once per process and closed together. Only the IA role opens this.
 */
import os from "node:os";
import { certificateUrls, type Config } from "../config.ts";
import { CaKeyStore } from "../hsm/ca-keys.ts";
import { CardStation } from "../hsm/cards.ts";
import type { TokenHealthReport } from "../hsm/health.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { ensureCaToken, ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { openOcspKeys, type OcspKeys } from "../ocsp/responders.ts";
import { loadPolicies, type Policies } from "../policies.ts";
import { openDatabase, type Db } from "../store/db.ts";
import { assertPublicCertificateUrls } from "./certificate-urls.ts";
import { IssuanceService } from "./issuance.ts";

export interface IaContext {
  cfg: Config;
  db: Db;
  module: Pkcs11Module;
  pool: SessionPool;
  keys: CaKeyStore;
  cards: CardStation;
  policies: Policies;
  issuance: IssuanceService;
  /**
   * The OCSP token's responder key store, opened on first use (created in embedded mode): where
   * responder key pairs are generated and responses pre-signed. Never the CA token.
   */
  ocspKeys(): OcspKeys;
  /** Health of the CA token and (once opened) the OCSP token, as their pools last saw them. */
  hsmHealth(): TokenHealthReport[];
  close(): Promise<void>;
}

export interface OpenIaOptions {
  /** Sessions in the CA-token pool; default 2 × cores (the HSM signs on libuv threads). */
  poolSize?: number;
  db?: Db;
}

/**
 * Opens the IA runtime for `cfg`. Throws with a clear message when the token or PIN is wrong, and
 * in production when a certificate URL names localhost or an IP address (certificate-urls.ts).
 */
export async function openIaContext(cfg: Config, opts: OpenIaOptions = {}): Promise<IaContext> {
  ensureSoftHsmConfig(cfg);
  const policies = loadPolicies(cfg.policiesDir);
  const db = opts.db ?? (await openDatabase(cfg));
  const urls = certificateUrls(cfg);
  try {
    await assertPublicCertificateUrls(db, policies.profiles, urls);
  } catch (e) {
    if (!opts.db) await db.destroy();
    throw e;
  }
  const module = Pkcs11Module.open(cfg.pkcs11Module);
  const { pin } = ensureCaToken(module, cfg);
  const pool = new SessionPool(module, {
    tokenLabel: cfg.caTokenLabel,
    pin,
    size: opts.poolSize ?? os.availableParallelism() * 2,
  });
  const keys = new CaKeyStore(pool);
  const cards = new CardStation(module);
  const issuance = new IssuanceService(db, keys, policies.profiles, undefined, urls, { production: cfg.mode === "production" });
  let ocsp: OcspKeys | undefined;
  return {
    cfg, db, module, pool, keys, cards, policies, issuance,
    ocspKeys: () => (ocsp ??= openOcspKeys(module, cfg, opts.poolSize ?? os.availableParallelism() * 2)),
    hsmHealth: () => [pool.health.report(), ...(ocsp ? [ocsp.pool.health.report()] : [])],
    async close() {
      ocsp?.pool.close();
      pool.close();
      if (!opts.db) await db.destroy();
    },
  };
}
