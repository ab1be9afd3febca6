/**
 * Hash-chained audit log (DESIGN §8). Every state change appends its record inside the same
 * transaction as the change, so a rolled-back change leaves no audit trace and vice versa.
 *
 *   hash = SHA-256(prev_hash ‖ canonicalJSON({at, actor, role, action, objectType, objectId, details}))
 *
 * The chain starts from 32 zero bytes. Appends serialise on the row lock of `audit_head` (the
 * last hash, migrations/0014): lock + read in one statement, records + new head in another.
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { insertRows } from "../store/bulk.ts";
import { prepared, runPrepared } from "../store/prepared.ts";
import { toBuffer } from "../store/rows.ts";

export interface AuditEvent {
  /** Who: operator name, or "system" / "cli:<user>" for unattended work. */
  actor: string;
  /** In which authority role the actor acted: ia, ra, lra, sso, repo, admin, system. */
  role: string;
  /** Dotted action name, e.g. "ca.created", "certificate.issued", "card.provisioned". */
  action: string;
  objectType: string;
  objectId: string;
  details?: Record<string, unknown>;
}

const AUDIT_COLUMNS = ["at", "actor", "role", "action", "object_type", "object_id", "details", "prev_hash", "hash"] as const;
export const GENESIS_HASH = Buffer.alloc(32);

/** Canonical JSON: object keys sorted at every level, no whitespace; Dates as ISO strings. */
export function canonicalJson(v: unknown): string {
  if (v instanceof Date) return JSON.stringify(v.toISOString());
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/** The chained hash of one record (see the module comment). `at` must have millisecond precision. */
export function auditRecordHash(prevHash: Uint8Array, at: Date, e: AuditEvent): Buffer {
  const body = canonicalJson({
    at,
    actor: e.actor,
    role: e.role,
    action: e.action,
    objectType: e.objectType,
    objectId: e.objectId,
    details: e.details ?? {},
  });
  return createHash("sha256").update(prevHash).update(body, "utf8").digest();
}

/**
 * Appends `events` in order to the audit log within transaction `trx` (required: the caller's
 * state change and its audit records commit or roll back together). Returns the new head hash.
 */
export async function appendAudit(trx: Knex.Transaction, events: AuditEvent[]): Promise<Buffer> {
  if (events.length === 0) throw new Error("appendAudit: no events");
  // FOR UPDATE waits for a concurrent appender's commit and then returns the head it wrote.
  const head = await runPrepared(trx, SQL.lockHead, []);
  let prev = toBuffer(head.rows[0].hash as Buffer);
  const at = new Date();
  const rows = events.map((e) => {
    const hash = auditRecordHash(prev, at, e);
    const row = [at, e.actor, e.role, e.action, e.objectType, e.objectId, JSON.stringify(e.details ?? {}), prev, hash];
    prev = hash;
    return row;
  });
  if (rows.length === 1) {
    // The common case (one event per transaction) as a named statement.
    await runPrepared(trx, SQL.appendOne, [...rows[0], prev]);
  } else if (rows.length * AUDIT_COLUMNS.length <= 60_000) {
    await trx.raw(`WITH appended AS (${insertSql(rows.length)}) UPDATE audit_head SET hash = ? WHERE id = 1`, [...rows.flat(), prev] as Knex.RawBinding[]);
  } else {
    await insertRows(trx, "audit_log", AUDIT_COLUMNS, rows);
    await trx.raw("UPDATE audit_head SET hash = ? WHERE id = 1", [prev]);
  }
  return prev;
}

// Named statements (src/store/prepared.ts) for the path every audited transaction takes.
const SQL = {
  lockHead: prepared("audit_head_lock", "SELECT hash FROM audit_head WHERE id = 1 FOR UPDATE"),
  appendOne: prepared("audit_append_one",
    `WITH appended AS (INSERT INTO audit_log (${AUDIT_COLUMNS.join(",")}) VALUES (${AUDIT_COLUMNS.map((_, i) => `$${i + 1}`).join(",")})) UPDATE audit_head SET hash = $${AUDIT_COLUMNS.length + 1} WHERE id = 1`),
};

const insertSqlCache = new Map<number, string>();

/** INSERT INTO audit_log (…) VALUES (?, …), … for `n` records (cached per n). */
function insertSql(n: number): string {
  let sql = insertSqlCache.get(n);
  if (!sql) {
    const tuple = `(${AUDIT_COLUMNS.map(() => "?").join(",")})`;
    sql = `INSERT INTO audit_log (${AUDIT_COLUMNS.join(",")}) VALUES ${Array(n).fill(tuple).join(",")}`;
    if (insertSqlCache.size < 256) insertSqlCache.set(n, sql);
  }
  return sql;
}
