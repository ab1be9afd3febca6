/**
 * CRL and ARL generation (DESIGN §5, RFC 5280 §5): one transaction locks the CA's row, allocates
 * crlNumber = max + 1, streams the CA's revocations sorted by serial (keyset pagination, one page
 * of rows in memory at a time) into the CRL encoder, has the HSM sign the SHA-256 of the
 * TBSCertList once, checks that signature, stores the CRL row and its audit record.
 *
 * Why everything in one transaction: crlNumber and the CRL row commit together or not at all, so
 * the number never goes backwards or repeats across restarts; a second generator (another
 * process) waits on the CA row lock and then sees the first one's number.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { CRL_REASON_CODES, CrlEncoder, type CrlReason } from "../pki/crl.ts";
import { parseCrlPolicy, type CrlPolicy } from "../pki/crl-policy.ts";
import { authorityKeyIdentifierValue } from "../pki/extensions.ts";
import { POLICIES_DIR } from "../policies.ts";
import { toBuffer } from "../store/rows.ts";
import { caFromRow, issuerContextFor, signatureAlgorithmFor, type CaRecord } from "./ca-registry.ts";
import type { Actor } from "../audit/actor.ts";

/** A CRL (issuing CA) or ARL (root) as stored. */
export interface GeneratedCrl {
  caName: string;
  kind: "crl" | "arl";
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  /** CertificateList DER. */
  der: Buffer;
  sha256: string;
}

export interface CrlGenerationDeps {
  db: Knex;
  keys: CaKeyStore;
  policy: CrlPolicy;
}

export interface CrlGenerationOptions {
  now?: () => Date;
  /** Revocation rows fetched per keyset page; default 20,000. */
  pageSize?: number;
  /** CRLs larger than this go to the database in pieces of this size; default 4 MiB. */
  storeChunkBytes?: number;
}

/** Reads policies/crl.yaml (or `dir`/crl.yaml). @throws Error naming the file when invalid. */
export function loadCrlPolicy(dir: string = POLICIES_DIR): CrlPolicy {
  const file = path.join(dir, "crl.yaml");
  return parseCrlPolicy(fs.readFileSync(file, "utf8"), file);
}

/**
 * Generates, signs and stores the next CRL of `caName` (the ARL when it is the root). Returns it;
 * writing it out is the caller's choice. @throws Error for an unknown CA, a CA key missing from
 * the HSM, or a signature that does not verify against the CA certificate's key (nothing stored).
 */
export async function generateCrl(deps: CrlGenerationDeps, caName: string, by: Actor, opts: CrlGenerationOptions = {}): Promise<GeneratedCrl> {
  const { db, keys, policy } = deps;
  const cas = (await db("certificate_authorities").select()).map(caFromRow);
  const ca = cas.find((c) => c.name === caName);
  if (!ca) throw new Error(`no CA named "${caName}" (see \`hpki ca list\`) / CA「${caName}」は存在しません`);
  const parent = cas.find((c) => c.id === ca.parentId) ?? null;
  const key = await keys.findKey(ca.key.label);
  if (!key) throw new Error(`CA key "${ca.key.label}" of ${ca.name} is not in the HSM`);
  const rule = ca.kind === "root" ? policy.root : policy.issuing;

  return db.transaction(async (trx) => {
    await trx.raw("SELECT id FROM certificate_authorities WHERE id = ? FOR UPDATE", [ca.id]);
    // Revocation writers hold this row FOR SHARE and stamp revocations.updated_at after their lock:
    // every change stamped before this instant is visible to this CRL, every later one is newer.
    const revocationsAsOf = (await trx.raw("SELECT clock_timestamp() AS t")).rows[0].t as Date;
    // Taken after the lock, so a later crlNumber never carries an earlier thisUpdate.
    const thisUpdate = new Date(Math.floor((opts.now?.() ?? new Date()).getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + rule.validityHours * 3_600_000);
    const keepAfter = new Date(thisUpdate.getTime() - rule.keepExpiredHours * 3_600_000);
    const last = await trx("crls").where({ ca_id: ca.id }).max({ n: "crl_number" }).first();
    const crlNumber = Number(last?.n ?? 0) + 1;
    const expected = await trx("revocations").where({ ca_id: ca.id }).whereNull("released_at").where("not_after", ">=", keepAfter).count({ n: "*" }).first();
    const encoder = new CrlEncoder({
      signatureAlgorithm: signatureAlgorithmFor(ca.key.algorithm),
      issuer: ca.subjectDer,
      authorityKeyIdentifier: crlAuthorityKeyIdentifier(ca, parent),
      crlNumber,
      thisUpdate,
      nextUpdate,
      issuingDistributionPoint: ca.kind === "root" ? { fullName: ca.crlUrl ? { uri: ca.crlUrl } : undefined, onlyContainsCACerts: true } : undefined,
    }, Number(expected?.n ?? 0));
    await streamRevocations(trx, ca.id, keepAfter, opts.pageSize ?? 20_000, encoder);
    const tbs = encoder.finish();
    const signature = await keys.signDigest(key, createHash("sha256").update(tbs.tbs).digest());
    // Never publish a CRL the CA's own certificate key does not verify (HSM or key mix-up).
    if (!verify("sha256", tbs.tbs, createPublicKey({ key: key.spki, format: "der", type: "spki" }), signature)) {
      throw new Error(`CRL signature of ${ca.name} does not verify with its key "${key.label}"; nothing stored`);
    }
    const der = tbs.certificateList(signature);
    const sha256 = createHash("sha256").update(der).digest();
    await storeCrlRow(trx, { ca_id: ca.id, crl_number: crlNumber, this_update: thisUpdate, next_update: nextUpdate, entries: tbs.entries, sha256, revocations_as_of: revocationsAsOf }, der, opts.storeChunkBytes ?? 4 << 20);
    const kind = ca.kind === "root" ? "arl" : "crl";
    await appendAudit(trx, [{
      ...by,
      action: `${kind}.generated`,
      objectType: kind,
      objectId: `${ca.name}:${crlNumber}`,
      details: { crlNumber, entries: tbs.entries, thisUpdate, nextUpdate, sha256: sha256.toString("hex"), bytes: der.length },
    }]);
    return { caName: ca.name, kind, crlNumber, thisUpdate, nextUpdate, entries: tbs.entries, der, sha256: sha256.toString("hex") };
  });
}

/**
 * Inserts the crls row. A large CRL goes to the server in `chunk`-byte pieces (a temporary table,
 * dropped at commit) and is joined there: binding one 50 MB parameter would make the driver copy
 * the whole CRL into its send buffer — 50 MB more peak memory for a million entries.
 */
async function storeCrlRow(trx: Knex.Transaction, row: Record<string, unknown>, der: Buffer, chunk: number): Promise<void> {
  if (der.length <= chunk) {
    await trx("crls").insert({ ...row, der });
    return;
  }
  await trx.raw("CREATE TEMPORARY TABLE crl_chunks (i int PRIMARY KEY, chunk bytea NOT NULL) ON COMMIT DROP");
  // As crls.der: no pglz attempt on pieces that barely compress.
  await trx.raw("ALTER TABLE crl_chunks ALTER COLUMN chunk SET STORAGE EXTERNAL");
  for (let i = 0; i * chunk < der.length; i++) {
    await trx.raw("INSERT INTO crl_chunks (i, chunk) VALUES (?, ?)", [i, der.subarray(i * chunk, (i + 1) * chunk)]);
  }
  const cols = Object.keys(row);
  await trx.raw(`INSERT INTO crls (${cols.join(", ")}, der) SELECT ${cols.map(() => "?").join(", ")}, string_agg(chunk, ''::bytea ORDER BY i) FROM crl_chunks`,
    cols.map((c) => row[c]) as Knex.RawBinding[]);
  await trx.raw("DROP TABLE crl_chunks");
}

/**
 * The CRL's AKI (RFC 5280 §5.2.1): keyid plus the CA certificate's issuer and serial, the form the
 * real HPKI CRLs carry — the same value the CA's subscriber certificates have.
 */
function crlAuthorityKeyIdentifier(ca: CaRecord, parent: CaRecord | null): Buffer {
  const ctx = issuerContextFor(ca, parent);
  return authorityKeyIdentifierValue(ctx.keyIdentifier, ctx.authorityCertIssuer, ctx.authorityCertSerialNumber);
}

/** Stored reason names by CRLReason code (RFC 5280 §5.3.1; code 7 is unused): array index = code. */
const REASON_BY_CODE: readonly (CrlReason | null)[] = Array.from({ length: 11 }, (_, code) =>
  (Object.keys(CRL_REASON_CODES) as CrlReason[]).find((r) => CRL_REASON_CODES[r] === code) ?? null);
const REASON_ARRAY_SQL = `ARRAY[${REASON_BY_CODE.map((r) => `'${r ?? "-"}'`).join(",")}]`;

/**
 * Feeds every listed revocation of CA `caId` to `encoder` in CRL order — numeric serial order,
 * i.e. (octet_length(serial), serial) over minimal magnitudes — page by page with a keyset. Skips
 * released holds and entries whose certificate expired before `keepAfter`.
 *
 * Each page comes back as ONE bytea the database packs (string_agg over the ordered page), not as
 * one JS row object per revocation: per entry int2 serial length ‖ serial ‖ float8 revocation
 * Unix seconds ‖ int2 reason code ‖ float8 invalidity seconds (−1 when absent). The next page is
 * requested before the current one is encoded, so the database and the encoder work at once.
 * Should the aggregate ever reorder rows, the encoder refuses (it checks the order) — never a
 * wrong CRL.
 */
async function streamRevocations(trx: Knex.Transaction, caId: number, keepAfter: Date, pageSize: number, encoder: CrlEncoder): Promise<void> {
  const limit = Math.max(1, Math.floor(pageSize));
  const page = (keyset: string) => `SELECT count(*) AS n, string_agg(
      int2send(octet_length(serial)::int2) || serial || float8send(floor(date_part('epoch', revoked_at)))
      || int2send((array_position(${REASON_ARRAY_SQL}, reason) - 1)::int2)
      || float8send(coalesce(floor(date_part('epoch', invalidity_date)), -1)), ''::bytea) AS packed
    FROM (SELECT serial, revoked_at, reason, invalidity_date FROM revocations
          WHERE ca_id = ? AND released_at IS NULL AND not_after >= ? ${keyset}
          ORDER BY octet_length(serial), serial LIMIT ${limit}) p`;
  const fetch = (after: Buffer | null): Promise<{ rows: { n: number | string; packed: Uint8Array | null }[] }> =>
    after
      ? trx.raw(page("AND (octet_length(serial), serial) > (?, ?)"), [caId, keepAfter, after.length, after])
      : trx.raw(page(""), [caId, keepAfter]);
  let pending = fetch(null);
  for (;;) {
    const res = await pending;
    const n = Number(res.rows[0].n);
    if (n === 0) return;
    const b = toBuffer(res.rows[0].packed);
    const lastLen = lastSerialLength(b, n);
    if (n === limit) pending = fetch(Buffer.from(b.subarray(lastLen.start, lastLen.start + lastLen.length)));
    for (let p = 0; p < b.length;) {
      const len = b.readUInt16BE(p);
      const serial = b.subarray(p + 2, p + 2 + len);
      p += 2 + len;
      const code = b.readInt16BE(p + 8);
      if (code < 0 || !REASON_BY_CODE[code]) throw new Error(`revocation ${serial.toString("hex")} has an unknown reason`);
      encoder.addEntry(serial, b.readDoubleBE(p), code, b.readDoubleBE(p + 10));
      p += 18;
    }
    if (n < limit) return;
  }
}

/** Offset and length of the last serial in a packed page of `n` entries (walks the length prefixes). */
function lastSerialLength(b: Buffer, n: number): { start: number; length: number } {
  let p = 0;
  let last = { start: 0, length: 0 };
  for (let i = 0; i < n; i++) {
    const len = b.readUInt16BE(p);
    last = { start: p + 2, length: len };
    p += 2 + len + 18;
  }
  return last;
}
