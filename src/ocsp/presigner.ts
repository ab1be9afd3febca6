/**
 * Pre-signed OCSP responses (DESIGN §5, RFC 6960 §2.4 and RFC 5019 §2.2.1 "pre-produced
 * responses"): for every issued certificate of a CA that has a delegated responder, a complete
 * OCSPResponse for a SHA-1 CertID and one for a SHA-256 CertID, signed with the responder key on
 * the OCSP token and stored in ocsp_responses. The repository answers nonce-less requests from
 * these without touching the HSM.
 *
 * One `refresh` pass signs, in batches, every certificate that
 *   1. was issued and has no response yet,
 *   2. has a response whose status no longer matches revocations (revoked, held, hold made
 *      permanent, released) — checked for revocation rows changed since the previous pass (minus
 *      five minutes for transactions still committing; the first pass checks them all),
 *   3. has a response invalidated by a revocation transaction (ocsp_responses.invalidated_at),
 *   4. has a response with fewer than refreshBeforeHours left before nextUpdate, or one signed by a
 *      responder that is no longer the CA's current one.
 * Two refreshers racing are harmless: a response stored from an older status is never served (the
 * lookup rule of presigned-state.ts compares it with revocations) and is caught by rule 2 in the
 * next pass.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { encodeCertId } from "../pki/ocsp-response.ts";
import { certificateStatuses, ocspCertStatus } from "./certificate-status.ts";
import { loadOcspIssuers, type OcspIssuer } from "./issuers.ts";
import { PRESIGNED_CURRENT_SQL } from "./presigned-state.ts";
import { currentResponders, signOcspResponse, type OcspResponder } from "./responders.ts";
import type { Actor } from "../audit/actor.ts";


export interface OcspPresignerDeps {
  db: Knex;
  /** Responder keys on the OCSP token (openOcspKeys). */
  keys: CaKeyStore;
  policy: OcspPolicy;
  now?: () => Date;
  /** Certificates signed per batch (two signatures each); default 256. */
  batchSize?: number;
}

export interface PresignOutcome {
  /** Certificates whose two responses were (re-)signed, by CA name. */
  signed: Record<string, number>;
  total: number;
}

const CHANGE_MARGIN_MS = 5 * 60_000;

export class OcspPresigner {
  private lastPassStart: Date | null = null;
  private readonly now: () => Date;
  private readonly batchSize: number;

  constructor(private readonly deps: OcspPresignerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.batchSize = deps.batchSize ?? 256;
  }

  /**
   * One refresh pass (rules above), one transaction with one audit record
   * ("ocsp.responses-signed") per batch. Returns how many certificates were signed.
   * @throws HsmError when a responder key is missing from the OCSP token (nothing of that batch stored).
   */
  async refresh(by: Actor): Promise<PresignOutcome> {
    const start = this.now();
    const responders = await currentResponders(this.deps.db, start);
    const outcome: PresignOutcome = { signed: {}, total: 0 };
    if (responders.size === 0) return outcome;
    const issuers = new Map((await loadOcspIssuers(this.deps.db)).map((i) => [i.caId, i]));
    const changedSince = this.lastPassStart ? new Date(this.lastPassStart.getTime() - CHANGE_MARGIN_MS) : new Date(0);
    const refreshBefore = new Date(start.getTime() + this.deps.policy.responses.refreshBeforeHours * 3_600_000);
    for (const [caId, responder] of responders) {
      const issuer = issuers.get(caId)!;
      const seen = new Set<string>();
      for (;;) {
        const due = (await this.due(caId, responder.id, changedSince, refreshBefore, start)).filter((s) => !seen.has(s));
        if (due.length === 0) break;
        for (const s of due) seen.add(s);
        const n = await this.signBatch(issuer, responder, due, by);
        outcome.signed[issuer.caName] = (outcome.signed[issuer.caName] ?? 0) + n;
        outcome.total += n;
      }
    }
    this.lastPassStart = start;
    return outcome;
  }

  /** Serials of CA `caId` due for signing (rules 1–4), at most one batch. */
  private async due(caId: number, responderId: number, changedSince: Date, refreshBefore: Date, now: Date): Promise<string[]> {
    const limit = this.batchSize;
    const res = await this.deps.db.raw(
      `(SELECT c.serial_hex FROM certificates c
          LEFT JOIN ocsp_responses r ON r.ca_id = c.ca_id AND r.serial_hex = c.serial_hex
         WHERE c.ca_id = ? AND c.status = 'issued' AND c.not_after > ? AND r.ca_id IS NULL LIMIT ${limit})
       UNION
       (SELECT v.serial_hex FROM revocations v
          JOIN ocsp_responses r ON r.ca_id = v.ca_id AND r.serial_hex = v.serial_hex
         WHERE v.ca_id = ? AND v.certificate_id IS NOT NULL AND v.updated_at > ? AND NOT ${PRESIGNED_CURRENT_SQL} LIMIT ${limit})
       UNION
       (SELECT serial_hex FROM ocsp_responses WHERE ca_id = ? AND invalidated_at IS NOT NULL LIMIT ${limit})
       UNION
       (SELECT serial_hex FROM ocsp_responses WHERE ca_id = ? AND (next_update < ? OR responder_id <> ?) LIMIT ${limit})
       LIMIT ${limit}`,
      [caId, now, caId, changedSince, caId, caId, refreshBefore, responderId],
    );
    return (res.rows as { serial_hex: string }[]).map((r) => r.serial_hex);
  }

  /**
   * Re-signs the responses of `serialHexes` of CA `caName` now, whatever their state (the
   * revocation path calls it right after its commit). Returns how many certificates were signed:
   * 0 when the CA has no current responder (responses stay invalidated; the responder signs live).
   * @throws HsmError as refresh.
   */
  async signNow(caName: string, serialHexes: string[], by: Actor): Promise<number> {
    const responders = await currentResponders(this.deps.db, this.now());
    const issuer = (await loadOcspIssuers(this.deps.db)).find((i) => i.caName === caName);
    const responder = issuer && responders.get(issuer.caId);
    if (!issuer || !responder || serialHexes.length === 0) return 0;
    return this.signBatch(issuer, responder, serialHexes, by);
  }

  private async signBatch(issuer: OcspIssuer, responder: OcspResponder, serials: string[], by: Actor): Promise<number> {
    const { db, keys, policy } = this.deps;
    const statuses = await certificateStatuses(db, issuer.caId, serials);
    const thisUpdate = new Date(Math.floor(this.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + policy.responses.validityHours * 3_600_000);
    const items = [...statuses.values()];
    const signed = await Promise.all(items.map(async (s) => {
      const status = ocspCertStatus(s);
      const serial = Buffer.from(s.serialHex, "hex");
      const sign = (hash: "sha1" | "sha256") => signOcspResponse(keys, responder, {
        producedAt: thisUpdate,
        responses: [{ certId: encodeCertId(hash, issuer.hashes[hash].issuerNameHash, issuer.hashes[hash].issuerKeyHash, serial), status, thisUpdate, nextUpdate }],
      });
      return { s, sha1: await sign("sha1"), sha256: await sign("sha256") };
    }));
    if (signed.length === 0) return 0;
    const changed = "ocsp_responses.status IS DISTINCT FROM excluded.status OR ocsp_responses.revocation_time IS DISTINCT FROM excluded.revocation_time OR ocsp_responses.revocation_reason IS DISTINCT FROM excluded.revocation_reason";
    await db.transaction(async (trx) => {
      await trx("ocsp_responses")
        .insert(signed.map(({ s, sha1, sha256 }) => ({
          ca_id: issuer.caId,
          serial_hex: s.serialHex,
          responder_id: responder.id,
          status: s.status,
          revocation_time: s.revocationTime,
          revocation_reason: s.revocationReason,
          this_update: thisUpdate,
          next_update: nextUpdate,
          der_sha1: sha1,
          der_sha256: sha256,
          status_changed_at: trx.raw("clock_timestamp()"),
          invalidated_at: null,
          written_at: trx.raw("clock_timestamp()"),
        })))
        .onConflict(["ca_id", "serial_hex"])
        .merge({
          responder_id: trx.raw("excluded.responder_id"),
          status: trx.raw("excluded.status"),
          revocation_time: trx.raw("excluded.revocation_time"),
          revocation_reason: trx.raw("excluded.revocation_reason"),
          this_update: trx.raw("excluded.this_update"),
          next_update: trx.raw("excluded.next_update"),
          der_sha1: trx.raw("excluded.der_sha1"),
          der_sha256: trx.raw("excluded.der_sha256"),
          status_changed_at: trx.raw(`CASE WHEN ${changed} THEN excluded.status_changed_at ELSE ocsp_responses.status_changed_at END`),
          invalidated_at: null,
          written_at: trx.raw("excluded.written_at"),
        });
      await appendAudit(trx, [{
        ...by,
        action: "ocsp.responses-signed",
        objectType: "ocsp-responses",
        objectId: issuer.caName,
        details: {
          certificates: signed.length,
          revoked: signed.filter((x) => x.s.status === "revoked").length,
          responder: responder.serialHex,
          thisUpdate,
          nextUpdate,
        },
      }]);
    });
    return signed.length;
  }
}
