/**
 * Signed audit checkpoints (issue 10 §5): the audit log's head — seq and hash of the last record —
 * signed with the audit key in the HSM (checkpoint-signer.ts) as CMS SignedData (RFC 5652) whose
 * content is the checkpoint JSON, stored in audit_checkpoints and published by the repository.
 *
 * The hash chain alone shows edits and deletions in the middle, not records cut from the end: the
 * shortened log is still a valid chain. A checkpoint says "the log had a record seq S with hash H
 * at time T"; a log that no longer has it was truncated (or rewritten). Signed by a key the
 * database owner does not hold, so it cannot be forged; published and kept by auditors, so
 * deleting it from the database does not hide the cut either.
 *
 * Signed by the IA's status scheduler (every CHECKPOINT_EVERY_RECORDS records or hourly when
 * records were added, {@link maybeSignAuditCheckpoint}) and on demand (`hpki audit checkpoint`).
 */
import { createHash } from "node:crypto";
import type { Knex } from "knex";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { cmsSignedAttributes, encodeCmsSignedData } from "../pki/cms.ts";
import { toBuffer } from "../store/rows.ts";
import { ensureAuditSigner } from "./checkpoint-signer.ts";
import { appendAudit, GENESIS_HASH } from "./log.ts";

/** The `type` of the checkpoint JSON. */
export const CHECKPOINT_TYPE = "hpki-audit-checkpoint";
/** Default: sign a new checkpoint after this many records. */
export const CHECKPOINT_EVERY_RECORDS = 1_000;
/** Default: sign at least this often (ms) while records are being added. */
export const CHECKPOINT_EVERY_MS = 3_600_000;

/** What a checkpoint signs (the CMS content, canonical JSON with these keys in this order). */
export interface CheckpointContent {
  type: typeof CHECKPOINT_TYPE;
  version: 1;
  /** seq of the last record covered; 0 for an empty log. */
  seq: number;
  /** hash of that record, hex (64 zeros for an empty log). */
  hash: string;
  /** ISO 8601 time of signing. */
  signedAt: string;
}

/** A stored checkpoint. */
export interface StoredCheckpoint {
  id: number;
  seq: number;
  hash: string;
  signedAt: Date;
  /** CMS SignedData DER. */
  cms: Buffer;
  signerSha256: string;
}

/** The checkpoint JSON bytes for `c` (fixed key order, no whitespace). */
export function checkpointContentBytes(c: CheckpointContent): Buffer {
  return Buffer.from(JSON.stringify({ type: c.type, version: c.version, seq: c.seq, hash: c.hash, signedAt: c.signedAt }), "utf8");
}

/** Error for a log that must not be signed over (its head disagrees with its records or with the last checkpoint). */
export class CheckpointRefusedError extends Error {
  override readonly name = "CheckpointRefusedError";
  constructor(message: string, readonly messageJa: string) {
    super(message);
  }
}

/**
 * Signs a checkpoint of the current head now and stores it, with an audit record
 * "audit.checkpoint-signed" (appended after the checkpoint: it is the first record the next one
 * covers). Holds the audit_head row lock while reading and signing, so the head cannot move in
 * between (appenders wait one HSM signature). Creates the audit key on first use (audited
 * "audit.signing-key-created").
 * @throws CheckpointRefusedError when the stored head is not the last record's hash or the last
 *   checkpoint's record is no longer in the log — never sign over a truncated log (run
 *   `hpki audit verify`); HsmError from the HSM (e.g. TOKEN_UNAVAILABLE).
 */
export async function signAuditCheckpoint(db: Knex, keys: CaKeyStore, by: { actor: string; role: string }): Promise<StoredCheckpoint> {
  const { signer, created } = await ensureAuditSigner(keys);
  return db.transaction(async (trx) => {
    const stored = toBuffer((await trx.raw("SELECT hash FROM audit_head WHERE id = 1 FOR UPDATE")).rows[0].hash);
    const lastRow = (await trx.raw("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).rows[0];
    const seq = lastRow ? Number(lastRow.seq) : 0;
    const hash = lastRow ? toBuffer(lastRow.hash) : GENESIS_HASH;
    if (!stored.equals(hash)) {
      throw new CheckpointRefusedError(
        `refusing to sign an audit checkpoint: the stored head ${stored.toString("hex")} is not the hash of the last record (seq ${seq}); records may have been cut from the end — run hpki audit verify`,
        `監査チェックポイントの署名を拒否しました: 保存されている先頭ハッシュが最後の記録（seq ${seq}）のハッシュと一致しません。末尾の記録が削除された可能性があります。hpki audit verify を実行してください。`,
      );
    }
    const previous = await trx("audit_checkpoints").orderBy("id", "desc").first("id", "seq", "head_hash");
    if (previous && Number(previous.seq) > 0) {
      const still = await trx("audit_log").where({ seq: previous.seq }).first("hash");
      if (!still || !toBuffer(still.hash).equals(toBuffer(previous.head_hash))) {
        throw new CheckpointRefusedError(
          `refusing to sign an audit checkpoint: record seq ${previous.seq} covered by checkpoint #${previous.id} is ${still ? "changed" : "missing"} — run hpki audit verify`,
          `監査チェックポイントの署名を拒否しました: チェックポイント #${previous.id} が対象とする記録 seq ${previous.seq} が${still ? "変更されています" : "ありません"}。hpki audit verify を実行してください。`,
        );
      }
    }
    const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const content = checkpointContentBytes({ type: CHECKPOINT_TYPE, version: 1, seq, hash: hash.toString("hex"), signedAt: signedAt.toISOString() });
    const signedAttributes = cmsSignedAttributes(content, signedAt);
    const signature = await keys.sign(signer.key, signedAttributes);
    const cms = encodeCmsSignedData({ content, certificate: signer.certificate, signedAttributes, alg: "ecdsa-with-SHA256", signature });
    const [row] = await trx("audit_checkpoints").insert({ seq, head_hash: hash, signed_at: signedAt, cms, signer_sha256: signer.sha256 }).returning("id");
    const id = Number(typeof row === "object" ? row.id : row);
    const events = [];
    if (created) {
      events.push({ ...by, action: "audit.signing-key-created", objectType: "hsm-key", objectId: signer.key.label, details: { id: signer.key.id.toString("hex"), algorithm: signer.key.algorithm, certificateSha256: signer.sha256 } });
    }
    events.push({ ...by, action: "audit.checkpoint-signed", objectType: "audit-checkpoint", objectId: String(id), details: { seq, hash: hash.toString("hex"), cmsSha256: createHash("sha256").update(cms).digest("hex") } });
    await appendAudit(trx, events);
    return { id, seq, hash: hash.toString("hex"), signedAt, cms, signerSha256: signer.sha256 };
  });
}

/**
 * Signs a checkpoint when none exists, when `everyRecords` records (by seq) were appended since
 * the last one, or when `everyMs` passed and records were appended (other than the last
 * checkpoint's own audit record). For the IA's scheduler pass. Returns the checkpoint or null.
 */
export async function maybeSignAuditCheckpoint(
  db: Knex,
  keys: CaKeyStore,
  by: { actor: string; role: string },
  opts: { everyRecords?: number; everyMs?: number; now?: Date } = {},
): Promise<StoredCheckpoint | null> {
  const last = await db("audit_checkpoints").orderBy("id", "desc").first("seq", "signed_at");
  const maxRow = (await db.raw("SELECT max(seq) AS s FROM audit_log")).rows[0];
  const maxSeq = Number(maxRow?.s ?? 0);
  if (last) {
    // The checkpoint's own audit record follows it: one record more is "nothing new".
    const added = maxSeq - Number(last.seq) - 1;
    const age = (opts.now ?? new Date()).getTime() - new Date(last.signed_at).getTime();
    if (added < (opts.everyRecords ?? CHECKPOINT_EVERY_RECORDS) && !(added > 0 && age >= (opts.everyMs ?? CHECKPOINT_EVERY_MS))) return null;
  }
  return signAuditCheckpoint(db, keys, by);
}

/** The latest stored checkpoint, or null. */
export async function latestCheckpoint(db: Knex): Promise<StoredCheckpoint | null> {
  const r = await db("audit_checkpoints").orderBy("id", "desc").first();
  return r ? fromRow(r) : null;
}

/** One stored checkpoint by id, or null. */
export async function checkpointById(db: Knex, id: number): Promise<StoredCheckpoint | null> {
  const r = await db("audit_checkpoints").where({ id }).first();
  return r ? fromRow(r) : null;
}

/** The newest `limit` checkpoints (default 1,000), newest first, without their CMS. */
export async function listCheckpoints(db: Knex, limit = 1_000): Promise<Omit<StoredCheckpoint, "cms">[]> {
  const rows = await db("audit_checkpoints").orderBy("id", "desc").limit(limit).select("id", "seq", "head_hash", "signed_at", "signer_sha256");
  return rows.map((r) => ({ id: Number(r.id), seq: Number(r.seq), hash: toBuffer(r.head_hash).toString("hex"), signedAt: new Date(r.signed_at), signerSha256: r.signer_sha256 }));
}

function fromRow(r: Record<string, any>): StoredCheckpoint {
  return { id: Number(r.id), seq: Number(r.seq), hash: toBuffer(r.head_hash).toString("hex"), signedAt: new Date(r.signed_at), cms: toBuffer(r.cms), signerSha256: r.signer_sha256 };
}
