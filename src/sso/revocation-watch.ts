/**
 * Ends the SSO sessions of a revoked, held or expired login certificate (issue 14 §1) and tells
 * the relying parties (OIDC Back-Channel Logout 1.0).
 *
 * How the SSO role learns of a revocation: it shares the database with the IA. Every
 * `intervalMs` the watch refreshes the card-login verifier's revocation index (incremental read of
 * the `revocations` table, certificate-verifier.ts), then looks up every live login certificate in
 * the index (a memory lookup per certificate). From the moment the refreshed index holds the
 * serial, every use of a session or token of that certificate is refused (login-binding.ts
 * check); the sweep that follows in the same tick ends its sessions:
 *
 *   bound (revocation committed → no new token) ≤ intervalMs + one index refresh
 *
 * In one transaction per certificate: its Session rows, Grants and every code and token of those
 * grants are deleted, the certificate is marked ended, and "sso.sessions-ended" is audited. Then,
 * for every client the sessions had authorised that registered a backchannel_logout_uri,
 * oidc-provider's Client#backchannelLogout posts a signed logout token (sub as that client sees
 * it, sid of the session at that client, the back-channel logout event); the outcome of each post
 * is audited in "sso.backchannel-logout". A relying party that is down misses the notice (one
 * attempt, 2.5 s timeout), but its refresh tokens are gone either way.
 */
import type { Knex } from "knex";
import type Provider from "oidc-provider";
import { appendAudit } from "../audit/log.ts";
import type { CardLoginVerifier } from "../status/certificate-verifier.ts";
import { loginAccountId, type LoginCertificate, type LoginCertificates } from "./login-binding.ts";

export interface RevocationWatchOptions {
  db: Knex;
  provider: Provider;
  verifier: CardLoginVerifier;
  logins: LoginCertificates;
  /** Refresh + sweep period, ms; 0 = no timer (call tick()). */
  intervalMs: number;
  /** How far back a login may have created a still-live session or grant, ms. */
  lookbackMs: number;
  onError?: (e: Error) => void;
}

/** What one ended certificate caused. */
export interface EndedLogin {
  certRef: string;
  personId: string;
  reason: "revoked" | "expired";
  sessions: number;
  grants: number;
  notified: { clientId: string; ok: boolean; error?: string }[];
}

export class RevocationWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<EndedLogin[]> | undefined;

  constructor(private readonly o: RevocationWatchOptions) {}

  /** Starts the periodic tick (unless intervalMs is 0). */
  start(): void {
    if (this.o.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.tick().catch((e: Error) => (this.o.onError ?? ((x: Error) => process.stderr.write(`sso revocation watch: ${x.message}\n`)))(e));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Refreshes the revocation index, then ends what it shows revoked or expired. Concurrent calls share a run. */
  tick(): Promise<EndedLogin[]> {
    this.running ??= (async () => {
      await this.o.verifier.refresh();
      return this.sweep();
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Ends the sessions of every live login certificate the current index shows revoked, or that has expired. */
  async sweep(now: Date = new Date()): Promise<EndedLogin[]> {
    const ended: EndedLogin[] = [];
    for (const c of await this.o.logins.live(this.o.lookbackMs, now)) {
      const status = this.o.verifier.index.status(c.issuerKeyId, Buffer.from(c.serialHex, "hex"), now);
      const reason = status === "revoked" ? "revoked" : c.notAfter.getTime() <= now.getTime() ? "expired" : undefined;
      if (!reason) continue;
      const done = await this.end(c, reason, now);
      if (done) ended.push(done);
    }
    return ended;
  }

  /** Ends the sessions and grants of login certificate `c` (see the module comment); undefined when another process already did. */
  async end(c: Pick<LoginCertificate, "certRef" | "personId" | "serialHex">, reason: EndedLogin["reason"], now: Date = new Date()): Promise<EndedLogin | undefined> {
    const { db, provider } = this.o;
    const accountId = loginAccountId(c.personId, c.certRef);
    const found = await db.transaction(async (trx) => {
      const row = await trx("sso_login_certificates").where({ cert_ref: c.certRef }).forUpdate().first("ended_at");
      if (!row || row.ended_at) return undefined;
      const sessions = await trx("sso_oidc_payloads").where({ kind: "Session", account_id: accountId }).select("payload");
      const grantIds = (await trx("sso_oidc_payloads").where({ kind: "Grant", account_id: accountId }).select("id")).map((g) => String(g.id));
      if (grantIds.length) await trx("sso_oidc_payloads").whereIn("grant_id", grantIds).delete();
      await trx("sso_oidc_payloads").where({ account_id: accountId }).delete();
      await trx("sso_login_certificates").where({ cert_ref: c.certRef }).update({ ended_at: now, end_reason: reason });
      const notices: { clientId: string; sid: string }[] = [];
      for (const s of sessions) {
        const p = (typeof s.payload === "string" ? JSON.parse(s.payload) : s.payload) as { authorizations?: Record<string, { sid?: string }> };
        for (const [clientId, a] of Object.entries(p.authorizations ?? {})) if (a.sid) notices.push({ clientId, sid: a.sid });
      }
      await appendAudit(trx, [{
        actor: "system", role: "sso", action: "sso.sessions-ended", objectType: "sso-login-certificate", objectId: c.certRef,
        details: { personId: c.personId, serial: c.serialHex, reason, sessions: sessions.length, grants: grantIds.length, clients: [...new Set(notices.map((n) => n.clientId))] },
      }]);
      return { sessions: sessions.length, grants: grantIds.length, notices };
    });
    if (!found) return undefined;
    this.o.logins.markEnded(c.certRef, now);
    const notified = await Promise.all(found.notices.map(async ({ clientId, sid }) => {
      const client = await provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri) return undefined;
      try {
        await (client as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout(accountId, sid);
        return { clientId, ok: true };
      } catch (e) {
        return { clientId, ok: false, error: (e as Error).message };
      }
    }));
    const sent = notified.filter((n): n is NonNullable<typeof n> => n !== undefined);
    if (sent.length) {
      await db.transaction((trx) => appendAudit(trx, [{
        actor: "system", role: "sso", action: "sso.backchannel-logout", objectType: "sso-login-certificate", objectId: c.certRef,
        details: { personId: c.personId, reason, notified: sent },
      }]));
    }
    return { certRef: c.certRef, personId: c.personId, reason, sessions: found.sessions, grants: found.grants, notified: sent };
  }
}
