/**
 * Process configuration: the environment checked against one schema (src/config/schema.ts, which
 * lists and documents every variable) and turned into a Config. Read once at start
 * (`processConfig`, checked by bin/hpki.js before anything else loads); everything else takes a
 * Config argument so tests can point at their own directories. A bad value, a half-set group or an
 * unknown HPKI_* name stops the start with a ConfigError (English and Japanese, naming the variable).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEMO_REPO_URL, parseEnvironment } from "./config/schema.ts";
import type { CertificateUrls } from "./pki/tbs.ts";

export { ConfigError } from "./config/schema.ts";

export interface Config {
  /** production (NODE_ENV=production): public certificate URLs only; demo otherwise. */
  mode: "production" | "demo";
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
  /** Token holding the operators' sealing key (TOTP secrets, src/operators/operator-secrets.ts). */
  opsTokenLabel: string;
  opsTokenPinEnv: string | undefined;
  opsTokenPinFile: string;
  repoDir: string;
  mailDir: string;
  /** Certificate profiles, hcRole table, ceremony files (HPKI_POLICIES). */
  policiesDir: string;
  /** Public base URL of the repository written into certificates, no trailing "/" (HPKI_REPO_URL). */
  repoUrl: string;
  /** Consoles' session/CSRF secret when set (HPKI_SESSION_SECRET); else a file under home. */
  sessionSecret: string | undefined;
  mail: { smtpUrl: string | undefined; from: string | undefined };
  /** Japanese font for delivery PDFs (HPKI_PDF_FONT). */
  pdfFont: string | undefined;
  /** HPKI_RENEWAL_OLD_CERTIFICATES: a renewal's old certificates revoked (superseded) at the new card's handover, or left to expire. */
  renewalOldCertificates: "revoke" | "expire";
  /** This process is a worker of `hpki serve --workers N` (HPKI_SERVE_WORKER, set by the primary). */
  serveWorker: boolean;
  sso: {
    tls: { port: number; certFile: string; keyFile: string } | undefined;
    trustedProxies: string[];
    anchorFiles: string[];
    caFiles: string[];
    crls: string[];
    refreshMs: number | undefined;
    maxStalenessMs: number | undefined;
    ocspUrls: string[];
    ocspFallback: boolean;
    /** SSO session idle timeout and maximum lifetime, seconds (undefined: the provider's defaults). */
    idleTimeoutS: number | undefined;
    sessionMaxS: number | undefined;
    /** Port of the local card agent on 127.0.0.1 (HPKI_SSO_CARD_AGENT_PORT; issue 14 §9). */
    cardAgentPort: number;
  };
  /** The medical PO box (issue 15 §5, §8). */
  pobox: {
    ssoIssuer: string | undefined;
    clientId: string;
    clientSecret: string | undefined;
    quotaBytes: number;
    maxEnvelopeBytes: number;
    retentionDays: number;
    jpkiAnchorFiles: string[];
    jpkiCrls: string[];
  };
}

export const SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so";
/** The repository's own policies/ directory. */
export const REPOSITORY_POLICIES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "policies");

let current: Config | undefined;

/**
 * Builds the configuration from `env`; without an argument, the process environment, parsed
 * once and kept (processConfig). Pure apart from reading cwd. @throws ConfigError (bilingual,
 * every problem listed) on a value the schema refuses.
 */
export function loadConfig(env?: NodeJS.ProcessEnv): Config {
  if (env === undefined) return processConfig();
  const e = parseEnvironment(env);
  const home = path.resolve(e.core.HPKI_HOME ?? "var");
  const { sso } = e;
  return {
    mode: e.core.NODE_ENV === "production" ? "production" : "demo",
    home,
    databaseUrl: e.database.DATABASE_URL,
    pgDir: path.join(home, "pg"),
    pkcs11Module: e.hsm.PKCS11_MODULE ?? SOFTHSM2_MODULE,
    embeddedHsm: !e.hsm.PKCS11_MODULE,
    softhsmConf: path.join(home, "hsm", "softhsm2.conf"),
    softhsmTokenDir: path.join(home, "hsm", "tokens"),
    caTokenLabel: e.hsm.HPKI_HSM_TOKEN ?? "hpki-ca",
    caTokenPinEnv: e.hsm.HPKI_HSM_PIN,
    caTokenPinFile: path.join(home, "hsm", "ca-token.pin"),
    ocspTokenLabel: e.hsm.HPKI_OCSP_TOKEN ?? "hpki-ocsp",
    ocspTokenPinEnv: e.hsm.HPKI_OCSP_PIN,
    ocspTokenPinFile: path.join(home, "hsm", "ocsp-token.pin"),
    ssoTokenLabel: e.hsm.HPKI_SSO_TOKEN ?? "hpki-sso",
    ssoTokenPinEnv: e.hsm.HPKI_SSO_PIN,
    ssoTokenPinFile: path.join(home, "hsm", "sso-token.pin"),
    opsTokenLabel: e.hsm.HPKI_OPS_TOKEN ?? "hpki-ops",
    opsTokenPinEnv: e.hsm.HPKI_OPS_PIN,
    opsTokenPinFile: path.join(home, "hsm", "ops-token.pin"),
    repoDir: path.join(home, "repo"),
    mailDir: path.join(home, "mail"),
    policiesDir: e.core.HPKI_POLICIES ? path.resolve(e.core.HPKI_POLICIES) : REPOSITORY_POLICIES_DIR,
    repoUrl: (e.urls.HPKI_REPO_URL ?? DEMO_REPO_URL).replace(/\/+$/, ""),
    sessionSecret: e.web.HPKI_SESSION_SECRET,
    mail: { smtpUrl: e.mail.HPKI_SMTP_URL, from: e.mail.HPKI_MAIL_FROM },
    pdfFont: e.documents.HPKI_PDF_FONT,
    renewalOldCertificates: e.lifecycle.HPKI_RENEWAL_OLD_CERTIFICATES ?? "revoke",
    serveWorker: e.internal.HPKI_SERVE_WORKER === "1",
    sso: {
      // parseEnvironment refuses a half-set group, so one defined means all three are.
      tls: sso.HPKI_SSO_TLS_PORT !== undefined ? { port: sso.HPKI_SSO_TLS_PORT, certFile: sso.HPKI_SSO_TLS_CERT!, keyFile: sso.HPKI_SSO_TLS_KEY! } : undefined,
      trustedProxies: sso.HPKI_SSO_TRUSTED_PROXIES,
      anchorFiles: sso.HPKI_SSO_ANCHORS,
      caFiles: sso.HPKI_SSO_CAS,
      crls: sso.HPKI_SSO_CRLS,
      refreshMs: sso.HPKI_SSO_REFRESH_MS,
      maxStalenessMs: sso.HPKI_SSO_MAX_STALENESS_MS,
      ocspUrls: sso.HPKI_SSO_OCSP_URLS,
      ocspFallback: sso.HPKI_SSO_OCSP_FALLBACK,
      idleTimeoutS: sso.HPKI_SSO_IDLE_TIMEOUT_S,
      sessionMaxS: sso.HPKI_SSO_SESSION_MAX_S,
      cardAgentPort: sso.HPKI_SSO_CARD_AGENT_PORT ?? 7390,
    },
    pobox: {
      ssoIssuer: e.pobox.HPKI_POBOX_SSO_ISSUER?.replace(/\/+$/, ""),
      clientId: e.pobox.HPKI_POBOX_CLIENT_ID ?? "hpki-pobox",
      clientSecret: e.pobox.HPKI_POBOX_CLIENT_SECRET,
      quotaBytes: (e.pobox.HPKI_POBOX_QUOTA_MB ?? 1024) * 1024 * 1024,
      maxEnvelopeBytes: (e.pobox.HPKI_POBOX_MAX_ENVELOPE_MB ?? 64) * 1024 * 1024,
      retentionDays: e.pobox.HPKI_POBOX_RETENTION_DAYS ?? 90,
      jpkiAnchorFiles: e.pobox.HPKI_JPKI_ANCHORS,
      jpkiCrls: e.pobox.HPKI_JPKI_CRLS,
    },
  };
}

/** The configuration of this process (process.env, parsed on first use and kept). @throws ConfigError. */
export function processConfig(): Config {
  return (current ??= loadConfig(process.env));
}

/** Where this deployment's certificate URLs point (`{repoUrl}`), and whether only public hosts may appear. */
export function certificateUrls(cfg: Pick<Config, "repoUrl" | "mode">): CertificateUrls {
  return { repoUrl: cfg.repoUrl, publicUrlsOnly: cfg.mode === "production" };
}
