/**
 * Signing-key rotation of the SSO center (issue 14 §8; OIDC Core §10.1.1 "Rotation of Asymmetric
 * Signing Keys": publish the new key in the jwks_uri before using it, keep the old one there while
 * signatures made with it may still be checked).
 *
 * `hpki sso keys rotate` ({@link rotateSigningKey}) stores a new key (sealed like the others,
 * keys.ts) that is published at once and signs only from `now + lead`; the keys it replaces stop
 * signing at that instant and stay published until the ID tokens they signed have expired
 * (ID_TOKEN_TTL_S + CLOCK_SKEW_S later). Every SSO process reloads its published keys
 * ({@link SigningKeyRefresh}) at least every `intervalMs` and exactly at each scheduled change, so the
 * lead must exceed that interval (enforced) plus the relying parties' JWKS cache time.
 */
import type { Knex } from "knex";
import type Provider from "oidc-provider";
// oidc-provider keeps its keystore in a per-instance cache with no public setter; this module of
// the pinned version (9.13.3) is the one way to swap keys without a restart. The integration test
// (sso-rotation.test.ts) fails if that internal changes.
import instance from "oidc-provider/lib/helpers/weak_cache.js";
import { appendAudit } from "../audit/log.ts";
import { CLOCK_SKEW_S, ensureSigningKeys, generateSigningJwk, ID_TOKEN_TTL_S, nextKeyChange, storeSigningKey, withSsoKeyLock, type Sealer, type SigningAlg } from "./keys.ts";

/** Default lead between publishing a new key and signing with it, seconds. */
export const DEFAULT_ROTATION_LEAD_S = 3600;
/** How often an SSO process reloads its published keys at most, ms. */
export const KEY_REFRESH_INTERVAL_MS = 60_000;

/** What a rotation did. */
export interface Rotation {
  kid: string;
  alg: SigningAlg;
  signsFrom: Date;
  retired: { kid: string; retiredAt: Date; publishedUntil: Date }[];
}

/**
 * Rotates the `alg` signing key: a new key published now, signing from `now + leadS`; the active
 * keys of that algorithm stop signing then and leave the JWKS ID_TOKEN_TTL_S + CLOCK_SKEW_S later.
 * One transaction, audited "sso.signing-key-rotated". @throws Error when leadS is shorter than the
 * reload interval of the SSO processes.
 */
export async function rotateSigningKey(db: Knex, sealer: Sealer, opts: { alg?: SigningAlg; leadS?: number; now?: Date }, by: { actor: string; role: string }): Promise<Rotation> {
  const leadS = opts.leadS ?? DEFAULT_ROTATION_LEAD_S;
  if (leadS * 1000 < KEY_REFRESH_INTERVAL_MS) throw new Error(`the lead must be at least ${KEY_REFRESH_INTERVAL_MS / 1000} s (every SSO process must publish the key before it signs) / 公開から署名開始まで ${KEY_REFRESH_INTERVAL_MS / 1000} 秒以上必要です`);
  const alg = opts.alg ?? "RS256";
  const now = opts.now ?? new Date();
  const jwk = generateSigningJwk(alg);
  return withSsoKeyLock(db, () => db.transaction(async (trx) => {
    const old = await trx("sso_signing_keys").where({ alg }).whereNull("retired_at").forUpdate().select("kid");
    // With no key of that algorithm yet, nothing signed before: the new key signs at once.
    const signsFrom = old.length ? new Date(now.getTime() + leadS * 1000) : now;
    const publishedUntil = new Date(signsFrom.getTime() + (ID_TOKEN_TTL_S + CLOCK_SKEW_S) * 1000);
    await trx("sso_signing_keys").whereIn("kid", old.map((r) => r.kid)).update({ retired_at: signsFrom, published_until: publishedUntil });
    await storeSigningKey(trx, sealer, jwk, signsFrom, "sso.signing-key-created", { rotation: true });
    const retired = old.map((r) => ({ kid: String(r.kid), retiredAt: signsFrom, publishedUntil }));
    await appendAudit(trx, [{
      ...by, action: "sso.signing-key-rotated", objectType: "sso-key", objectId: jwk.kid,
      details: { alg, signsFrom: signsFrom.toISOString(), retired: retired.map((r) => ({ ...r, retiredAt: r.retiredAt.toISOString(), publishedUntil: r.publishedUntil.toISOString() })) },
    }]);
    return { kid: jwk.kid, alg, signsFrom, retired };
  }));
}

/** Replaces the running provider's keystore and published JWKS with `jwks` (as ensureSigningKeys returns them). */
export function applySigningKeys(provider: Provider, jwks: Record<string, unknown>[]): void {
  const internal = instance(provider) as { keystore?: { clear(): void; add(k: unknown): void }; jwks?: unknown } | undefined;
  if (!internal?.keystore || typeof internal.keystore.clear !== "function") throw new Error("oidc-provider internals changed: cannot reload signing keys");
  internal.keystore.clear();
  for (const k of jwks) internal.keystore.add(structuredClone(k));
  internal.jwks = {
    keys: jwks.map((k) => ({ kty: k.kty, use: k.use, key_ops: k.key_ops, kid: k.kid, alg: k.alg, crv: k.crv, e: k.e, n: k.n, x: k.x, y: k.y })),
  };
}

/**
 * Keeps a provider's keys current: reloads them every `intervalMs` and at the next scheduled change.
 * Errors are reported to `onError` and retried at the next tick.
 */
export class SigningKeyRefresh {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly db: Knex, private readonly sealer: Sealer, private readonly provider: Provider,
    private readonly algs: readonly SigningAlg[], private readonly intervalMs = KEY_REFRESH_INTERVAL_MS,
    private readonly onError: (e: unknown) => void = () => undefined) {}

  /** Reloads now and schedules the next reload. */
  async refresh(): Promise<void> {
    try {
      applySigningKeys(this.provider, await ensureSigningKeys(this.db, this.sealer, undefined, this.algs));
    } catch (e) {
      this.onError(e);
    }
    await this.schedule();
  }

  private async schedule(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const next = await nextKeyChange(this.db).catch(() => undefined);
    // 50 ms after the change, so the reload sees it as passed.
    const wait = Math.min(this.intervalMs, next ? Math.max(0, next.getTime() - Date.now() + 50) : this.intervalMs);
    this.timer = setTimeout(() => void this.refresh(), wait);
    this.timer.unref();
  }

  start(): void {
    void this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
