/**
 * The PKCS#11 layer (DESIGN.md §6): one module per process with OS locking, a self-healing session
 * pool, CA keys in the HSM, cards as tokens, a sealing key for envelope encryption, and the
 * embedded SoftHSM2 default.
 *
 * Typical start-up: ensureSoftHsmConfig(cfg) → Pkcs11Module.open(cfg.pkcs11Module) →
 * ensureCaToken(mod, cfg) → new SessionPool(mod, { tokenLabel: cfg.caTokenLabel, pin }) →
 * new CaKeyStore(pool).
 */
export { Pkcs11Module, MAX_TOKEN_LABEL } from "./module.ts";
export { SessionPool, type PoolStats } from "./pool.ts";
export { HsmError, isRecoverablePkcs11Error, isTokenLossError, pkcs11ErrorName, RECOVERABLE_RVS, REINIT_RVS, TOKEN_LOSS_CODES } from "./errors.ts";
export { TokenHealth, type TokenHealthReport, type TokenTransition } from "./health.ts";
export { CaKeyStore, type HsmKeyRef, type KeyAlgorithm } from "./ca-keys.ts";
export { CardStation, CARD_LABEL_PREFIX, type BlankCard, type CardSession } from "./cards.ts";
export { cardKeyAgent } from "./card-decrypt.ts";
export { ensureCaToken, ensureOcspToken, ensureSoftHsmConfig, ensureSsoToken, renderSoftHsmConfig } from "./softhsm.ts";
export { SealingKey, parseSealed, SEALED_VERSION, type SealedParts, type SealingKeyAttributes } from "./sealing-key.ts";
export { ecdsaRawToDer } from "./spki.ts";
export type { KeyPurpose, PrivateKeyFlags } from "./keys.ts";
