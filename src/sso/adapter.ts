/**
 * oidc-provider's storage on our database (its Adapter interface; table sso_oidc_payloads), for
 * Postgres. One row per model instance keyed by (kind, id) with the indexes the
 * adapter lookups need. Expired rows are invisible to `find` and removed by `purgeExpired`.
 * Clients are not stored here: the "Client" kind reads the admin-registered sso_clients table.
 * Protocol state (codes, tokens, sessions) is not audited row by row; logins, refusals, client
 * registration and links are (server.ts, clients.ts, accounts.ts).
 */
import type { Knex } from "knex";
import type { Adapter, AdapterPayload } from "oidc-provider";
import { resolveClient, type SsoClient } from "./clients.ts";

/**
 * Client metadata oidc-provider sees (OIDC Registration §2); the secret field holds the stored
 * hash. A client without a secret (the built-in portal) is public: token_endpoint_auth_method none.
 */
export function clientMetadata(c: SsoClient): AdapterPayload {
  const isPublic = c.secretSha256.length === 0;
  return {
    client_id: c.clientId,
    client_name: c.name,
    ...(isPublic ? {} : { client_secret: c.secretSha256.toString("base64url") }),
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: isPublic ? "none" : "client_secret_basic",
    subject_type: "pairwise",
    id_token_signed_response_alg: "RS256",
  };
}

/** Builds the adapter class for `db` and `issuer` (oidc-provider instantiates it once per model name). */
export function knexAdapter(db: Knex, issuer: string): new (name: string) => Adapter {
  return class KnexOidcAdapter implements Adapter {
    constructor(private readonly kind: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const row = {
        kind: this.kind,
        id,
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        uid: payload.uid ?? null,
        user_code: payload.userCode ?? null,
        expires_at: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      };
      await db("sso_oidc_payloads").insert(row).onConflict(["kind", "id"]).merge();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.kind === "Client") {
        const c = await resolveClient(db, issuer, id);
        return c && !c.disabled ? clientMetadata(c) : undefined;
      }
      return this.one({ kind: this.kind, id });
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.one({ kind: this.kind, uid });
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.one({ kind: this.kind, user_code: userCode });
    }

    async consume(id: string): Promise<void> {
      await db("sso_oidc_payloads").where({ kind: this.kind, id }).update({ consumed_at: new Date() });
    }

    async destroy(id: string): Promise<void> {
      await db("sso_oidc_payloads").where({ kind: this.kind, id }).delete();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db("sso_oidc_payloads").where({ grant_id: grantId }).delete();
    }

    private async one(where: Record<string, string>): Promise<AdapterPayload | undefined> {
      const r = await db("sso_oidc_payloads").where(where).andWhere((q) => q.whereNull("expires_at").orWhere("expires_at", ">", new Date())).first();
      if (!r) return undefined;
      const payload = (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as AdapterPayload;
      return r.consumed_at ? { ...payload, consumed: Math.floor(new Date(r.consumed_at).getTime() / 1000) } : payload;
    }
  };
}

/** Deletes expired protocol rows and login challenges expired for a day or more; returns how many. */
export async function purgeExpired(db: Knex, now: Date = new Date()): Promise<number> {
  const payloads = await db("sso_oidc_payloads").where("expires_at", "<", now).delete();
  const challenges = await db("sso_challenges").where("expires_at", "<", new Date(now.getTime() - 86400_000)).delete();
  return payloads + challenges;
}
