/**
 * oidc-provider's storage on our database (its Adapter interface; table sso_oidc_payloads), for
 * Postgres. One row per model instance keyed by (kind, id) with the indexes the
 * adapter lookups need. Expired rows are invisible to `find` and removed by `purgeExpired`.
 * Clients are not stored here: the "Client" kind reads the admin-registered clients through the
 * process's ClientDirectory (client-directory.ts).
 * Protocol state (codes, tokens, sessions) is not audited row by row; logins, refusals, client
 * registration and links are (server.ts, clients.ts, accounts.ts).
 *
 * Token values at rest (issue 10 §6): for the bearer kinds (access and refresh tokens,
 * authorization codes, …) the row key is base64url SHA-256 of the token value and the payload is
 * stored without its `jti` (the value), which find() restores from the value presented. A
 * database reader sees no usable token. Rows also carry the payload's accountId (column
 * account_id) so the revocation watch finds a login's sessions and grants.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { Adapter, AdapterPayload } from "oidc-provider";
import { prepared, runPrepared, type PreparedStatement } from "../store/prepared.ts";
import type { ClientDirectory } from "./client-directory.ts";
import type { SsoClient } from "./clients.ts";

/**
 * The client_secret metadata oidc-provider compares against (provider.ts compareClientSecret): the
 * stored hash (base64url), then — during a rotation's overlap — ".<previous hash>.<until, epoch s>".
 */
export function encodeClientSecret(c: SsoClient): string {
  const cur = c.secretSha256.toString("base64url");
  const p = c.previousSecret;
  return p && p.until.getTime() > Date.now() ? `${cur}.${p.sha256.toString("base64url")}.${Math.floor(p.until.getTime() / 1000)}` : cur;
}

/** Inverse of {@link encodeClientSecret}. */
export function decodeClientSecret(v: string): Pick<SsoClient, "secretSha256" | "previousSecret"> {
  const [cur, prev, until] = v.split(".");
  return {
    secretSha256: Buffer.from(cur, "base64url"),
    previousSecret: prev && until ? { sha256: Buffer.from(prev, "base64url"), until: new Date(Number(until) * 1000) } : null,
  };
}

/**
 * Client metadata oidc-provider sees (OIDC Registration §2); the secret field holds the stored
 * hash. A client without a secret (the built-in portal) is public: token_endpoint_auth_method none.
 */
export function clientMetadata(c: SsoClient): AdapterPayload {
  const isPublic = c.secretSha256.length === 0;
  // A client with registered public keys authenticates with a signed assertion (RFC 7523 §2.2).
  const keyAuth = c.jwksUri !== null || c.jwks !== null;
  const auth = isPublic ? "none" : keyAuth ? "private_key_jwt" : "client_secret_basic";
  return {
    client_id: c.clientId,
    client_name: c.name,
    ...(auth === "client_secret_basic" ? { client_secret: encodeClientSecret(c) } : {}),
    ...(c.jwksUri ? { jwks_uri: c.jwksUri } : {}),
    ...(c.jwks ? { jwks: c.jwks } : {}),
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: auth,
    subject_type: "pairwise",
    id_token_signed_response_alg: c.idTokenAlg,
    // auth_time in every ID token (issue 14 §3).
    require_auth_time: true,
    // oidc-provider answers invalid_scope to a request for any other scope.
    ...(c.allowedScopes ? { scope: c.allowedScopes.join(" ") } : {}),
    ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
  };
}

/** Kinds whose id is a bearer value: stored under its hash, never in the clear. */
const BEARER_KINDS = new Set(["AccessToken", "RefreshToken", "AuthorizationCode", "ClientCredentials", "DeviceCode", "BackchannelAuthenticationRequest", "PushedAuthorizationRequest"]);

/** Row key of a bearer value (base64url SHA-256). */
export const tokenKey = (value: string): string => createHash("sha256").update(value, "utf8").digest("base64url");

const COLUMNS = "kind, id, payload, account_id, grant_id, uid, user_code, expires_at";
const LIVE = "(expires_at IS NULL OR expires_at > $3)";
// Named statements (src/store/prepared.ts): a login runs about twenty of these.
const SQL = {
  upsert: prepared("sso_oidc_upsert", `INSERT INTO sso_oidc_payloads (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, account_id = excluded.account_id, grant_id = excluded.grant_id,
    uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`),
  byId: prepared("sso_oidc_by_id", `SELECT payload, consumed_at FROM sso_oidc_payloads WHERE kind = $1 AND id = $2 AND ${LIVE} LIMIT 1`),
  byUid: prepared("sso_oidc_by_uid", `SELECT payload, consumed_at FROM sso_oidc_payloads WHERE kind = $1 AND uid = $2 AND ${LIVE} LIMIT 1`),
  byUserCode: prepared("sso_oidc_by_user_code", `SELECT payload, consumed_at FROM sso_oidc_payloads WHERE kind = $1 AND user_code = $2 AND ${LIVE} LIMIT 1`),
  consume: prepared("sso_oidc_consume", "UPDATE sso_oidc_payloads SET consumed_at = $3 WHERE kind = $1 AND id = $2"),
  destroy: prepared("sso_oidc_destroy", "DELETE FROM sso_oidc_payloads WHERE kind = $1 AND id = $2"),
  revokeByGrantId: prepared("sso_oidc_revoke_grant", "DELETE FROM sso_oidc_payloads WHERE grant_id = $1"),
};

/** Builds the adapter class for `db` and `clients` (oidc-provider instantiates it once per model name). */
export function knexAdapter(db: Knex, clients: ClientDirectory): new (name: string) => Adapter {
  return class KnexOidcAdapter implements Adapter {
    private readonly hashed: boolean;
    constructor(private readonly kind: string) {
      this.hashed = BEARER_KINDS.has(kind);
    }

    private key(id: string): string {
      return this.hashed ? tokenKey(id) : id;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const stored = this.hashed ? { ...payload, jti: undefined } : payload;
      await runPrepared(db, SQL.upsert, [
        this.kind, this.key(id), JSON.stringify(stored), payload.accountId ?? null, payload.grantId ?? null, payload.uid ?? null, payload.userCode ?? null,
        expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      ]);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.kind === "Client") {
        const c = await clients.get(id);
        return c && !c.disabled ? clientMetadata(c) : undefined;
      }
      const p = await this.one(SQL.byId, this.key(id));
      return p && this.hashed ? { ...p, jti: id } : p;
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.one(SQL.byUid, uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.one(SQL.byUserCode, userCode);
    }

    async consume(id: string): Promise<void> {
      await runPrepared(db, SQL.consume, [this.kind, this.key(id), new Date()]);
    }

    async destroy(id: string): Promise<void> {
      await runPrepared(db, SQL.destroy, [this.kind, this.key(id)]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await runPrepared(db, SQL.revokeByGrantId, [grantId]);
    }

    private async one(statement: PreparedStatement, value: string): Promise<AdapterPayload | undefined> {
      const [r] = (await runPrepared(db, statement, [this.kind, value, new Date()])).rows;
      if (!r) return undefined;
      const payload = (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as AdapterPayload;
      return r.consumed_at ? { ...payload, consumed: Math.floor(new Date(r.consumed_at as string).getTime() / 1000) } : payload;
    }
  };
}

/** Deletes expired protocol rows and login challenges expired for a day or more; returns how many. */
export async function purgeExpired(db: Knex, now: Date = new Date()): Promise<number> {
  const payloads = await db("sso_oidc_payloads").where("expires_at", "<", now).delete();
  const challenges = await db("sso_challenges").where("expires_at", "<", new Date(now.getTime() - 86400_000)).delete();
  return payloads + challenges;
}
