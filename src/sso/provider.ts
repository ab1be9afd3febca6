/**
 * The OpenID provider of the SSO center (DESIGN §7): oidc-provider (panva) configured for
 * admin-registered confidential clients, authorization code + PKCE (required for every client),
 * refresh tokens (scope offline_access), RP-initiated logout, storage on our database (adapter.ts),
 * RS256 signing keys, cookie keys and the pairwise salt from the database, opened with the SSO
 * center's HSM sealing key (keys.ts, sealer.ts). `sub` is the account id the
 * service confirmed, else a pairwise pseudonym (accounts.ts subjectFor). Claims by scope:
 *
 * | scope        | claims |
 * |--------------|--------|
 * | profile      | name (romaji, subject CN), name#ja-Hani-JP (kanji, SAN directoryName CN) |
 * | hcrole       | hcRole (e.g. "Medical Doctor") |
 * | subscriber   | subscriberId (subject serialNumber), issuer (issuing CA DN) |
 * | organization | organization, organization#ja-Hani-JP |
 *
 * Scopes beyond a client's default scopes (subscriber and offline_access unless registered) are
 * granted only after the person's consent (consent.ts, server.ts). Access tokens are opaque, or
 * JWTs (RFC 9068) for a client registered with accessTokenFormat "jwt" (resourceIndicators below).
 *
 * The login prompt is re-requested when the session's person holds an hcRole the client does not
 * allow, so an earlier session cannot carry a pharmacist into a doctors-only service.
 * On Node 20 oidc-provider 9 prints "Unsupported runtime"; it runs correctly (stack probe §14).
 */
import type { Knex } from "knex";
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import { findPerson, serviceAccountId, type Person } from "./accounts.ts";
import { decodeClientSecret, knexAdapter } from "./adapter.ts";
import type { ClientDirectory } from "./client-directory.ts";
import { clientSecretMatches, SCOPES } from "./clients.ts";
import { CookieKeys } from "./cookie-keys.ts";
import { ensureSecret, ensureSigningKeys, ID_TOKEN_TTL_S, SIGNING_ALGS, type Sealer } from "./keys.ts";
import { parseAccountId, type LoginCertificates } from "./login-binding.ts";
import { Subjects } from "./subjects.ts";
import { renderPage, languageOf, textsFor } from "./views.ts";

export { SCOPES } from "./clients.ts";

/**
 * Authentication context classes (OIDC Core §2 acr; issue 14 §3):
 * - ACR_CARD_PIN: the card signed the login challenge with its authentication key after the card
 *   checked the PIN (amr ["hwk", "mfa", "pin", "sc"], RFC 8176 §2);
 * - ACR_CERTIFICATE: TLS client authentication (or a trusted proxy's header) with an HPKI
 *   authentication certificate; we cannot see whether a card or a PIN was involved, so no amr.
 * ACR_CARD_PIN satisfies a request for either.
 */
export const ACR_CARD_PIN = "urn:hpki-ca:acr:card-pin";
export const ACR_CERTIFICATE = "urn:hpki-ca:acr:certificate";
export const ACR_VALUES = [ACR_CARD_PIN, ACR_CERTIFICATE];
export const AMR_CARD_PIN = ["hwk", "mfa", "pin", "sc"];
/**
 * Access-token lifetime, seconds. Opaque tokens end with the login's certificate (findAccount);
 * a JWT access token (RFC 9068) is checked by the service's API alone, so this is the bound from
 * a revocation to its JWTs no longer being valid.
 */
export const ACCESS_TOKEN_TTL_S = 600;

/** Session lifetimes: idle timeout (each authorization with the session extends it) and the cap from the login. */
export interface SessionTimes {
  /** Seconds without an authorization after which the session ends (default 1800). */
  idleTimeoutS: number;
  /** Seconds from the login after which the session ends regardless (default 28,800). */
  maxS: number;
}

/** What the provider needs besides the database and keys. */
export interface ProviderDeps {
  /** Login certificates: every use of a session or token re-checks its certificate (login-binding.ts). */
  logins: LoginCertificates;
  /** The registered clients (the process's copy, client-directory.ts). */
  clients: ClientDirectory;
  session?: Partial<SessionTimes>;
}

/** The acr values a request asks for (acr_values, or an essential acr in the claims parameter), or undefined. */
export function requestedAcrs(params: Record<string, unknown>): string[] | undefined {
  if (typeof params.acr_values === "string" && params.acr_values.trim()) return params.acr_values.trim().split(/\s+/);
  if (typeof params.claims !== "string") return undefined;
  try {
    const acr = (JSON.parse(params.claims) as { id_token?: { acr?: { essential?: boolean; value?: string; values?: string[] } } }).id_token?.acr;
    if (!acr?.essential) return undefined;
    return acr.values ?? (acr.value ? [acr.value] : undefined);
  } catch {
    return undefined;
  }
}

/** Whether a login of class `acr` meets `requested` (undefined = anything does). */
export const acrSatisfies = (acr: string | undefined, requested: string[] | undefined): boolean =>
  !requested || requested.includes(acr ?? "") || (acr === ACR_CARD_PIN && requested.includes(ACR_CERTIFICATE));

/**
 * The claims each scope releases (OIDC Core §5.4; the table in the module comment). Consent
 * (consent.ts) maps a claim requested on its own (the claims parameter, §5.5) to its scope here.
 */
export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  openid: ["sub", "acr", "amr", "auth_time", "sid", "service_account_id"],
  profile: ["name", "name#ja-Hani-JP"],
  hcrole: ["hcRole"],
  subscriber: ["subscriberId", "issuer_dn"],
  organization: ["organization", "organization#ja-Hani-JP"],
};

/**
 * Builds the provider for `issuer` (e.g. "https://sso.example.jp/sso"); `sealer` opens (and, on
 * first start, seals) its keys. Run keys.ts sealPlaintextRows before, on a database upgraded from
 * plaintext keys.
 */
export async function createOidcProvider(db: Knex, issuer: string, sealer: Sealer, deps: ProviderDeps): Promise<{ provider: Provider; subjects: Subjects }> {
  const basePath = new URL(issuer).pathname.replace(/\/$/, "");
  const jwks = await ensureSigningKeys(db, sealer, undefined, SIGNING_ALGS);
  const cookieKey = await ensureSecret(db, sealer, "cookie-key-1");
  const pairwiseSalt = await ensureSecret(db, sealer, "pairwise-salt");
  const subjects = new Subjects(db, pairwiseSalt);
  const times: SessionTimes = { idleTimeoutS: deps.session?.idleTimeoutS ?? 1800, maxS: deps.session?.maxS ?? 8 * 3600 };
  const { NO_NEED_TO_PROMPT, REQUEST_PROMPT } = interactionPolicy.Check;

  // A person is read once per request: the policy checks and findAccount (called more than once
  // by oidc-provider while it builds the claims) ask for the same row.
  const personsByRequest = new WeakMap<object, Map<string, Promise<Person | undefined>>>();
  const personOf = (ctx: object | undefined, personId: string): Promise<Person | undefined> => {
    if (!ctx) return findPerson(db, personId);
    let m = personsByRequest.get(ctx);
    if (!m) personsByRequest.set(ctx, (m = new Map()));
    let p = m.get(personId);
    if (!p) m.set(personId, (p = findPerson(db, personId)));
    return p;
  };

  const policy = interactionPolicy.base();
  const login = policy.get("login")!;
  // The session's certificate no longer holds (revoked, on hold, expired; findAccount found no
  // account): a new card login, or login_required for prompt=none.
  login.checks.add(new interactionPolicy.Check("login_no_longer_valid", "the certificate of the session's login is no longer valid", (ctx) =>
    ctx.oidc.session?.accountId && !ctx.oidc.account ? REQUEST_PROMPT : NO_NEED_TO_PROMPT), 0);
  // acr_values (voluntary in OIDC Core §3.1.2.1, honoured here): a weaker session logs in again.
  login.checks.add(new interactionPolicy.Check("acr_values_not_met", "the session's acr does not meet acr_values", (ctx) => {
    const session = ctx.oidc.session;
    if (!session?.accountId || ctx.oidc.result?.login) return NO_NEED_TO_PROMPT;
    return acrSatisfies(session.acr, requestedAcrs(ctx.oidc.params as Record<string, unknown>)) ? NO_NEED_TO_PROMPT : REQUEST_PROMPT;
  }));
  login.checks.add(
    new interactionPolicy.Check("hcrole_not_allowed", "the client does not admit the session's hcRole", async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      if (!accountId || !clientId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const [person, client] = await Promise.all([personOf(ctx, parseAccountId(accountId).personId), deps.clients.get(clientId)]);
      if (!person || !client) return interactionPolicy.Check.REQUEST_PROMPT;
      const ok = client.allowedHcRoles.length === 0 || client.allowedHcRoles.includes(person.hcRole ?? "");
      return ok ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );

  const configuration: Configuration = {
    adapter: knexAdapter(db, deps.clients),
    clients: [],
    jwks: { keys: jwks as never },
    // Keygrip's construction with a cheaper constant-time compare (cookie-keys.ts); oidc-provider
    // hands a non-array `keys` to koa's cookies as is.
    cookies: { keys: new CookieKeys([cookieKey.toString("base64url")]) as never },
    pkce: { required: () => true },
    scopes: [...SCOPES],
    subjectTypes: ["pairwise"],
    // Only what works (issue 14 §5): code flow, secrets compared as hashes (so no
    // client_secret_jwt), assertions signed with a client's registered keys (private_key_jwt,
    // RFC 7523), public clients (the portal) with PKCE.
    responseTypes: ["code"],
    clientAuthMethods: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
    acrValues: ACR_VALUES,
    claims: SCOPE_CLAIMS as Configuration["claims"],
    conformIdTokenClaims: false,
    // Refresh tokens rotate at every use; presenting a used one revokes the whole grant (reuse
    // detection, RFC 9700 §4.14.2).
    rotateRefreshToken: () => true,
    // Outgoing requests are only logout tokens to back-channel URIs an administrator registered;
    // hospital services live on private addresses, which oidc-provider's SSRF guard would refuse.
    fetch: (url, options) => {
      if (options) delete (options as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, options);
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      claimsParameter: { enabled: true },
      introspection: { enabled: true },
      // JWT access tokens (RFC 9068) for clients registered with accessTokenFormat "jwt": their
      // tokens are for their registered audience (RFC 8707 resource indicator, the default when the
      // request names none) and signed with the provider's key for the client's ID-token alg, typ
      // at+jwt. Such a token is for the service's API, not for userinfo (the claims are in the ID
      // token). Opaque clients name no resource and get tokens for userinfo as before.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          const c = client && (await deps.clients.get(client.clientId));
          return c?.accessTokenFormat === "jwt" ? (c.accessTokenAudience ?? undefined) : undefined;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource, client) => {
          const c = await deps.clients.get(client.clientId);
          if (!c || c.accessTokenFormat !== "jwt" || c.accessTokenAudience !== resource) throw new errors.InvalidTarget();
          return {
            scope: [...(c.allowedScopes ?? SCOPES)].filter((s) => s !== "openid" && s !== "offline_access").join(" "),
            audience: resource,
            accessTokenTTL: ACCESS_TOKEN_TTL_S,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: c.idTokenAlg } },
          };
        },
      },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: KoaContextWithOIDC, form: string) => {
          const lang = languageOf(ctx.query, ctx.get("cookie"));
          const t = textsFor(lang);
          const button = form.replace("</form>", `<button type="submit" form="op.logoutForm" name="logout" value="yes">${t.logoutButton}</button></form>`);
          ctx.type = "html";
          ctx.body = renderPage("message", lang, { message: t.logoutQuestion, form: button });
        },
        postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => {
          const lang = languageOf(ctx.query, ctx.get("cookie"));
          ctx.type = "html";
          ctx.body = renderPage("message", lang, { message: textsFor(lang).loggedOut });
        },
      },
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `${basePath}/interaction/${interaction.uid}`,
    },
    // Every authorization, code or refresh-token exchange and userinfo call comes here: the login's
    // certificate is validated again (login-binding.ts); a failure is "no such account".
    findAccount: async (ctx, id) => {
      const check = await deps.logins.check(id);
      if (!check.ok) return undefined;
      const person = await personOf(ctx, check.personId);
      if (!person) return undefined;
      const clientId = ctx?.oidc?.client?.clientId;
      const client = clientId ? await deps.clients.get(clientId) : undefined;
      const linked = client ? await serviceAccountId(db, person.id, client) : undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          service_account_id: linked,
          name: person.nameLatin ?? undefined,
          "name#ja-Hani-JP": person.nameKanji ?? undefined,
          hcRole: person.hcRole ?? undefined,
          subscriberId: person.subscriberId,
          issuer_dn: person.issuer,
          organization: person.organizationLatin ?? undefined,
          "organization#ja-Hani-JP": person.organizationKanji ?? undefined,
        }),
      };
    },
    // The sub a client has seen never changes (subjects.ts); links add service_account_id.
    pairwiseIdentifier: (_ctx, accountId, client) => subjects.subFor(parseAccountId(accountId).personId, client.clientId),
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL_S,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_TTL_S,
      Interaction: 600,
      // Idle timeout: the session is saved again at every authorization that uses it.
      Session: (_ctx, session) => {
        const left = session.loginTs ? session.loginTs + times.maxS - Math.floor(Date.now() / 1000) : times.maxS;
        return Math.max(1, Math.min(times.idleTimeoutS, left));
      },
      Grant: 14 * 86400,
      RefreshToken: 14 * 86400,
    },
    renderError: (ctx, out) => {
      const lang = languageOf(ctx.query, ctx.get("cookie"));
      ctx.type = "html";
      ctx.body = renderPage("refused", lang, { message: out.error_description ?? out.error, code: out.error });
    },
  };
  const provider = new Provider(issuer, configuration);
  // Client secrets are stored as SHA-256 (clients.ts); the metadata's client_secret carries that
  // hash and, during a rotation's overlap, the previous one (adapter.ts encodeClientSecret).
  (provider.Client.prototype as unknown as { compareClientSecret(this: { clientSecret: string }, actual: string): boolean }).compareClientSecret =
    function compareHashed(actual: string) {
      return clientSecretMatches(decodeClientSecret(this.clientSecret), actual);
    };
  return { provider, subjects };
}
