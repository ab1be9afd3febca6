/**
 * Process configuration from the environment. One place, read once: everything else takes a
 * Config argument so tests can point at their own directories.
 *
 * - HPKI_HOME       state directory (default ./var): pg/, hsm/, repo/, mail/
 * - DATABASE_URL    Postgres URL; when unset, the PostgreSQL cluster hpki manages in $HPKI_HOME/pg
 * - PKCS11_MODULE   PKCS#11 module path; when unset, SoftHSM2 with tokens in $HPKI_HOME/hsm
 * - HPKI_HSM_TOKEN  label of the CA token (default "hpki-ca")
 * - HPKI_HSM_PIN    user PIN of the CA token; embedded default: $HPKI_HOME/hsm/ca-token.pin (0600)
 * - HPKI_OCSP_TOKEN label of the OCSP responder token (default "hpki-ocsp"); never the CA token
 * - HPKI_OCSP_PIN   user PIN of the OCSP token; embedded default: $HPKI_HOME/hsm/ocsp-token.pin (0600)
 * - HPKI_SSO_TOKEN  label of the SSO center's token (default "hpki-sso"): its sealing key only;
 *                   never the CA or OCSP token
 * - HPKI_SSO_PIN    user PIN of the SSO token; embedded default: $HPKI_HOME/hsm/sso-token.pin (0600)
 */
import path from "node:path";

export interface Config {
  home: string;
  databaseUrl: string | undefined;
  /** Directory of the managed PostgreSQL cluster (src/store/managed-pg.ts), used when databaseUrl is unset. */
  pgDir: string;
  pkcs11Module: string;
  /** True when hpki-ca manages SoftHSM2 itself (config file + token directory under home). */
  embeddedHsm: boolean;
  softhsmConf: string;
  softhsmTokenDir: string;
  caTokenLabel: string;
  caTokenPinEnv: string | undefined;
  caTokenPinFile: string;
  /** Token holding the delegated OCSP responder keys; the repository role may open it, never the CA token. */
  ocspTokenLabel: string;
  ocspTokenPinEnv: string | undefined;
  ocspTokenPinFile: string;
  /** Token holding the SSO center's sealing key (src/hsm/sealing-key.ts); the sso role opens only this one. */
  ssoTokenLabel: string;
  ssoTokenPinEnv: string | undefined;
  ssoTokenPinFile: string;
  repoDir: string;
  mailDir: string;
}

export const SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/** Builds the configuration from `env` (default process.env). Pure apart from reading cwd. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const home = path.resolve(env.HPKI_HOME || "var");
  const embeddedHsm = !env.PKCS11_MODULE;
  return {
    home,
    databaseUrl: env.DATABASE_URL || undefined,
    pgDir: path.join(home, "pg"),
    pkcs11Module: env.PKCS11_MODULE || SOFTHSM2_MODULE,
    embeddedHsm,
    softhsmConf: path.join(home, "hsm", "softhsm2.conf"),
    softhsmTokenDir: path.join(home, "hsm", "tokens"),
    caTokenLabel: env.HPKI_HSM_TOKEN || "hpki-ca",
    caTokenPinEnv: env.HPKI_HSM_PIN || undefined,
    caTokenPinFile: path.join(home, "hsm", "ca-token.pin"),
    ocspTokenLabel: env.HPKI_OCSP_TOKEN || "hpki-ocsp",
    ocspTokenPinEnv: env.HPKI_OCSP_PIN || undefined,
    ocspTokenPinFile: path.join(home, "hsm", "ocsp-token.pin"),
    ssoTokenLabel: env.HPKI_SSO_TOKEN || "hpki-sso",
    ssoTokenPinEnv: env.HPKI_SSO_PIN || undefined,
    ssoTokenPinFile: path.join(home, "hsm", "sso-token.pin"),
    repoDir: path.join(home, "repo"),
    mailDir: path.join(home, "mail"),
  };
}
