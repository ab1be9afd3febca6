/**
 * `hpki audit verify` (DESIGN §8): recomputes the audit log's hash chain from the genesis hash
 * and reports the first broken link. Reads the table in seq order in keyset pages, so memory stays
 * flat however many records there are.
 *
 * What each reason means, checked in this order for every record:
 * - "sequence-gap": the record does not chain to the one before it AND seq numbers are missing in
 *   between — records were deleted. (A gap whose record does chain is normal: a rolled-back
 *   transaction consumes sequence numbers without leaving a record.)
 * - "prev-hash-mismatch": the record's prev_hash is not the previous record's hash (a record was
 *   inserted, reordered or its prev_hash rewritten).
 * - "hash-mismatch": the record's own hash is not SHA-256(prev_hash ‖ its content): its content
 *   (time, actor, role, action, object, details) or its hash was changed.
 * What the chain alone cannot show: records cut from the end, or a chain rewritten from some point
 * on with every later hash recomputed. Comparing `head` with a signed checkpoint covers those.
 */
import type { Knex } from "knex";
import { toBuffer } from "../store/rows.ts";
import { auditRecordHash, GENESIS_HASH } from "./log.ts";

export type AuditBreakReason = "hash-mismatch" | "prev-hash-mismatch" | "sequence-gap";

export interface AuditChainReport {
  ok: boolean;
  /** Records verified intact: all of them when ok, those before the first broken link otherwise. */
  records: number;
  /** Hash of the last intact record, hex; null for an empty log (or a break at the first record). */
  head: string | null;
  /**
   * The first broken link: the seq of the record that fails and, per reason, what was expected
   * and found — hashes in hex, or for "sequence-gap" the seq expected next and the seq found.
   */
  firstBroken?: { seq: number; reason: AuditBreakReason; expected: string; actual: string };
}

export interface VerifyAuditOptions {
  /** Records per page (default 5,000). */
  pageSize?: number;
}

interface AuditRow {
  seq: number | string;
  at: Date;
  actor: string;
  role: string;
  action: string;
  object_type: string;
  object_id: string;
  details: Record<string, unknown> | string;
  prev_hash: Uint8Array;
  hash: Uint8Array;
}

/**
 * Verifies the whole audit log of `db` (see the module comment for what is checked). Returns the
 * report; throws only when the database does (a broken chain is a result, not an error). Runs
 * outside any transaction: records appended while it runs are verified if their page has not
 * been read yet.
 */
export async function verifyAuditChain(db: Knex, opts: VerifyAuditOptions = {}): Promise<AuditChainReport> {
  const pageSize = opts.pageSize ?? 5_000;
  let prev: Buffer = GENESIS_HASH;
  let lastSeq = 0;
  let records = 0;
  const head = () => (records === 0 ? null : prev.toString("hex"));
  for (;;) {
    const page = (await db.raw(
      `SELECT seq, at, actor, role, action, object_type, object_id, details, prev_hash, hash
         FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`,
      [lastSeq, pageSize],
    )).rows as AuditRow[];
    for (const row of page) {
      const seq = Number(row.seq);
      const prevHash = toBuffer(row.prev_hash);
      if (!prevHash.equals(prev)) {
        const broken = seq !== lastSeq + 1
          ? { seq, reason: "sequence-gap" as const, expected: String(lastSeq + 1), actual: String(seq) }
          : { seq, reason: "prev-hash-mismatch" as const, expected: prev.toString("hex"), actual: prevHash.toString("hex") };
        return { ok: false, records, head: head(), firstBroken: broken };
      }
      const stored = toBuffer(row.hash);
      const recomputed = auditRecordHash(prevHash, row.at, {
        actor: row.actor,
        role: row.role,
        action: row.action,
        objectType: row.object_type,
        objectId: row.object_id,
        // jsonb arrives parsed from both drivers; a string would mean a driver without the parser.
        details: typeof row.details === "string" ? JSON.parse(row.details) : row.details,
      });
      if (!recomputed.equals(stored)) {
        return { ok: false, records, head: head(), firstBroken: { seq, reason: "hash-mismatch", expected: recomputed.toString("hex"), actual: stored.toString("hex") } };
      }
      prev = stored;
      lastSeq = seq;
      records++;
    }
    if (page.length < pageSize) return { ok: true, records, head: head() };
  }
}
