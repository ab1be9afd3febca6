/**
 * Relying parties (clinical systems) of the SSO center, registered by an administrator
 * (`hpki sso clients add`). A client has redirect URIs, the hcRoles allowed to log in, and an
 * account-mapping mode. Its secret — 32 bytes from the CSRPNG, base64url — is returned once; the
 * database keeps only its SHA-256 (a fast hash suffices for a uniformly random 256-bit value) and
 * the provider compares hashes in constant time (see provider.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Knex } from "knex";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import { jaMessage, parseInput } from "../pipeline/errors.ts";
import { toBuffer } from "../store/rows.ts";
import { SsoRequestError } from "./errors.ts";

export type AccountMapping = "linked" | "pairwise";

/** The scopes the SSO center offers (claims per scope: provider.ts). */
export const SCOPES = ["openid", "offline_access", "profile", "hcrole", "subscriber", "organization"] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * Scopes granted without asking the person when a client registered no defaults of its own
 * (issue 14 §7): what an admin-registered first-party service needs to log a professional in.
 * `subscriber` (the subscriber id undoes the pairwise sub) and `offline_access` (tokens that
 * outlive the session) need the person's consent unless the client's registration lists them.
 */
export const DEFAULT_SCOPES: readonly Scope[] = ["openid", "profile", "hcrole", "organization"];

/**
 * Postgres NOTIFY channel raised (on commit) when a client is registered, changed, disabled or its
 * secret rotated; the payload is the client id. Every SSO process's ClientDirectory listens on it
 * and forgets its copy of that client (client-directory.ts).
 */
export const CLIENTS_NOTIFY_CHANNEL = "hpki_sso_clients";

/** This process's side of the notice: told at its own commit, before PostgreSQL's notice comes back. */
const committedHere = new EventEmitter().setMaxListeners(0);

/**
 * Calls `listener(clientId)` when a change of a client made by this process has committed, so the
 * process that made it (the console, a CLI command, a test) reads its own write at once; other
 * processes learn through CLIENTS_NOTIFY_CHANNEL. Returns the function that stops listening.
 */
export function onClientChangeCommitted(listener: (clientId: string) => void): () => void {
  committedHere.on("committed", listener);
  return () => void committedHere.off("committed", listener);
}

/** Raises CLIENTS_NOTIFY_CHANNEL for `clientId` inside `trx` (delivered when it commits), and tells this process at the commit. */
async function notifyClientChanged(trx: Knex.Transaction, clientId: string): Promise<void> {
  await trx.raw("SELECT pg_notify(?, ?)", [CLIENTS_NOTIFY_CHANNEL, clientId]);
  trx.executionPromise.then(() => committedHere.emit("committed", clientId), () => undefined);
}

/** Access-token formats: opaque (introspection) or a JWT the service's API verifies itself (RFC 9068). */
export type AccessTokenFormat = "opaque" | "jwt";

/** A registered client as the SSO center uses it. */
export interface SsoClient {
  clientId: string;
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  /** hcRole strings (NFC) allowed to log in; empty = any role. */
  allowedHcRoles: string[];
  accountMapping: AccountMapping;
  /** Scopes the service may ask for (openid always), or null = every scope. */
  allowedScopes: Scope[] | null;
  /** Scopes granted without the person's consent (DEFAULT_SCOPES unless registered). */
  defaultScopes: Scope[];
  /** Access-token format, and for "jwt" the audience (RFC 8707 resource indicator) of the tokens. */
  accessTokenFormat: AccessTokenFormat;
  accessTokenAudience: string | null;
  /** OIDC Back-Channel Logout 1.0 endpoint of the service, or null. */
  backchannelLogoutUri: string | null;
  /** ID-token signing algorithm (default RS256). */
  idTokenAlg: "RS256" | "PS256" | "ES256";
  /** Public keys for private_key_jwt client authentication (either), else the secret is used. */
  jwksUri: string | null;
  jwks: { keys: Record<string, unknown>[] } | null;
  secretSha256: Buffer;
  /** The secret before the last rotation and until when it is still accepted (issue 14 §8), or null. */
  previousSecret: { sha256: Buffer; until: Date } | null;
  disabled: boolean;
}

/** Default overlap of a rotated client secret, seconds: the previous secret stays valid this long. */
export const DEFAULT_SECRET_OVERLAP_S = 86_400;

const httpUrl = z.string().refine((u) => {
  try {
    const p = new URL(u);
    return (p.protocol === "https:" || p.protocol === "http:") && !p.hash;
  } catch {
    return false;
  }
}, jaMessage("must be an absolute http(s) URL without a fragment", "http:// または https:// で始まる絶対URL（# を含まない）を入力してください。"));

const NewClientFields = z.strictObject({
  clientId: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, jaMessage("3–64 characters A-Z a-z 0-9 . _ -", "クライアントIDは半角英数字と「. _ -」の3〜64文字で入力してください。")),
  name: z.string().min(1).max(200),
  redirectUris: z.array(httpUrl).min(1, jaMessage("at least one redirect URI", "リダイレクトURIを1つ以上入力してください。")),
  postLogoutRedirectUris: z.array(httpUrl).default([]),
  allowedHcRoles: z.array(z.string().min(1)).default([]),
  accountMapping: z.enum(["linked", "pairwise"]).default("linked"),
  /** Where logout tokens are posted (OIDC Back-Channel Logout 1.0 §2.2); absent = no notices. */
  backchannelLogoutUri: httpUrl.nullish(),
  /** Scopes the service may ask for; absent/null = every scope. A request for another gets invalid_scope. */
  allowedScopes: z.array(z.enum(SCOPES)).nullish(),
  /** Scopes granted without asking the person; absent/null = DEFAULT_SCOPES. Others need consent. */
  defaultScopes: z.array(z.enum(SCOPES)).nullish(),
  /** "jwt": access tokens are JWTs (RFC 9068) for accessTokenAudience; absent/null = opaque. */
  accessTokenFormat: z.enum(["opaque", "jwt"]).nullish(),
  /** The audience of JWT access tokens: the service's API (an absolute URI, RFC 8707 §2). */
  accessTokenAudience: httpUrl.nullish(),
  /** ID-token signing algorithm (OIDC Registration §2 id_token_signed_response_alg); absent = RS256. */
  idTokenAlg: z.enum(["RS256", "PS256", "ES256"]).nullish(),
  /** The client's public keys for private_key_jwt (RFC 7523): a URL … */
  jwksUri: httpUrl.nullish(),
  /** … or the JWK Set itself (public keys only). */
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown()).refine((k) => typeof k.kty === "string" && !("d" in k), jaMessage("public JWKs only", "公開鍵の JWK だけを登録してください。"))).min(1) }).nullish(),
});
const jwtNeedsAudience = (c: { accessTokenFormat?: string | null; accessTokenAudience?: string | null }) => c.accessTokenFormat !== "jwt" || !!c.accessTokenAudience;
const NO_AUDIENCE = { en: "JWT access tokens need an audience (accessTokenAudience: the service's API URL)", ja: "JWT アクセストークンには audience（サービスのAPIのURL）が必要です" };
export const NewClientSchema = NewClientFields.refine(jwtNeedsAudience, { message: `${NO_AUDIENCE.en} / ${NO_AUDIENCE.ja}`, path: ["accessTokenAudience"] });
export type NewClient = z.input<typeof NewClientSchema>;

/** What an administrator may change on a registered client (everything but its id). */
export const ClientSettingsSchema = NewClientFields.omit({ clientId: true });
export type ClientSettings = z.input<typeof ClientSettingsSchema>;

/** Thrown for a refused registration (bad input, duplicate id); nothing was written. */
export class SsoClientError extends SsoRequestError<"BAD_INPUT" | "CLIENT_EXISTS" | "UNKNOWN_CLIENT"> {
  override name = "SsoClientError";
}

/** SHA-256 of a client secret as stored. */
export const secretHash = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest();

/** Constant-time check of a presented secret against the stored hash. */
export function secretMatches(stored: Buffer, presented: string): boolean {
  return timingSafeEqual(stored, secretHash(presented));
}

/**
 * Registers a client in one transaction with its audit record ("sso.client-registered"). hcRole
 * names are NFC-normalised. Returns the client and its secret (shown once, never stored).
 * @throws SsoClientError BAD_INPUT (zod issues in the message) or CLIENT_EXISTS.
 */
export async function registerClient(db: Knex, input: NewClient, by: { actor: string; role: string }): Promise<{ client: SsoClient; secret: string }> {
  const parsed = NewClientSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new SsoClientError("BAD_INPUT", msg, `入力が正しくありません: ${msg}`);
  }
  const c = parsed.data;
  if (c.jwksUri && c.jwks) throw new SsoClientError("BAD_INPUT", "jwksUri or jwks, not both", "jwksUri と jwks のどちらか一方だけを指定してください");
  const secret = newSecret();
  const roles = nfcRoles(c.allowedHcRoles);
  await db.transaction(async (trx) => {
    if (await trx("sso_clients").where({ client_id: c.clientId }).first("client_id")) {
      throw new SsoClientError("CLIENT_EXISTS", `client "${c.clientId}" already exists`, `クライアント「${c.clientId}」は既に登録されています`);
    }
    await trx("sso_clients").insert({
      client_id: c.clientId,
      name: c.name,
      secret_sha256: secretHash(secret),
      redirect_uris: JSON.stringify(c.redirectUris),
      post_logout_redirect_uris: JSON.stringify(c.postLogoutRedirectUris),
      allowed_hc_roles: JSON.stringify(roles),
      account_mapping: c.accountMapping,
      backchannel_logout_uri: c.backchannelLogoutUri ?? null,
      allowed_scopes: c.allowedScopes ? JSON.stringify(scopeList(c.allowedScopes)) : null,
      default_scopes: c.defaultScopes ? JSON.stringify(scopeList(c.defaultScopes)) : null,
      access_token_format: c.accessTokenFormat === "jwt" ? "jwt" : null,
      access_token_audience: c.accessTokenFormat === "jwt" ? c.accessTokenAudience : null,
      id_token_alg: c.idTokenAlg ?? null,
      jwks_uri: c.jwksUri ?? null,
      jwks: c.jwks ? JSON.stringify(c.jwks) : null,
      created_by: by.actor,
    });
    await notifyClientChanged(trx, c.clientId);
    await appendAudit(trx, [{
      ...by, action: "sso.client-registered", objectType: "sso-client", objectId: c.clientId,
      details: { redirectUris: c.redirectUris, allowedHcRoles: roles, accountMapping: c.accountMapping, backchannelLogoutUri: c.backchannelLogoutUri ?? null, allowedScopes: c.allowedScopes ? scopeList(c.allowedScopes) : null, defaultScopes: c.defaultScopes ? scopeList(c.defaultScopes) : null, accessTokenFormat: c.accessTokenFormat ?? "opaque", accessTokenAudience: c.accessTokenAudience ?? null, idTokenAlg: c.idTokenAlg ?? "RS256", jwksUri: c.jwksUri ?? null, jwks: c.jwks ?? null },
    }]);
  });
  return { client: (await findClient(db, c.clientId))!, secret };
}

const newSecret = () => randomBytes(32).toString("base64url");
/** openid first, then the others once each. */
const scopeList = (scopes: readonly Scope[]): Scope[] => ["openid", ...new Set(scopes.filter((s) => s !== "openid"))];
const nfcRoles = (roles: readonly string[]) => [...new Set(roles.map((r) => r.normalize("NFC").trim()).filter(Boolean))];
const unknownClient = (clientId: string) => new SsoClientError("UNKNOWN_CLIENT", `no client "${clientId}"`, `クライアント「${clientId}」は登録されていません`);

/** Locks the row of `clientId` in `trx`; @throws SsoClientError UNKNOWN_CLIENT. */
async function lockClient(trx: Knex.Transaction, clientId: string): Promise<SsoClient> {
  const r = await trx("sso_clients").where({ client_id: clientId }).forUpdate().first();
  if (!r) throw unknownClient(clientId);
  return clientFromRow(r);
}

/**
 * Replaces the settings of `clientId` (name, redirect URIs, allowed hcRoles, mapping, and the
 * back-channel logout URI when given — null removes it, absent keeps it) in one transaction with
 * its audit record ("sso.client-updated", the changed fields before and after).
 * Takes effect at the client's next request: every SSO process's ClientDirectory forgets its copy
 * when the NOTIFY raised here arrives (milliseconds after the commit).
 * @throws ValidationError (field issues) or SsoClientError UNKNOWN_CLIENT.
 */
export async function updateClient(db: Knex, clientId: string, input: ClientSettings, by: { actor: string; role: string }): Promise<SsoClient> {
  const c = parseInput(ClientSettingsSchema, input);
  await db.transaction(async (trx) => {
    const before = await lockClient(trx, clientId);
    const after = {
      name: c.name, redirectUris: c.redirectUris, postLogoutRedirectUris: c.postLogoutRedirectUris, allowedHcRoles: nfcRoles(c.allowedHcRoles), accountMapping: c.accountMapping,
      backchannelLogoutUri: c.backchannelLogoutUri === undefined ? before.backchannelLogoutUri : c.backchannelLogoutUri,
      allowedScopes: c.allowedScopes === undefined ? before.allowedScopes : c.allowedScopes && scopeList(c.allowedScopes),
      defaultScopes: c.defaultScopes === undefined ? before.defaultScopes : c.defaultScopes ? scopeList(c.defaultScopes) : [...DEFAULT_SCOPES],
      accessTokenFormat: c.accessTokenFormat === undefined ? before.accessTokenFormat : c.accessTokenFormat ?? "opaque",
      accessTokenAudience: c.accessTokenAudience === undefined ? before.accessTokenAudience : c.accessTokenAudience ?? null,
    };
    if (after.accessTokenFormat === "opaque") after.accessTokenAudience = null;
    if (!jwtNeedsAudience(after)) throw new SsoClientError("BAD_INPUT", NO_AUDIENCE.en, NO_AUDIENCE.ja);
    const changed = (Object.keys(after) as (keyof typeof after)[]).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    if (changed.length === 0) return;
    await trx("sso_clients").where({ client_id: clientId }).update({
      name: after.name, redirect_uris: JSON.stringify(after.redirectUris), post_logout_redirect_uris: JSON.stringify(after.postLogoutRedirectUris),
      allowed_hc_roles: JSON.stringify(after.allowedHcRoles), account_mapping: after.accountMapping, backchannel_logout_uri: after.backchannelLogoutUri,
      allowed_scopes: after.allowedScopes ? JSON.stringify(after.allowedScopes) : null,
      default_scopes: JSON.stringify(after.defaultScopes) === JSON.stringify(DEFAULT_SCOPES) ? null : JSON.stringify(after.defaultScopes),
      access_token_format: after.accessTokenFormat === "jwt" ? "jwt" : null, access_token_audience: after.accessTokenAudience,
    });
    await notifyClientChanged(trx, clientId);
    await appendAudit(trx, [{
      ...by, action: "sso.client-updated", objectType: "sso-client", objectId: clientId,
      details: { before: Object.fromEntries(changed.map((k) => [k, before[k]])), after: Object.fromEntries(changed.map((k) => [k, after[k]])) },
    }]);
  });
  return (await findClient(db, clientId))!;
}

/**
 * Disables (no login, no token, no API call from then on: the provider and the link API refuse a
 * disabled client) or re-enables `clientId`; audited "sso.client-disabled" / "sso.client-enabled".
 * Setting the state it already has changes nothing and writes nothing.
 * @throws SsoClientError UNKNOWN_CLIENT.
 */
export async function setClientDisabled(db: Knex, clientId: string, disabled: boolean, by: { actor: string; role: string }): Promise<SsoClient> {
  await db.transaction(async (trx) => {
    const c = await lockClient(trx, clientId);
    if (c.disabled === disabled) return;
    await trx("sso_clients").where({ client_id: clientId }).update({ disabled_at: disabled ? trx.fn.now() : null });
    await notifyClientChanged(trx, clientId);
    await appendAudit(trx, [{ ...by, action: disabled ? "sso.client-disabled" : "sso.client-enabled", objectType: "sso-client", objectId: clientId, details: {} }]);
  });
  return (await findClient(db, clientId))!;
}

/**
 * Replaces the secret of `clientId`; the previous one stays valid for `overlapS` seconds (0: it
 * stops working at once), so the service can deploy the new secret without being cut off (issue 14
 * §8). Returns the new secret, shown once. Audited "sso.client-secret-rotated" with the overlap's
 * end (no secret in the record). @throws SsoClientError UNKNOWN_CLIENT, BAD_INPUT (overlap).
 */
export async function rotateClientSecret(db: Knex, clientId: string, by: { actor: string; role: string }, overlapS = DEFAULT_SECRET_OVERLAP_S): Promise<{ client: SsoClient; secret: string }> {
  if (!Number.isInteger(overlapS) || overlapS < 0 || overlapS > 30 * 86_400) {
    throw new SsoClientError("BAD_INPUT", "the overlap must be 0 to 2,592,000 seconds", "重複期間は 0〜2,592,000 秒です");
  }
  const secret = newSecret();
  await db.transaction(async (trx) => {
    await lockClient(trx, clientId);
    const old = await trx("sso_clients").where({ client_id: clientId }).first("secret_sha256");
    const until = overlapS > 0 ? new Date(Date.now() + overlapS * 1000) : null;
    await trx("sso_clients").where({ client_id: clientId }).update({
      secret_sha256: secretHash(secret), previous_secret_sha256: until ? old.secret_sha256 : null, previous_secret_until: until,
    });
    await notifyClientChanged(trx, clientId);
    await appendAudit(trx, [{ ...by, action: "sso.client-secret-rotated", objectType: "sso-client", objectId: clientId, details: { previousValidUntil: until?.toISOString() ?? null } }]);
  });
  return { client: (await findClient(db, clientId))!, secret };
}

/** The client `clientId`, or undefined. */
export async function findClient(db: Knex, clientId: string): Promise<SsoClient | undefined> {
  const r = await db("sso_clients").where({ client_id: clientId }).first();
  return r ? clientFromRow(r) : undefined;
}

/** Client id of the SSO center's own portal (a public client of its own provider). */
export const PORTAL_CLIENT_ID = "hpki-portal";

/**
 * The portal as a built-in client: a person opens the portal, logs in with the card through the
 * provider like at any service, and comes back to `${issuer}/portal/callback`. Public (no secret;
 * PKCE as always), any hcRole, pairwise subject. Not stored, not listed among services.
 */
export function portalClient(issuer: string): SsoClient {
  return {
    clientId: PORTAL_CLIENT_ID, name: "HPKI ポータル / HPKI portal", redirectUris: [`${issuer}/portal/callback`], postLogoutRedirectUris: [],
    allowedHcRoles: [], accountMapping: "pairwise", allowedScopes: ["openid"], defaultScopes: ["openid"], accessTokenFormat: "opaque", accessTokenAudience: null, backchannelLogoutUri: null, idTokenAlg: "RS256", jwksUri: null, jwks: null,
    secretSha256: Buffer.alloc(0), previousSecret: null, disabled: false,
  };
}

/** Every client, by id. */
export async function listClients(db: Knex): Promise<SsoClient[]> {
  return (await db("sso_clients").orderBy("client_id")).map(clientFromRow);
}

const json = (v: unknown): string[] => (typeof v === "string" ? JSON.parse(v) : (v as string[]));

function clientFromRow(r: Record<string, any>): SsoClient {
  return {
    clientId: r.client_id,
    name: r.name,
    redirectUris: json(r.redirect_uris),
    postLogoutRedirectUris: json(r.post_logout_redirect_uris),
    allowedHcRoles: json(r.allowed_hc_roles),
    accountMapping: r.account_mapping,
    backchannelLogoutUri: r.backchannel_logout_uri ?? null,
    allowedScopes: r.allowed_scopes == null ? null : (json(r.allowed_scopes) as Scope[]),
    defaultScopes: r.default_scopes == null ? [...DEFAULT_SCOPES] : (json(r.default_scopes) as Scope[]),
    accessTokenFormat: r.access_token_format === "jwt" ? "jwt" : "opaque",
    accessTokenAudience: r.access_token_audience ?? null,
    idTokenAlg: r.id_token_alg ?? "RS256",
    jwksUri: r.jwks_uri ?? null,
    jwks: r.jwks == null ? null : (typeof r.jwks === "string" ? JSON.parse(r.jwks) : r.jwks),
    secretSha256: toBuffer(r.secret_sha256),
    previousSecret: r.previous_secret_sha256 && r.previous_secret_until ? { sha256: toBuffer(r.previous_secret_sha256), until: new Date(r.previous_secret_until) } : null,
    disabled: r.disabled_at != null,
  };
}

/** Whether `presented` is the client's secret, or its previous one within the overlap (constant time per hash). */
export function clientSecretMatches(c: Pick<SsoClient, "secretSha256" | "previousSecret">, presented: string, now: Date = new Date()): boolean {
  const current = c.secretSha256.length === 32 && secretMatches(c.secretSha256, presented);
  const previous = c.previousSecret !== null && c.previousSecret.until.getTime() > now.getTime() && secretMatches(c.previousSecret.sha256, presented);
  return current || previous;
}

/**
 * Authenticates a client by id and secret (HTTP Basic, RFC 6749 §2.3.1) for the SSO center's own
 * APIs (account-link confirmation). @throws SsoClientError UNKNOWN_CLIENT on any mismatch.
 */
export async function authenticateClient(db: Knex, clientId: string, secret: string): Promise<SsoClient> {
  const c = await findClient(db, clientId);
  if (!c || c.disabled || !clientSecretMatches(c, secret)) {
    throw new SsoClientError("UNKNOWN_CLIENT", "client authentication failed", "クライアント認証に失敗しました");
  }
  return c;
}
