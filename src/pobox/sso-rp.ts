/**
 * The PO box as a relying party of our SSO center (issue 15 §5): professionals and facility staff
 * sign in with their card there (OIDC code flow with PKCE, openid-client); the box maps the
 * person to their account by the `subscriber` claim (the subscriber id of their certificates).
 * A browser gets a session; the CLI (`hpki pobox login`, `?client=cli`) gets a bearer token
 * whose SHA-256 only is stored (pobox_api_tokens).
 */
import { createHash, randomBytes } from "node:crypto";
import type { Knex } from "knex";
import * as oidc from "openid-client";
import { appendAudit } from "../audit/log.ts";
import { accountFromRow, recordSignIn, type Account } from "./accounts.ts";
import { PoboxError } from "./errors.ts";

export const POBOX_SCOPE = "openid profile hcrole subscriber organization";
/** Lifetime of a CLI bearer token. */
export const API_TOKEN_TTL_MS = 8 * 3600_000;

export interface RpSettings {
  issuer: string;
  clientId: string;
  clientSecret: string | undefined;
  redirectUri: string;
}

/** Lazy discovery of the SSO center (it may start after the box). */
export class SsoRelyingParty {
  private config: Promise<oidc.Configuration> | undefined;
  constructor(private readonly s: RpSettings) {}

  private configuration(): Promise<oidc.Configuration> {
    const insecure = new URL(this.s.issuer).protocol === "http:";
    this.config ??= oidc.discovery(new URL(this.s.issuer), this.s.clientId, this.s.clientSecret, undefined, insecure ? { execute: [oidc.allowInsecureRequests] } : undefined)
      .catch((e) => {
        this.config = undefined;
        throw e;
      });
    return this.config;
  }

  /** The authorization URL and what the callback needs back (keep in the session). */
  async start(): Promise<{ url: string; state: string; verifier: string; nonce: string }> {
    const config = await this.configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.s.redirectUri, scope: POBOX_SCOPE, state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    return { url: url.toString(), state, verifier, nonce };
  }

  /** Redeems the code at `callbackUrl`; returns the person's claims (ID token and userinfo). @throws on any OIDC failure. */
  async finish(callbackUrl: URL, expected: { state: string; verifier: string; nonce: string }): Promise<{ subscriberId: string; issuer?: string; name?: string; hcRole?: string; organization?: string }> {
    const config = await this.configuration();
    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: expected.verifier, expectedState: expected.state, expectedNonce: expected.nonce });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error("no ID token");
    const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    const c = { ...idClaims, ...info } as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
    const subscriberId = str(c.subscriberId);
    if (!subscriberId) throw new PoboxError("UNAUTHENTICATED", "the SSO center did not name the subscriber (scope subscriber not granted to the PO box)", "SSO センターから加入者IDが提供されませんでした");
    return { subscriberId, issuer: str(c.issuer_dn), name: str(c.name), hcRole: str(c.hcRole), organization: str(c.organization) };
  }
}

const tokenHash = (t: string) => createHash("sha256").update(t, "utf8").digest();

/** A new bearer token for `account`, valid API_TOKEN_TTL_MS from `at` (only its SHA-256 is stored). */
export async function issueApiToken(trx: Knex.Transaction, account: Account, at: Date): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  await trx("pobox_api_tokens").insert({ token_sha256: tokenHash(token), account_id: account.id, created_at: at, expires_at: new Date(at.getTime() + API_TOKEN_TTL_MS) });
  return token;
}

/** Records the sign-in (account upsert + audit) and, for the CLI, issues a bearer token. */
export async function completeSignIn(db: Knex, person: Parameters<typeof recordSignIn>[1], cli: boolean): Promise<{ account: Account; token?: string }> {
  return db.transaction(async (trx) => {
    const at = new Date();
    const account = await recordSignIn(trx, person, at);
    let token: string | undefined;
    if (cli) token = await issueApiToken(trx, account, at);
    await appendAudit(trx, [{ actor: `person:${account.subscriberId}`, role: "pobox", action: "pobox.signed-in", objectType: "pobox_account", objectId: `person:${account.subscriberId}`, details: { via: "sso", client: cli ? "cli" : "web", hcRole: person.hcRole } }]);
    return { account, token };
  });
}

/** The account of a bearer token, or undefined when unknown or expired. */
export async function accountOfToken(db: Knex, token: string): Promise<Account | undefined> {
  const r = await db("pobox_api_tokens as t").join("pobox_accounts as a", "a.id", "t.account_id")
    .where("t.token_sha256", tokenHash(token)).where("t.expires_at", ">", new Date()).first("a.*");
  return r ? accountFromRow(r) : undefined;
}
