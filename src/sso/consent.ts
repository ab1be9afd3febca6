/**
 * Consent for scopes beyond a client's registered defaults (issue 14 §7; OIDC Core §3.1.2.4), and
 * for claims requested one by one, which count as their scope (scopesOfClaims). An
 * admin-registered first-party service gets its default scopes (clients.ts DEFAULT_SCOPES, or its
 * registered list) without a question; anything else it asks for — `subscriber`, which undoes the
 * pairwise sub, `offline_access`, whose refresh token outlives the session — is shown to the
 * person on the consent page. An approval is remembered per (person, client) as the set of
 * approved scopes (table sso_consents), so the page comes back only for a scope not yet approved;
 * within a session oidc-provider's Grant records what was granted.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { SsoClient } from "./clients.ts";

/** The scopes of `requested` that the person must approve: neither a default of `client` nor approved before. */
export function scopesNeedingConsent(requested: readonly string[], client: Pick<SsoClient, "defaultScopes">, approved: readonly string[]): string[] {
  const silent = new Set<string>([...client.defaultScopes, ...approved, "openid"]);
  return [...new Set(requested)].filter((s) => !silent.has(s));
}

/**
 * The scopes whose claims `claims` are (`scopeClaims`: scope → claims it releases), for claims a
 * client requests one by one (the claims parameter, OIDC Core §5.5): such a claim needs the same
 * consent as its scope, or `claims={"id_token":{"subscriberId":null}}` would release the
 * subscriber id — which undoes the pairwise sub — without the person being asked. A claim of no
 * scope releases nothing (no account has it) and needs no scope.
 */
export function scopesOfClaims(claims: readonly string[], scopeClaims: Readonly<Record<string, readonly string[]>>): string[] {
  const scopes = new Set<string>();
  for (const claim of claims) {
    for (const [scope, released] of Object.entries(scopeClaims)) if (released.includes(claim)) scopes.add(scope);
  }
  return [...scopes];
}

/** The scopes `personId` approved for `clientId` before (empty when none). */
export async function approvedScopes(db: Knex, personId: string, clientId: string): Promise<string[]> {
  const r = await db("sso_consents").where({ person_id: personId, client_id: clientId }).first("scopes");
  if (!r) return [];
  return typeof r.scopes === "string" ? (JSON.parse(r.scopes) as string[]) : (r.scopes as string[]);
}

/**
 * Records the person's decision on interaction `uid` in one transaction with its audit record:
 * an approval adds `scopes` to the remembered set ("sso.consent-granted"); a refusal changes
 * nothing remembered ("sso.consent-denied").
 */
export async function recordConsent(db: Knex, decision: { personId: string; clientId: string; scopes: string[]; approved: boolean; uid: string }): Promise<void> {
  const { personId, clientId, scopes, approved, uid } = decision;
  await db.transaction(async (trx) => {
    if (approved) {
      const before = await trx("sso_consents").where({ person_id: personId, client_id: clientId }).forUpdate().first("scopes");
      const prior: string[] = before ? (typeof before.scopes === "string" ? JSON.parse(before.scopes) : before.scopes) : [];
      const all = [...new Set([...prior, ...scopes])];
      await trx("sso_consents").insert({ person_id: personId, client_id: clientId, scopes: JSON.stringify(all), granted_at: new Date() })
        .onConflict(["person_id", "client_id"]).merge();
    }
    await appendAudit(trx, [{
      actor: personId, role: "sso", action: approved ? "sso.consent-granted" : "sso.consent-denied",
      objectType: "sso-interaction", objectId: uid, details: { clientId, scopes },
    }]);
  });
}

/** A remembered approval, as the portal lists it. */
export interface RememberedConsent {
  clientId: string;
  scopes: string[];
  grantedAt: Date;
}

/** The approvals `personId` gave, by client id. */
export async function consentsOf(db: Knex, personId: string): Promise<RememberedConsent[]> {
  const rows = await db("sso_consents").where({ person_id: personId }).orderBy("client_id");
  return rows.map((r) => ({ clientId: r.client_id, scopes: typeof r.scopes === "string" ? JSON.parse(r.scopes) : r.scopes, grantedAt: new Date(r.granted_at) }));
}

/**
 * The person withdraws their approval for `clientId` (portal), in one transaction with its audit
 * record ("sso.consent-withdrawn"): the remembered scopes are forgotten and the person's grants
 * to that client end with every code and token of them (refresh tokens included, RFC 7009 §2.1
 * semantics), so the client must ask again. Returns whether there was an approval.
 */
export async function withdrawConsent(db: Knex, personId: string, clientId: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const removed = await trx("sso_consents").where({ person_id: personId, client_id: clientId }).delete();
    if (removed === 0) return false;
    // Grant rows carry the login's account id: "<person id>/<certificate>" (login-binding.ts).
    const grantIds = (await trx("sso_oidc_payloads").where({ kind: "Grant" })
      .andWhere((q) => q.where("account_id", personId).orWhereRaw("starts_with(account_id, ?)", [`${personId}/`]))
      .andWhereRaw("payload->>'clientId' = ?", [clientId]).select("id")).map((g) => String(g.id));
    if (grantIds.length) {
      await trx("sso_oidc_payloads").whereIn("grant_id", grantIds).delete();
      await trx("sso_oidc_payloads").where({ kind: "Grant" }).whereIn("id", grantIds).delete();
    }
    await appendAudit(trx, [{ actor: personId, role: "sso", action: "sso.consent-withdrawn", objectType: "sso-client", objectId: clientId, details: { grantsEnded: grantIds.length } }]);
    return true;
  });
}
