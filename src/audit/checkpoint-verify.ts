/**
 * The checks `hpki audit verify` adds to the hash chain (verify.ts): the stored head row against
 * the last record, and the log against signed checkpoints — the latest in the database and,
 * optionally, one an auditor kept (`--checkpoint FILE`). See checkpoint.ts for why.
 *
 * Problems, per checkpoint:
 * - "bad-signature": the CMS does not verify (content, messageDigest or signature changed);
 * - "foreign-signer": it verifies, but not with the audit key in the HSM (a forged checkpoint);
 * - "truncated": the log ends before the checkpoint's record: records were cut from the end;
 * - "rewritten": the log has a record at the checkpoint's seq with another hash;
 * - "missing": the log goes past that seq but the record is not there (deleted, chain re-linked).
 */
import { createHash, createPublicKey, verify, X509Certificate } from "node:crypto";
import type { Knex } from "knex";
import { parseCmsSignedData } from "../pki/cms.ts";
import { toBuffer } from "../store/rows.ts";
import { CHECKPOINT_TYPE, latestCheckpoint, type CheckpointContent } from "./checkpoint.ts";
import { GENESIS_HASH } from "./log.ts";

export type CheckpointProblem = "bad-signature" | "foreign-signer" | "truncated" | "rewritten" | "missing";

export interface CheckpointCheck {
  source: "database" | "file";
  /** Database id (source "database"). */
  id?: number;
  seq?: number;
  hash?: string;
  signedAt?: string;
  /** "hsm": the signer is the audit key in the HSM; "unpinned": checked only against the certificate it carries. */
  signer: "hsm" | "unpinned" | "other";
  ok: boolean;
  problem?: CheckpointProblem;
  /** One line, English and Japanese. */
  message: string;
  messageJa: string;
}

export interface HeadCheck {
  ok: boolean;
  /** audit_head.hash, hex. */
  stored: string;
  /** Hash of the last record (the genesis hash for an empty log), hex. */
  last: string;
  /** seq of the last record (0 when empty). */
  lastSeq: number;
}

/** Reads and checks a CMS checkpoint: signature, messageDigest, content shape; `spki` pins the signer. */
export function openCheckpoint(cms: Uint8Array, pinnedSpki: Buffer | null): { content: CheckpointContent | null; signer: CheckpointCheck["signer"]; valid: boolean } {
  try {
    const p = parseCmsSignedData(cms);
    const cert = new X509Certificate(p.certificate);
    const digestOk = createHash("sha256").update(p.content).digest().equals(p.messageDigest);
    const sigOk = verify("sha256", p.signedAttributes, cert.publicKey, p.signature);
    const content = JSON.parse(p.content.toString("utf8")) as CheckpointContent;
    const shapeOk = content.type === CHECKPOINT_TYPE && Number.isSafeInteger(content.seq) && /^[0-9a-f]{64}$/.test(content.hash);
    const spki = cert.publicKey.export({ type: "spki", format: "der" });
    const signer = pinnedSpki ? (spki.equals(pinnedSpki) ? "hsm" : "other") : "unpinned";
    return { content: shapeOk ? content : null, signer, valid: digestOk && sigOk && shapeOk };
  } catch {
    return { content: null, signer: "unpinned", valid: false };
  }
}

/** Compares the stored head row with the last record. */
export async function checkHead(db: Knex): Promise<HeadCheck> {
  const stored = toBuffer((await db("audit_head").where({ id: 1 }).first("hash")).hash);
  const last = (await db.raw("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).rows[0];
  const lastHash = last ? toBuffer(last.hash) : GENESIS_HASH;
  return { ok: stored.equals(lastHash), stored: stored.toString("hex"), last: lastHash.toString("hex"), lastSeq: last ? Number(last.seq) : 0 };
}

/** Checks one checkpoint (CMS DER) against the log of `db`. */
export async function checkCheckpoint(db: Knex, cms: Uint8Array, source: CheckpointCheck["source"], pinnedSpki: Buffer | null, id?: number): Promise<CheckpointCheck> {
  const opened = openCheckpoint(cms, pinnedSpki);
  const base = { source, ...(id !== undefined ? { id } : {}), signer: opened.signer };
  const name = id !== undefined ? `checkpoint #${id}` : "the checkpoint file";
  const nameJa = id !== undefined ? `チェックポイント #${id}` : "チェックポイントファイル";
  if (!opened.valid || !opened.content) {
    return { ...base, ok: false, problem: "bad-signature", message: `${name}: the signature does not verify (the checkpoint was altered)`, messageJa: `${nameJa}: 署名を検証できません（改ざんされています）` };
  }
  const c = opened.content;
  const at = { seq: c.seq, hash: c.hash, signedAt: c.signedAt };
  if (opened.signer === "other") {
    return { ...base, ...at, ok: false, problem: "foreign-signer", message: `${name}: signed by a key that is not the audit key in the HSM (forged)`, messageJa: `${nameJa}: HSM の監査鍵以外の鍵で署名されています（偽造）` };
  }
  if (c.seq === 0) return { ...base, ...at, ok: true, message: `${name} (empty log at ${c.signedAt}): nothing to compare`, messageJa: `${nameJa}（${c.signedAt} 時点で記録なし）: 比較対象なし` };
  const row = await db("audit_log").where({ seq: c.seq }).first("hash");
  if (row) {
    if (toBuffer(row.hash).toString("hex") === c.hash) {
      return { ...base, ...at, ok: true, message: `${name} of ${c.signedAt} (seq ${c.seq}) is covered by the log`, messageJa: `${nameJa}（${c.signedAt}、seq ${c.seq}）はログと一致します` };
    }
    return { ...base, ...at, ok: false, problem: "rewritten", message: `${name}: record seq ${c.seq} has another hash than the signed ${c.hash} (the log was rewritten)`, messageJa: `${nameJa}: 記録 seq ${c.seq} のハッシュが署名済みの値と異なります（ログが書き換えられています）` };
  }
  const max = Number((await db.raw("SELECT coalesce(max(seq), 0) AS s FROM audit_log")).rows[0].s);
  if (max < c.seq) {
    return {
      ...base, ...at, ok: false, problem: "truncated",
      message: `audit log TRUNCATED: ${name} of ${c.signedAt} covers records up to seq ${c.seq}, but the log ends at seq ${max}; records after seq ${max} were cut from the end`,
      messageJa: `監査ログの末尾が削除されています: ${nameJa}（${c.signedAt}）は seq ${c.seq} までの記録を保証していますが、ログは seq ${max} で終わっています`,
    };
  }
  return { ...base, ...at, ok: false, problem: "missing", message: `${name}: record seq ${c.seq} is missing from the log (deleted)`, messageJa: `${nameJa}: 記録 seq ${c.seq} がログにありません（削除）` };
}

/** The latest database checkpoint checked against the log, or null when there is none. */
export async function checkLatestCheckpoint(db: Knex, pinnedSpki: Buffer | null): Promise<CheckpointCheck | null> {
  const latest = await latestCheckpoint(db);
  return latest ? checkCheckpoint(db, latest.cms, "database", pinnedSpki, latest.id) : null;
}

/** A checkpoint file as DER, or PEM ("-----BEGIN CMS-----" / PKCS7). */
export function checkpointFileBytes(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1");
  const m = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/.exec(text);
  return m ? Buffer.from(m[1].replace(/\s+/g, ""), "base64") : bytes;
}
