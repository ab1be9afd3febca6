import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendAudit } from "../../src/audit/log.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";

describe("store: migrations and the append-only audit log", () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDatabase();
  });
  afterAll(async () => t?.cleanup());

  it("creates the schema", async () => {
    for (const table of ["audit_log", "certificate_authorities", "certificates", "cards"]) {
      expect(await t.db.schema.hasTable(table)).toBe(true);
    }
  });

  it("chains audit records and refuses UPDATE and DELETE", async () => {
    const head1 = await t.db.transaction((trx) =>
      appendAudit(trx, [{ actor: "test", role: "system", action: "x.one", objectType: "x", objectId: "1" }]),
    );
    const head2 = await t.db.transaction((trx) =>
      appendAudit(trx, [{ actor: "test", role: "system", action: "x.two", objectType: "x", objectId: "2", details: { 名前: "山田" } }]),
    );
    const rows = await t.db("audit_log").orderBy("seq");
    expect(rows).toHaveLength(2);
    expect(Buffer.from(rows[1].prev_hash).equals(head1)).toBe(true);
    expect(Buffer.from(rows[1].hash).equals(head2)).toBe(true);
    await expect(t.db("audit_log").update({ actor: "mallory" })).rejects.toThrow(/append-only/);
    await expect(t.db("audit_log").del()).rejects.toThrow(/append-only/);
  });

  it("rolls back audit records with the failed change", async () => {
    const before = await t.db("audit_log").count({ n: "*" }).first();
    await expect(
      t.db.transaction(async (trx) => {
        await appendAudit(trx, [{ actor: "test", role: "system", action: "x.three", objectType: "x", objectId: "3" }]);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    const after = await t.db("audit_log").count({ n: "*" }).first();
    expect(Number(after?.n)).toBe(Number(before?.n));
  });
});
