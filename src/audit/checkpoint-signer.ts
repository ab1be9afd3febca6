/**
 * The audit signing key: an ECDSA P-256 key pair on the CA token (label
 * "hpki-audit-checkpoint"; CKA_SENSITIVE, not extractable, sign only — src/hsm/keys.ts) with a
 * self-signed certificate stored next to it on the token, which every signed checkpoint carries.
 *
 * Why the CA token: the IA — the only role that opens it — signs checkpoints from its scheduler,
 * and it is the best-guarded token; a database owner never holds its PIN. Auditors pin the
 * certificate (or its public key) once and verify every checkpoint against it.
 */
import { createHash, X509Certificate } from "node:crypto";
import fs from "node:fs";
import type { Config } from "../config.ts";
import { CaKeyStore, type HsmKeyRef } from "../hsm/ca-keys.ts";
import { HsmError } from "../hsm/errors.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { encodeCertificate } from "../pki/certificate.ts";
import { selfSignedTbs } from "../pki/cms.ts";

/** CKA_LABEL of the audit signing key (and of its certificate object). */
export const AUDIT_KEY_LABEL = "hpki-audit-checkpoint";
/** Subject and issuer CN of the self-signed audit signer certificate. */
export const AUDIT_SIGNER_CN = "hpki-ca audit checkpoint signer";
/** RFC 5280 §4.1.2.5: 99991231235959Z for "no well-defined expiration". */
const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

export interface AuditSigner {
  key: HsmKeyRef;
  /** The self-signed signer certificate, DER. */
  certificate: Buffer;
  /** SHA-256 of the certificate, hex: what auditors pin. */
  sha256: string;
}

/**
 * The audit signing key and certificate on `keys`' token, created when missing (idempotent;
 * `ca init` calls it, and the first checkpoint of an older home). `created` says whether the key
 * was generated now (the caller audits that).
 * @throws HsmError from the token (e.g. TOKEN_UNAVAILABLE).
 */
export async function ensureAuditSigner(keys: CaKeyStore): Promise<{ signer: AuditSigner; created: boolean }> {
  let key = await keys.findKey(AUDIT_KEY_LABEL);
  let created = false;
  if (!key) {
    try {
      key = await keys.generateKeyPair(AUDIT_KEY_LABEL, "P-256");
      created = true;
    } catch (e) {
      // Another process made it a moment ago.
      if (!(e instanceof HsmError && e.code === "KEY_EXISTS")) throw e;
      key = await keys.findKey(AUDIT_KEY_LABEL);
      if (!key) throw e;
    }
  }
  let certificate = await keys.readCertificate(key);
  if (!certificate) {
    const tbs = selfSignedTbs({
      serial: createHash("sha256").update(key.spki).digest().subarray(0, 16),
      commonName: AUDIT_SIGNER_CN,
      notBefore: new Date(Math.floor(Date.now() / 1000) * 1000),
      notAfter: NO_EXPIRY,
      spki: key.spki,
      alg: "ecdsa-with-SHA256",
    });
    certificate = encodeCertificate(tbs, "ecdsa-with-SHA256", await keys.sign(key, tbs));
    // Never store a certificate the key does not verify.
    if (!new X509Certificate(certificate).verify(new X509Certificate(certificate).publicKey)) {
      throw new Error("the audit signer certificate does not verify with its own key; nothing stored");
    }
    await keys.writeCertificate(key, certificate);
  }
  return { signer: { key, certificate, sha256: createHash("sha256").update(certificate).digest("hex") }, created };
}

/**
 * The audit key's SubjectPublicKeyInfo DER read from the CA token of `cfg` (for `hpki audit
 * verify` to pin the checkpoint signer), or null with the reason when the token, its PIN or the
 * key is not available here (e.g. an auditor's machine). Never creates a token or a key.
 */
export async function readAuditSignerSpki(cfg: Config): Promise<{ spki: Buffer | null; reason?: string }> {
  try {
    ensureSoftHsmConfig(cfg);
    const mod = Pkcs11Module.open(cfg.pkcs11Module);
    try {
      if (!mod.findSlotByTokenLabel(cfg.caTokenLabel)) return { spki: null, reason: `CA token "${cfg.caTokenLabel}" not found` };
      const pin = cfg.caTokenPinEnv ?? (fs.existsSync(cfg.caTokenPinFile) ? fs.readFileSync(cfg.caTokenPinFile, "utf8").trim() : undefined);
      if (!pin) return { spki: null, reason: "no PIN for the CA token" };
      const pool = new SessionPool(mod, { tokenLabel: cfg.caTokenLabel, pin, size: 1 });
      try {
        const key = await new CaKeyStore(pool).findKey(AUDIT_KEY_LABEL);
        return key ? { spki: key.spki } : { spki: null, reason: `no key "${AUDIT_KEY_LABEL}" on the CA token (no checkpoint signed yet)` };
      } finally {
        pool.close();
      }
    } finally {
      await mod.release();
    }
  } catch (e) {
    return { spki: null, reason: (e as Error).message };
  }
}
