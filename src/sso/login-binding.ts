/**
 * Sessions bound to the certificate they rest on (issue 14 §1). oidc-provider's account id is
 * "<person id>/<cert ref>" (cert ref: the first 22 base64url characters of SHA-256 over the login
 * certificate's DER), so every session, grant, code and token names the certificate of the login
 * that created it. Each use — authorization (also prompt=none), code and refresh-token exchange,
 * userinfo, introspection — calls {@link LoginCertificates.check}, which validates that
 * certificate again with the card-login verifier: path, validity period and revocation, all from
 * memory (the revocation index; OCSP only where the verifier would ask at login too). A failure
 * makes the account "not found" for oidc-provider: prompt=none answers login_required, the token
 * endpoint invalid_grant, userinfo invalid_token.
 *
 * The person (and so `sub`, links and the portal) is the part before the slash; renewing a card
 * gives a new cert ref for the same person.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { PathValidationError, type ValidatedPath } from "../pki/path-validation.ts";
import type { CardLoginVerifier } from "../status/certificate-verifier.ts";
import { prepared, runPrepared } from "../store/prepared.ts";
import { toBuffer } from "../store/rows.ts";

/** A login with a certificate: first seen now, or seen again (which revives it after a released hold). */
const RECORD_LOGIN_CERTIFICATE = prepared("sso_login_certificate_record", `INSERT INTO sso_login_certificates
    (cert_ref, person_id, issuer_key_id, serial_hex, certificate, not_after, first_login_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
  ON CONFLICT (cert_ref) DO UPDATE SET last_login_at = excluded.last_login_at, ended_at = NULL, end_reason = NULL`);

/** A login certificate as the SSO center keeps it. */
export interface LoginCertificate {
  certRef: string;
  personId: string;
  /** Revocation index key of the issuing CA (hex SHA-256 of its SubjectPublicKeyInfo). */
  issuerKeyId: string;
  serialHex: string;
  der: Buffer;
  notAfter: Date;
  /** Set once the certificate's sessions were ended (revocation-watch.ts). */
  endedAt: Date | null;
}

/** The outcome of a re-check: the person, or why the login no longer holds (a PathValidationError code or "unbound"). */
export type BindingCheck = { ok: true; personId: string; certRef: string } | { ok: false; personId?: string; code: string };

/** Cert ref of a certificate (DER): 22 base64url characters (132 bits) of its SHA-256. */
export const certRefOf = (der: Uint8Array): string => createHash("sha256").update(der).digest("base64url").slice(0, 22);

/** oidc-provider account id of a login: person id and cert ref. */
export const loginAccountId = (personId: string, certRef: string): string => `${personId}/${certRef}`;

/** Splits an account id; `certRef` is undefined for ids written before issue 14 (no certificate bound). */
export function parseAccountId(accountId: string): { personId: string; certRef?: string } {
  const i = accountId.indexOf("/");
  return i < 0 ? { personId: accountId } : { personId: accountId.slice(0, i), certRef: accountId.slice(i + 1) };
}

function fromRow(r: Record<string, any>): LoginCertificate {
  return {
    certRef: r.cert_ref, personId: r.person_id, issuerKeyId: r.issuer_key_id, serialHex: r.serial_hex, der: toBuffer(r.certificate),
    notAfter: new Date(r.not_after), endedAt: r.ended_at ? new Date(r.ended_at) : null,
  };
}

/**
 * The login certificates of live sessions, cached in memory (a re-check reads no database once the
 * certificate was seen by this process).
 */
export class LoginCertificates {
  private readonly cache = new Map<string, LoginCertificate>();

  constructor(private readonly db: Knex, private readonly verifier: CardLoginVerifier) {}

  /**
   * Records the certificate of a successful login of `personId` inside `trx` (first or latest
   * login) and returns the account id for oidc-provider. A certificate whose sessions were ended
   * (revoked, then released from hold) starts anew.
   */
  async record(trx: Knex.Transaction, personId: string, path: ValidatedPath, at: Date): Promise<string> {
    const der = Buffer.from(path.leaf.der);
    const c: LoginCertificate = {
      certRef: certRefOf(der), personId, issuerKeyId: path.issuers[0].keyId, serialHex: Buffer.from(path.leaf.serial).toString("hex"),
      der, notAfter: path.leaf.notAfter, endedAt: null,
    };
    await runPrepared(trx, RECORD_LOGIN_CERTIFICATE, [c.certRef, personId, c.issuerKeyId, c.serialHex, der, c.notAfter, at]);
    this.cache.set(c.certRef, c);
    return loginAccountId(personId, c.certRef);
  }

  /** The certificate `certRef` (memory, else database), or undefined. */
  async get(certRef: string): Promise<LoginCertificate | undefined> {
    let c = this.cache.get(certRef);
    if (!c) {
      const r = await this.db("sso_login_certificates").where({ cert_ref: certRef }).first();
      if (!r) return undefined;
      c = fromRow(r);
      this.cache.set(certRef, c);
    }
    return c;
  }

  /**
   * Re-checks the login behind `accountId` at `at`: the certificate is validated again (path,
   * validity, revocation index; refused when its sessions were ended). An account id without a
   * certificate (written before issue 14) never holds.
   */
  async check(accountId: string, at: Date = new Date()): Promise<BindingCheck> {
    const { personId, certRef } = parseAccountId(accountId);
    if (!certRef) return { ok: false, personId, code: "unbound" };
    let c = await this.get(certRef);
    if (c?.endedAt) {
      // Ended here or elsewhere; a later login with the same certificate (a released hold) revives it.
      this.cache.delete(certRef);
      c = await this.get(certRef);
    }
    if (!c || c.personId !== personId) return { ok: false, personId, code: "unbound" };
    if (c.endedAt) return { ok: false, personId, code: "session-ended" };
    try {
      await this.verifier.verify(c.der, at);
      return { ok: true, personId, certRef };
    } catch (e) {
      if (e instanceof PathValidationError) return { ok: false, personId, code: e.code };
      throw e;
    }
  }

  /** Marks `certRef` ended in memory (the row is updated by the caller's transaction). */
  markEnded(certRef: string, at: Date): void {
    const c = this.cache.get(certRef);
    if (c) c.endedAt = at;
  }

  /**
   * Certificates with sessions or grants that may still be live: not ended, last login within
   * `sinceMs` (the longest session/grant lifetime). Read from the database, so logins through
   * other SSO processes are watched too.
   */
  async live(sinceMs: number, now: Date = new Date()): Promise<LoginCertificate[]> {
    const rows = await this.db("sso_login_certificates").whereNull("ended_at").where("last_login_at", ">", new Date(now.getTime() - sinceMs))
      .select("cert_ref", "person_id", "issuer_key_id", "serial_hex", "not_after", "ended_at", this.db.raw("''::bytea as certificate"));
    return rows.map(fromRow);
  }
}
