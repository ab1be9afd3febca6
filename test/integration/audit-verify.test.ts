/**
 * `hpki audit verify` against records edited or deleted behind the application's back: as a
 * superuser with the append-only trigger switched off, the way an attacker with database access
 * (not application access) would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Knex } from "knex";
import { appendAudit, type AuditEvent } from "../../src/audit/log.ts";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";

/** Runs `sql` on audit_log with its UPDATE/DELETE trigger disabled, in one transaction. */
async function behindTheBack(db: Knex, sql: string, bindings: Knex.RawBinding[] = []): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
    await trx.raw(sql, bindings);
    await trx.raw("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update");
  });
}

const event = (i: number): AuditEvent => ({
  actor: "cli:test", role: "ra", action: "test.recorded", objectType: "test", objectId: String(i),
  details: { i, 名前: "髙橋　誠", nested: { b: [1, 2.5, null], a: "x" } },
});

describe("verifyAuditChain", () => {
  let t: TestDb;
  let seqs: number[];
  let head: string;
  beforeAll(async () => {
    t = await openTestDatabase();
    for (let i = 1; i <= 4; i++) await t.db.transaction((trx) => appendAudit(trx, [event(i)]));
    // A rolled-back change consumes a sequence number and leaves no record: a legitimate gap.
    await t.db.transaction(async (trx) => {
      await appendAudit(trx, [event(99)]);
      throw new Error("rolled back");
    }).catch(() => {});
    const last = await t.db.transaction((trx) => appendAudit(trx, [event(5), event(6), event(7)]));
    head = last.toString("hex");
    seqs = (await t.db("audit_log").select("seq").orderBy("seq")).map((r) => Number(r.seq));
  });
  afterAll(async () => t?.cleanup());

  it("an empty log is intact with no head", async () => {
    const empty = await openTestDatabase();
    try {
      expect(await verifyAuditChain(empty.db)).toEqual({ ok: true, records: 0, head: null });
    } finally {
      await empty.cleanup();
    }
  });

  it("an intact chain verifies, across pages and across a rolled-back sequence number", async () => {
    expect(seqs).toEqual([1, 2, 3, 4, 6, 7, 8]);
    for (const pageSize of [1, 3, 7, 5000]) {
      expect(await verifyAuditChain(t.db, { pageSize })).toEqual({ ok: true, records: 7, head });
    }
  });

  it("an edited details field is reported at exactly that seq; restoring it restores the chain", async () => {
    const original = (await t.db("audit_log").where({ seq: 3 }).first()).details;
    await behindTheBack(t.db, `UPDATE audit_log SET details = jsonb_set(details, '{i}', '42') WHERE seq = 3`);
    const r = await verifyAuditChain(t.db, { pageSize: 2 });
    expect(r).toMatchObject({ ok: false, records: 2, firstBroken: { seq: 3, reason: "hash-mismatch" } });
    const row2 = await t.db("audit_log").where({ seq: 2 }).first();
    expect(r.head).toBe(Buffer.from(row2.hash).toString("hex"));
    await behindTheBack(t.db, `UPDATE audit_log SET details = ? WHERE seq = 3`, [JSON.stringify(original)]);
    expect((await verifyAuditChain(t.db)).ok).toBe(true);
  });

  it("a time moved by one millisecond is a hash mismatch (at round-trips at millisecond precision)", async () => {
    await behindTheBack(t.db, `UPDATE audit_log SET at = at + interval '1 millisecond' WHERE seq = 6`);
    expect((await verifyAuditChain(t.db)).firstBroken).toMatchObject({ seq: 6, reason: "hash-mismatch" });
    await behindTheBack(t.db, `UPDATE audit_log SET at = at - interval '1 millisecond' WHERE seq = 6`);
    expect((await verifyAuditChain(t.db)).ok).toBe(true);
  });

  it("a rewritten prev_hash is a prev-hash-mismatch at that seq", async () => {
    const row = await t.db("audit_log").where({ seq: 2 }).first();
    await behindTheBack(t.db, `UPDATE audit_log SET prev_hash = ? WHERE seq = 2`, [Buffer.alloc(32, 7)]);
    expect((await verifyAuditChain(t.db)).firstBroken).toEqual({
      seq: 2, reason: "prev-hash-mismatch", expected: Buffer.from(row.prev_hash).toString("hex"), actual: "07".repeat(32),
    });
    await behindTheBack(t.db, `UPDATE audit_log SET prev_hash = ? WHERE seq = 2`, [Buffer.from(row.prev_hash)]);
    expect((await verifyAuditChain(t.db)).ok).toBe(true);
  });

  it("a deleted middle record is a sequence-gap at the next record", async () => {
    await behindTheBack(t.db, `DELETE FROM audit_log WHERE seq = 7`);
    expect(await verifyAuditChain(t.db, { pageSize: 2 })).toMatchObject({
      ok: false, records: 5, firstBroken: { seq: 8, reason: "sequence-gap", expected: "7", actual: "8" },
    });
  });
});

describe("hpki audit verify (CLI process)", { timeout: 300_000 }, () => {
  let cli: CliHarness;
  beforeAll(async () => {
    cli = await openCliHarness("hpki-audit-");
  });
  afterAll(async () => cli?.cleanup());


  it("says intact, then names the edited record in English and Japanese with exit code 1", async () => {
    for (let i = 0; i < 3; i++) {
      const imp = cli.hpki("licenses", "import", "policies/demo/licence-register.csv", "--json");
      expect(imp.code, imp.err).toBe(0);
    }
    const ok = cli.hpki("audit", "verify");
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^audit log: 3 records, chain intact, head [0-9a-f]{64}\n監査ログ: 3 件/);
    const okJson = cli.hpki("audit", "verify", "--json");
    expect(okJson.json()).toMatchObject({ ok: true, records: 3 });

    await cli.withDb((db) => behindTheBack(db, `UPDATE audit_log SET details = jsonb_set(details, '{inserted}', '0') WHERE seq = 1`));
    const broken = cli.hpki("audit", "verify");
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/chain BROKEN at seq 1 \(hash-mismatch\)/);
    expect(broken.out).toMatch(/seq 1 でハッシュ連鎖が切れています/);
    const brokenJson = cli.hpki("audit", "verify", "--json");
    expect(brokenJson.code).toBe(1);
    expect(brokenJson.json()).toMatchObject({ ok: false, records: 0, head: null, firstBroken: { seq: 1, reason: "hash-mismatch" } });
  });
});
