/**
 * The configuration schema: every environment variable hpki-ca reads, one object per area, each
 * with its zod schema, description and default. `parseEnvironment` checks a whole environment at
 * once and refuses, with one bilingual line per problem naming the variable: a value of the wrong
 * form (NaN, a bad URL…), a half-set group (the SSO TLS listener), an `HPKI_*` name the schema
 * does not know (a typo is never silently ignored), and production settings that would put
 * localhost into certificates. The README's configuration table is generated from these entries
 * (src/config/table.ts, `npm run docs:config`).
 */
import { z } from "zod";
import { DEMO_REPO_URL, certificateUrlProblem } from "../pki/public-url.ts";
import { flag, int, list, oneOf, text, url, type Area, type Setting } from "./settings.ts";

export { DEMO_REPO_URL };

export const AREAS = {
  core: {
    HPKI_HOME: text("state directory (0700): `pg/` (managed PostgreSQL), `hsm/` (SoftHSM2 tokens), `repo/` (CA PEMs), `mail/` (PIN mailers), `demo/certs/` (demo output)", { default: "`./var`" }),
    NODE_ENV: oneOf(
      ["production", "development", "test"] as const,
      "`production` = production mode (the one switch): certificate URLs must name public DNS hosts, `HPKI_REPO_URL` is required, views are cached; `development`, `test` or unset: demo mode (localhost URLs allowed)",
      { default: "unset (demo)" },
    ),
    HPKI_POLICIES: text("directory of the certificate profiles, hcRole table and ceremony files", { default: "the repository's `policies/`" }),
  },
  urls: {
    HPKI_REPO_URL: url(
      ["http:", "https:"],
      "public base URL of the repository written into certificates: `{repoUrl}` in profiles and ceremony files (CRL distribution points `…/crl/<ca>.crl`, CPS `…/cps/`, AIA/OCSP). Required in production, where localhost and IP addresses are refused",
      { default: `\`${DEMO_REPO_URL}\` (demo only)` },
    ),
  },
  database: {
    DATABASE_URL: url(["postgres:", "postgresql:"], "external PostgreSQL URL; when unset, the cluster hpki manages in `$HPKI_HOME/pg` (see **Database**)", { default: "unset", secret: true }),
  },
  hsm: {
    PKCS11_MODULE: text("PKCS#11 module of the HSM / card reader; when unset, SoftHSM2 with tokens in `$HPKI_HOME/hsm`", { default: "unset" }),
    HPKI_HSM_TOKEN: text("label of the CA token", { default: "`hpki-ca`" }),
    HPKI_HSM_PIN: text("user PIN of the CA token; embedded default: `$HPKI_HOME/hsm/ca-token.pin` (mode 0600)", { default: "unset", secret: true }),
    HPKI_OCSP_TOKEN: text("label of the OCSP responder token (responder keys only; must differ from the CA token)", { default: "`hpki-ocsp`" }),
    HPKI_OCSP_PIN: text("user PIN of the OCSP token; embedded default: `$HPKI_HOME/hsm/ocsp-token.pin` (mode 0600)", { default: "unset", secret: true }),
    HPKI_SSO_TOKEN: text("label of the SSO center's token (its sealing key only; must differ from the CA and OCSP tokens)", { default: "`hpki-sso`" }),
    HPKI_SSO_PIN: text("user PIN of the SSO token; embedded default: `$HPKI_HOME/hsm/sso-token.pin` (mode 0600)", { default: "unset", secret: true }),
    HPKI_OPS_TOKEN: text("label of the operators' token: the AES-256 key sealing operators' TOTP secrets (opened by every console and by CLI commands creating or signing in operators; must differ from the CA, OCSP and SSO tokens)", { default: "`hpki-ops`" }),
    HPKI_OPS_PIN: text("user PIN of the operators' token; embedded default: `$HPKI_HOME/hsm/ops-token.pin` (mode 0600)", { default: "unset", secret: true }),
  },
  web: {
    HPKI_SESSION_SECRET: {
      ...text("consoles' session and CSRF secret (at least 32 characters); default: a random one kept in `$HPKI_HOME/console-session.secret`"),
      schema: z.string().min(32).optional(),
      expect: { en: "at least 32 characters", ja: "32文字以上を指定してください" },
      default: "unset",
      secret: true,
    } satisfies Setting,
  },
  mail: {
    HPKI_SMTP_URL: url(["smtp:", "smtps:"], "SMTP server for PIN mailers and expiry notices; when unset, `.eml` files under `$HPKI_HOME/mail`", { default: "unset", secret: true }),
    HPKI_MAIL_FROM: text("sender address of notices", { default: "`\"HPKI 認証局\" <no-reply@hpki-ca.invalid>`" }),
  },
  ia: {
    HPKI_IA_LEASE_SECONDS: text("lease of an issuance request claimed by an IA worker, seconds (fractions allowed); another worker takes the request over only after it expires", { default: "`30`" }),
    HPKI_IA_HEARTBEAT_SECONDS: text("how often a working IA worker renews its leases, seconds; shorter than the lease", { default: "a third of the lease, at most `10`" }),
  },
  lifecycle: {
    HPKI_RENEWAL_OLD_CERTIFICATES: oneOf(
      ["revoke", "expire"] as const,
      "at the handover of a renewal's new card, the old card's certificates are `revoke`d (reason superseded, on the next CRL) or left to `expire` (issue 13 §4)",
      { default: "`revoke`" },
    ),
  },
  documents: {
    HPKI_PDF_FONT: text("TrueType/OpenType font with Japanese glyphs for delivery PDFs", { default: "IPAex Gothic (Debian `fonts-ipaexfont-gothic`)" }),
  },
  sso: {
    HPKI_SSO_TLS_PORT: int(1, 65535, "port of the SSO center's dedicated HTTPS listener for TLS client authentication (all three `HPKI_SSO_TLS_*` or none)", { default: "unset" }),
    HPKI_SSO_TLS_CERT: text("PEM certificate (chain) of that listener", { default: "unset" }),
    HPKI_SSO_TLS_KEY: text("PEM private key of that listener", { default: "unset" }),
    HPKI_SSO_TRUSTED_PROXIES: list("comma-separated addresses whose `X-SSL-Client-Cert` header is accepted", { default: "none" }),
    HPKI_SSO_ANCHORS: list("other HPKI roots (certificate files, comma-separated)", { default: "none" }),
    HPKI_SSO_CAS: list("their issuing-CA certificates (files, comma-separated)", { default: "none" }),
    HPKI_SSO_CRLS: list("their CRLs (files or http URLs, comma-separated)", { default: "none" }),
    HPKI_SSO_REFRESH_MS: int(1000, 86_400_000, "revocation refresh period, ms", { default: "30000" }),
    HPKI_SSO_MAX_STALENESS_MS: int(1000, 604_800_000, "how long a revocation read may be relied on, ms", { default: "120000" }),
    HPKI_SSO_OCSP_URLS: list("OCSP responders for certificates without an AIA OCSP URL (comma-separated)", { default: "none" }),
    HPKI_SSO_OCSP_FALLBACK: flag(true, "`off`: no OCSP fallback, the revocation index alone"),
    HPKI_SSO_IDLE_TIMEOUT_S: int(1, 86_400, "SSO session idle timeout, seconds (shared workstations): a session unused this long ends", { default: "`1800`" }),
    HPKI_SSO_SESSION_MAX_S: int(1, 2_592_000, "SSO session maximum lifetime, seconds", { default: "`28800`" }),
    HPKI_SSO_CARD_AGENT_PORT: int(1024, 65535, "port on 127.0.0.1 of the local card agent (`hpki card agent`): the SSO login page calls it, and the agent listens there", { default: "`7390`" }),
  },
  pobox: {
    HPKI_POBOX_SSO_ISSUER: url(["http:", "https:"], "issuer URL of the SSO center the PO box signs people in through (OIDC relying party, issue 15 §5); default: this process's `/sso`", { default: "`<public URL>/sso`" }),
    HPKI_POBOX_CLIENT_ID: text("the PO box's client id at the SSO center", { default: "`hpki-pobox`" }),
    HPKI_POBOX_CLIENT_SECRET: text("the PO box's client secret at the SSO center (registered with `hpki sso clients add`)", { default: "unset", secret: true }),
    HPKI_POBOX_QUOTA_MB: int(1, 1_048_576, "per-account quota: megabytes of envelopes waiting in one inbox", { default: "`1024`" }),
    HPKI_POBOX_MAX_ENVELOPE_MB: int(1, 1024, "largest envelope accepted, megabytes", { default: "`64`" }),
    HPKI_POBOX_RETENTION_DAYS: int(1, 3650, "days an envelope is kept after it was sent; then erased (metadata and receipts stay)", { default: "`90`" }),
    HPKI_JPKI_ANCHORS: list("J-LIS trust anchors for patients' JPKI 利用者証明用電子証明書 (certificate files, comma-separated; the real J-LIS CA certificates in production, a simulated JPKI CA in the demo)", { default: "none" }),
    HPKI_JPKI_CRLS: list("CRLs of the JPKI CA (files or http URLs, comma-separated) checked at patient registration and sign-in (read again every 10 minutes; without a current one patients are refused)", { default: "none" }),
  },
  internal: {
    HPKI_SERVE_WORKER: oneOf(["1"] as const, "set by `hpki serve --workers N` on its worker processes; never set it yourself", { default: "unset" }),
    HPKI_FAULT: text("crash tests only, ignored in production: `<step>[:<n>]` makes the issuance worker SIGKILL itself after that step (`after-bind`, `after-keygen`, `after-intent`, `after-sign`, `after-write`); `<step>:<n>:throw` makes it fail there instead (the request is recorded failed)", { default: "unset" }),
    HPKI_FAULT_DELAY_MS: int(0, 600_000, "crash tests only, ignored in production: extra milliseconds per issuance step (a slow card station)", { default: "unset" }),
    HPKI_BENCH_CHILD_NODE_ARGS: text("benchmarks only (`npm run bench`): extra node flags for the server child", { default: "unset" }),
  },
} satisfies Record<string, Area>;

export type AreaName = keyof typeof AREAS;
type Parsed<A extends Area> = { [K in keyof A]: A[K] extends Setting<infer T> ? T : never };
/** The parsed environment, by area: numbers are numbers, lists are arrays, unset is undefined. */
export type ParsedEnvironment = { [N in AreaName]: Parsed<(typeof AREAS)[N]> };

/** Every variable the schema knows, with its area. */
export const KNOWN_VARIABLES: ReadonlyMap<string, AreaName> = new Map(
  (Object.keys(AREAS) as AreaName[]).flatMap((area) => Object.keys(AREAS[area]).map((name) => [name, area] as const)),
);

/** The whole schema as one zod object (area → variable → value schema). */
export const environmentSchema = z.object(
  Object.fromEntries(
    (Object.keys(AREAS) as AreaName[]).map((area) => [
      area,
      z.object(Object.fromEntries(Object.entries(AREAS[area] as Area).map(([name, s]) => [name, s.schema]))),
    ]),
  ),
);

/** One configuration problem: the variable and the message in English and Japanese. */
export interface ConfigIssue {
  variable: string;
  message: string;
  messageJa: string;
}

/** Thrown when the environment does not pass the schema; lists every problem, never a secret value. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly code = "bad_configuration";
  readonly messageJa: string;
  constructor(readonly problems: ConfigIssue[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.message}`).join("\n")}`);
    this.messageJa = `設定が正しくありません:\n${problems.map((p) => `  ${p.messageJa}`).join("\n")}`;
  }
}

/**
 * Checks `env` against the schema. Returns the parsed values by area; throws ConfigError listing
 * every problem (value forms, unknown HPKI_* names, the half-set TLS group, production URLs).
 */
export function parseEnvironment(env: NodeJS.ProcessEnv): ParsedEnvironment {
  const input: Record<string, Record<string, string | undefined>> = {};
  for (const area of Object.keys(AREAS) as AreaName[]) {
    input[area] = Object.fromEntries(Object.keys(AREAS[area]).map((name) => [name, env[name] === "" ? undefined : env[name]]));
  }
  const problems: ConfigIssue[] = [];
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith("HPKI_") && !KNOWN_VARIABLES.has(name)) {
      problems.push({
        variable: name,
        message: `${name}: unknown setting (a typo?); known: ${[...KNOWN_VARIABLES.keys()].filter((k) => k.startsWith("HPKI_")).join(", ")}`,
        messageJa: `${name}: 不明な設定です（綴りの誤り？）`,
      });
    }
  }
  const r = environmentSchema.safeParse(input);
  if (!r.success) {
    const seen = new Set<string>();
    for (const i of r.error.issues) {
      const [area, name] = i.path as [AreaName, string];
      if (seen.has(name)) continue;
      seen.add(name);
      const s = (AREAS[area] as Area)[name];
      const shown = s.secret ? "" : ` (got ${JSON.stringify(env[name])})`;
      problems.push({ variable: name, message: `${name}: expected ${s.expect.en}${shown}`, messageJa: `${name}: ${s.expect.ja}${shown && `（値: ${JSON.stringify(env[name])}）`}` });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const parsed = r.data as ParsedEnvironment;
  problems.push(...crossChecks(parsed));
  if (problems.length) throw new ConfigError(problems);
  return parsed;
}

/** Rules over several variables. */
function crossChecks(p: ParsedEnvironment): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const tls = { HPKI_SSO_TLS_PORT: p.sso.HPKI_SSO_TLS_PORT, HPKI_SSO_TLS_CERT: p.sso.HPKI_SSO_TLS_CERT, HPKI_SSO_TLS_KEY: p.sso.HPKI_SSO_TLS_KEY };
  const set = Object.entries(tls).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (set.length > 0 && set.length < 3) {
    const missing = Object.keys(tls).filter((k) => !set.includes(k));
    out.push({
      variable: missing[0],
      message: `${set.join(", ")} set but ${missing.join(", ")} not: the SSO TLS listener needs all three (or none)`,
      messageJa: `${set.join("、")} が設定されていますが ${missing.join("、")} がありません: SSO の TLS 受付には3つすべてが必要です（または一つも設定しない）`,
    });
  }
  if (p.core.NODE_ENV === "production") {
    const repo = p.urls.HPKI_REPO_URL;
    if (!repo) {
      out.push({
        variable: "HPKI_REPO_URL",
        message: "HPKI_REPO_URL: required in production (NODE_ENV=production): the public URL of the repository written into certificates",
        messageJa: "HPKI_REPO_URL: 本番モード（NODE_ENV=production）では必須です: 証明書に記載するリポジトリの公開 URL を指定してください",
      });
    } else {
      const why = certificateUrlProblem(repo);
      if (why) out.push({ variable: "HPKI_REPO_URL", message: `HPKI_REPO_URL: ${why.en} (production)`, messageJa: `HPKI_REPO_URL: ${why.ja}（本番モード）` });
    }
  }
  return out;
}
