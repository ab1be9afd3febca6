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
 * The login prompt is re-requested when the session's person holds an hcRole the client does not
 * allow, so an earlier session cannot carry a pharmacist into a doctors-only service.
 * On Node 20 oidc-provider 9 prints "Unsupported runtime"; it runs correctly (stack probe §14).
 */
import type { Knex } from "knex";
import Provider, { interactionPolicy, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import { timingSafeEqual } from "node:crypto";
import { findPerson, subjectFor } from "./accounts.ts";
import { knexAdapter } from "./adapter.ts";
import { resolveClient, secretHash } from "./clients.ts";
import { ensureSecret, ensureSigningKeys, type Sealer } from "./keys.ts";
import { renderPage, languageOf, textsFor } from "./views.ts";

export const SCOPES = ["openid", "offline_access", "profile", "hcrole", "subscriber", "organization"];

/**
 * Builds the provider for `issuer` (e.g. "https://sso.example.jp/sso"); `sealer` opens (and, on
 * first start, seals) its keys. Run keys.ts sealPlaintextRows before, on a database upgraded from
 * plaintext keys.
 */
export async function createOidcProvider(db: Knex, issuer: string, sealer: Sealer): Promise<Provider> {
  const basePath = new URL(issuer).pathname.replace(/\/$/, "");
  const jwks = await ensureSigningKeys(db, sealer);
  const cookieKey = await ensureSecret(db, sealer, "cookie-key-1");
  const pairwiseSalt = await ensureSecret(db, sealer, "pairwise-salt");

  const policy = interactionPolicy.base();
  policy.get("login")!.checks.add(
    new interactionPolicy.Check("hcrole_not_allowed", "the client does not admit the session's hcRole", async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      if (!accountId || !clientId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const [person, client] = await Promise.all([findPerson(db, accountId), resolveClient(db, issuer, clientId)]);
      if (!person || !client) return interactionPolicy.Check.REQUEST_PROMPT;
      const ok = client.allowedHcRoles.length === 0 || client.allowedHcRoles.includes(person.hcRole ?? "");
      return ok ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );

  const configuration: Configuration = {
    adapter: knexAdapter(db, issuer),
    clients: [],
    jwks: { keys: jwks as never },
    cookies: { keys: [cookieKey.toString("base64url")] },
    pkce: { required: () => true },
    scopes: SCOPES,
    subjectTypes: ["public", "pairwise"],
    claims: {
      openid: ["sub"],
      profile: ["name", "name#ja-Hani-JP"],
      hcrole: ["hcRole"],
      subscriber: ["subscriberId", "issuer_dn"],
      organization: ["organization", "organization#ja-Hani-JP"],
    },
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
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
    findAccount: async (_ctx, id) => {
      const person = await findPerson(db, id);
      if (!person) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
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
    pairwiseIdentifier: async (_ctx, accountId, client) => {
      const c = await resolveClient(db, issuer, client.clientId);
      return subjectFor(db, accountId, { clientId: client.clientId, accountMapping: c?.accountMapping ?? "pairwise" }, pairwiseSalt);
    },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 8 * 3600,
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
  // Client secrets are stored as SHA-256 (clients.ts); the metadata's client_secret is that hash.
  (provider.Client.prototype as unknown as { compareClientSecret(this: { clientSecret: string }, actual: string): boolean }).compareClientSecret =
    function compareHashed(actual: string) {
      const stored = Buffer.from(this.clientSecret, "base64url");
      return stored.length === 32 && timingSafeEqual(stored, secretHash(actual));
    };
  return provider;
}
