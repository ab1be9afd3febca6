/**
 * End-entity issuance (DESIGN §4, Boulder-style): build the tbsCertificate from the profile, lint
 * it, record the intent (serial + tbsCertificate + its SHA-256) in the database, sign in the HSM,
 * store the certificate. Requests are processed in batches: one transaction records every intent,
 * the signatures run in parallel over the HSM session pool, one transaction stores the results.
 *
 * Crash safety: the intent row holds the exact tbsCertificate, so `resumeIntents` re-signs it after
 * a crash and produces the certificate that would have been (same serial, same content) — never a
 * lost signed certificate, never a second one. A request carrying a `requestKey` already seen
 * returns the existing certificate (idempotent retry) when it asks for the same thing — same
 * profile, subject and public key (request_fingerprint) — and is refused with a ConflictError
 * naming the first certificate when it does not (issue 10 §8).
 */
import { assertHcRoleIssuable, type HcRoleGate } from "../pipeline/hcrole-confirmations.ts";
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit, type AuditEvent } from "../audit/log.ts";
import type { CaKeyStore, HsmKeyRef } from "../hsm/ca-keys.ts";
import { encodeCertificate, compileTbsTemplate, type CertificateUrls, type IssuerContext } from "../pki/tbs.ts";
import { assertLintClean } from "../pki/lint.ts";
import { computeValidity } from "../pki/validity.ts";
import { newSerialNumber, serialHex } from "../pki/serial.ts";
import type { CertificateProfile } from "../pki/profile.ts";
import type { SubscriberSubject } from "../pki/subject.ts";
import { ConflictError } from "../pipeline/errors.ts";
import { insertRows } from "../store/bulk.ts";
import { toBuffer } from "../store/rows.ts";
import { issuerContextFor, resolveIssuingCa, type CaRecord } from "./ca-registry.ts";
import { faultPoint } from "./fault-hook.ts";
import type { Actor } from "../audit/actor.ts";

export interface IssuanceRequest {
  /** End-entity profile name: sign | auth-person | auth-org. */
  profile: string;
  subject: SubscriberSubject;
  /** SubjectPublicKeyInfo DER of the subscriber key (made on the card, or from a verified CSR). */
  subjectPublicKeyInfo: Uint8Array;
  /** Idempotency key: a second identical request with the same key returns the first certificate; a different one is refused (409). */
  requestKey?: string;
  /** Issuing CA by name; default: the only issuing CA of the profile's purpose. */
  caName?: string;
  card?: { label: string; keyId: Buffer };
}

export interface IssuedCertificate {
  id: number;
  caName: string;
  serialHex: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** True when an existing certificate was returned for a repeated requestKey. */
  existing: boolean;
}


interface PreparedIssuer {
  ca: CaRecord;
  context: IssuerContext;
  key: HsmKeyRef;
  template: ReturnType<typeof compileTbsTemplate>;
}

interface Prepared {
  req: IssuanceRequest;
  issuer: PreparedIssuer;
  serial: Buffer;
  tbs: Buffer;
  notBefore: Date;
  notAfter: Date;
}

export class IssuanceService {
  private issuers = new Map<string, PreparedIssuer>();

  /**
   * `profiles` maps profile name → parsed profile (policies/profiles/*.yaml); `keys` signs with
   * the CA keys in the HSM. `now` is injectable for tests. `urls`: the deployment's repository URL
   * and production strictness (certificateUrls(cfg)); default the demo's.
   */
  constructor(
    private readonly db: Knex,
    private readonly keys: CaKeyStore,
    private readonly profiles: ReadonlyMap<string, CertificateProfile>,
    private readonly now: () => Date = () => new Date(),
    private readonly urls: CertificateUrls = {},
    private readonly hcRoleGate: HcRoleGate = { production: false },
  ) {}

  /** Issues one certificate; see `issueMany`. */
  async issue(req: IssuanceRequest, by: Actor): Promise<IssuedCertificate> {
    return (await this.issueMany([req], by))[0];
  }

  /**
   * Issues a batch. Every request is built and linted before anything is written: a lint
   * violation (LintError) or an unknown profile/CA rejects the whole batch with no row and no
   * signature. Returns results in request order. Errors from the HSM leave intents behind that
   * `resumeIntents` completes.
   */
  async issueMany(reqs: IssuanceRequest[], by: Actor): Promise<IssuedCertificate[]> {
    const existing = await this.findExisting(reqs);
    const out: IssuedCertificate[] = new Array(reqs.length);
    const fresh: (Prepared & { index: number })[] = [];
    const firstIndexOfKey = new Map<string, number>();
    const repeats: [number, number][] = []; // [index, index of the first request with that key]
    for (const [index, req] of reqs.entries()) {
      const key = req.requestKey;
      const prior = key ? existing.get(key) : undefined;
      if (prior) {
        assertSameRequest(key!, prior, req);
        out[index] = prior.status === "issued" ? prior.cert : await this.resumeOne(prior.id, by);
      } else if (key && firstIndexOfKey.has(key)) {
        const first = reqs[firstIndexOfKey.get(key)!];
        if (!requestFingerprint(first).equals(requestFingerprint(req)) || (req.caName ?? null) !== (first.caName ?? null)) {
          throw new ConflictError(
            `request key "${key}" appears twice in one batch with different input (subject, profile, key or CA)`,
            `同じリクエストキー「${key}」で内容（主体者・プロファイル・鍵・CA）の異なる発行依頼が1つのバッチに含まれています`,
          );
        }
        repeats.push([index, firstIndexOfKey.get(key)!]);
      } else {
        if (key) firstIndexOfKey.set(key, index);
        fresh.push({ ...(await this.prepare(req)), index });
      }
    }
    const ids = await this.recordIntents(fresh, by);
    if (fresh.length) await faultPoint("after-intent");
    const signatures = await Promise.all(fresh.map((p) => this.keys.sign(p.issuer.key, p.tbs)));
    const ders = fresh.map((p, i) => encodeCertificate(p.tbs, p.issuer.context.signatureAlgorithm, signatures[i]));
    if (fresh.length) {
      await this.db.transaction(async (trx) => {
        await storeCertificates(trx, fresh.map((_, i) => ({ id: ids[i], der: ders[i] })));
        await appendAudit(trx, fresh.map((p) => issuedEvent(by, p.issuer.ca.name, serialHex(p.serial), p.req)));
      });
    }
    fresh.forEach((p, i) => {
      out[p.index] = {
        id: ids[i],
        caName: p.issuer.ca.name,
        serialHex: serialHex(p.serial),
        der: ders[i],
        notBefore: p.notBefore,
        notAfter: p.notAfter,
        existing: false,
      };
    });
    for (const [index, first] of repeats) out[index] = { ...out[first], existing: true };
    return out;
  }

  /**
   * Completes every intent left by a crash between recording and storing: re-signs the stored
   * tbsCertificate after checking its SHA-256. Returns the certificates completed.
   */
  async resumeIntents(by: Actor): Promise<IssuedCertificate[]> {
    const rows = await this.db("certificates").where({ status: "intent" }).select("id");
    const out: IssuedCertificate[] = [];
    for (const r of rows) out.push(await this.resumeOne(Number(r.id), by));
    return out;
  }

  private async resumeOne(id: number, by: Actor): Promise<IssuedCertificate> {
    const row = await this.db("certificates as c")
      .join("certificate_authorities as a", "a.id", "c.ca_id")
      .where("c.id", id)
      .select("c.*", "a.name as ca_name", "a.key_label", "a.key_algorithm")
      .first();
    if (!row) throw new Error(`certificate row ${id} not found`);
    if (row.status === "issued") return rowToIssued(row, true);
    const tbs = toBuffer(row.tbs);
    if (!createHash("sha256").update(tbs).digest().equals(toBuffer(row.tbs_sha256))) {
      throw new Error(`certificate row ${id}: stored tbsCertificate does not match its recorded hash; not signing`);
    }
    const issuer = await this.issuerFor(row.profile, row.ca_name);
    const signature = await this.keys.sign(issuer.key, tbs);
    const der = encodeCertificate(tbs, issuer.context.signatureAlgorithm, signature);
    await this.db.transaction(async (trx) => {
      const n = await storeCertificates(trx, [{ id, der }]);
      if (n === 1) {
        await appendAudit(trx, [{
          ...by,
          action: "certificate.issued",
          objectType: "certificate",
          objectId: `${row.ca_name}:${row.serial_hex}`,
          details: { profile: row.profile, resumedIntent: true },
        }]);
      }
    });
    return rowToIssued({ ...row, der, status: "issued" }, false);
  }

  private async findExisting(reqs: IssuanceRequest[]) {
    const keys = reqs.map((r) => r.requestKey).filter((k): k is string => !!k);
    const found = new Map<string, PriorRequest>();
    if (keys.length === 0) return found;
    const rows = await this.db("certificates as c")
      .join("certificate_authorities as a", "a.id", "c.ca_id")
      .whereIn("c.request_key", keys)
      .select("c.*", "a.name as ca_name");
    for (const r of rows) {
      found.set(r.request_key, {
        id: Number(r.id),
        status: r.status,
        cert: rowToIssued(r, true),
        fingerprint: r.request_fingerprint ? toBuffer(r.request_fingerprint) : null,
        profile: r.profile,
        subject: typeof r.subject === "string" ? JSON.parse(r.subject) : r.subject,
      });
    }
    return found;
  }

  private async prepare(req: IssuanceRequest): Promise<Prepared> {
    // An hcRole string real certificates have not confirmed: production needs an operator's confirmation (issue 13 §9).
    await assertHcRoleIssuable(this.db, req.subject.hcRole, req.subject.hcRoleEntry?.status, this.hcRoleGate);
    const issuer = await this.issuerFor(req.profile, req.caName);
    const profile = this.profile(req.profile);
    const { notBefore, notAfter } = computeValidity(profile, this.now(), { notAfterCap: issuer.ca.notAfter });
    const serial = newSerialNumber();
    const tbs = issuer.template({
      serialNumber: serial,
      subject: { kind: "subscriber", subject: req.subject },
      subjectPublicKeyInfo: req.subjectPublicKeyInfo,
      validity: { notBefore, notAfter },
    });
    // Nothing is signed that would fail the profile (DESIGN §4 step 3).
    assertLintClean(tbs, profile, issuer.context);
    return { req, issuer, serial, tbs, notBefore, notAfter };
  }

  private profile(name: string): CertificateProfile {
    const p = this.profiles.get(name);
    if (!p) throw new Error(`unknown profile "${name}" (known: ${[...this.profiles.keys()].join(", ")})`);
    return p;
  }

  private async issuerFor(profileName: string, caName?: string): Promise<PreparedIssuer> {
    const cacheKey = `${profileName}\0${caName ?? ""}`;
    const cached = this.issuers.get(cacheKey);
    if (cached) return cached;
    const profile = this.profile(profileName);
    if (profile.kind !== "end-entity") throw new Error(`profile "${profileName}" is not an end-entity profile`);
    const { ca, parent } = await resolveIssuingCa(this.db, profileName, caName);
    const key = await this.keys.findKey(ca.key.label);
    if (!key) throw new Error(`CA key "${ca.key.label}" of ${ca.name} is not in the HSM`);
    const context = issuerContextFor(ca, parent, this.urls);
    const prepared = { ca, context, key, template: compileTbsTemplate(profile, context) };
    this.issuers.set(cacheKey, prepared);
    return prepared;
  }

  private async recordIntents(batch: Prepared[], by: Actor): Promise<number[]> {
    if (batch.length === 0) return [];
    return this.db.transaction(async (trx) => {
      const rows = batch.map((p) => [
        p.issuer.ca.id,
        serialHex(p.serial),
        p.req.profile,
        "intent",
        p.req.requestKey ?? null,
        p.tbs,
        createHash("sha256").update(p.tbs).digest(),
        p.req.subject.subscriberId,
        p.req.subject.hcRole ?? null,
        JSON.stringify(p.req.subject),
        p.req.card?.label ?? null,
        p.req.card?.keyId ?? null,
        p.notBefore,
        p.notAfter,
        requestFingerprint(p.req),
      ]);
      const inserted = await insertRows(trx, "certificates", INTENT_COLUMNS, rows, "id");
      return inserted.map((r) => Number(r.id));
    });
  }
}

const INTENT_COLUMNS = [
  "ca_id", "serial_hex", "profile", "status", "request_key", "tbs", "tbs_sha256", "subscriber_id",
  "hc_role", "subject", "card_label", "card_key_id", "not_before", "not_after", "request_fingerprint",
] as const;

/** The certificate row already recorded under a request key, as findExisting reads it. */
interface PriorRequest {
  id: number;
  status: string;
  cert: IssuedCertificate;
  /** Null on rows recorded before fingerprints (migration 0070). */
  fingerprint: Buffer | null;
  profile: string;
  subject: unknown;
}

/** JSON with object keys sorted at every level: one text per value, whatever the key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * SHA-256 of what a request asks for — profile, subject and SubjectPublicKeyInfo — stored with the
 * certificate so a replayed request key can be checked against it (issue 10 §8).
 */
export function requestFingerprint(req: IssuanceRequest): Buffer {
  return createHash("sha256")
    .update(canonicalJson({ profile: req.profile, subject: askedSubject(req.subject), spki: Buffer.from(req.subjectPublicKeyInfo).toString("base64") }))
    .digest();
}

/** The subject as asked for: without hcRoleEntry, which the hcRole table derives (and may restate). */
function askedSubject(subject: unknown): unknown {
  if (!subject || typeof subject !== "object") return subject;
  const { hcRoleEntry: _derived, ...asked } = subject as Record<string, unknown>;
  return asked;
}

/**
 * Idempotency that cannot lie (issue 10 §8): a request key already used answers with the first
 * certificate only when the request is the same (profile, subject, public key, and the CA when one
 * is named). @throws ConflictError (409) naming the first request's certificate otherwise.
 */
function assertSameRequest(key: string, prior: PriorRequest, req: IssuanceRequest): void {
  const same = prior.fingerprint
    ? prior.fingerprint.equals(requestFingerprint(req))
    : prior.profile === req.profile && canonicalJson(askedSubject(prior.subject)) === canonicalJson(askedSubject(req.subject));
  if (same && (!req.caName || req.caName === prior.cert.caName)) return;
  throw new ConflictError(
    `request key "${key}" was already used for ${prior.cert.caName} certificate ${prior.cert.serialHex} (profile ${prior.profile}, subscriber ${(prior.subject as { subscriberId?: string } | null)?.subscriberId ?? "?"}) with other input; give a new request key or repeat the first request unchanged`,
    `リクエストキー「${key}」は証明書 ${prior.cert.caName} ${prior.cert.serialHex}（プロファイル ${prior.profile}）の発行に使用済みで、今回の内容（主体者・プロファイル・鍵・CA）と異なります。別のリクエストキーを指定するか、最初の依頼と同じ内容で再実行してください`,
  );
}

function issuedEvent(by: Actor, caName: string, serial: string, req: IssuanceRequest): AuditEvent {
  return {
    ...by,
    action: "certificate.issued",
    objectType: "certificate",
    objectId: `${caName}:${serial}`,
    details: {
      profile: req.profile,
      subscriberId: req.subject.subscriberId,
      hcRole: req.subject.hcRole ?? null,
      card: req.card?.label ?? null,
      requestKey: req.requestKey ?? null,
    },
  };
}

/** Stores signed certificates for intent rows; returns how many intents were completed. */
async function storeCertificates(trx: Knex.Transaction, items: { id: number; der: Buffer }[]): Promise<number> {
  if (items.length === 0) return 0;
  const values = items.map(() => "(?::bigint, ?::bytea)").join(",");
  const bindings = items.flatMap((x) => [x.id, x.der]);
  const res = await trx.raw(
    `UPDATE certificates AS c SET der = v.der, status = 'issued', issued_at = now()
       FROM (VALUES ${values}) AS v(id, der) WHERE c.id = v.id AND c.status = 'intent'`,
    bindings,
  );
  return Number(res.rowCount ?? res.affectedRows ?? 0);
}

function rowToIssued(r: Record<string, any>, existing: boolean): IssuedCertificate {
  return {
    id: Number(r.id),
    caName: r.ca_name,
    serialHex: r.serial_hex,
    der: r.der ? toBuffer(r.der) : Buffer.alloc(0),
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    existing,
  };
}
