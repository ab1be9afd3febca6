/**
 * Named statements on knex's pool (src/store/prepared.ts) on a real Postgres: the same name runs
 * on every pooled connection (prepared on each at first use), a failing statement gives its
 * connection back (the pool is not drained), and results match what knex reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";
import { prepared, runPrepared } from "../../src/store/prepared.ts";
import { freshDatabaseUrl } from "../helpers/db.ts";

let db: Db;
let cleanup: () => Promise<void>;
const insert = prepared("test_prepared_insert", "INSERT INTO prepared_probe (k, v, at) VALUES ($1, $2, $3)");
const byKey = prepared("test_prepared_by_key", "SELECT k, v, at FROM prepared_probe WHERE k = $1");

beforeAll(async () => {
  const fresh = await freshDatabaseUrl();
  // Two connections: twenty concurrent statements must share them.
  db = await openDatabase(loadConfig({ HPKI_HOME: "/nonexistent" }), { databaseUrl: fresh.url, poolMax: 2 });
  await db.schema.createTable("prepared_probe", (t) => {
    t.text("k").primary();
    t.jsonb("v").notNullable();
    t.timestamp("at", { useTz: true }).notNullable();
  });
  cleanup = async () => {
    await db.destroy();
    await fresh.cleanup();
  };
});

afterAll(async () => cleanup?.());

describe("runPrepared", () => {
  it("runs one named statement on every pooled connection, with driver conversions as knex has them", async () => {
    const at = new Date("2026-12-03T00:00:00.000Z");
    const n = await Promise.all(Array.from({ length: 20 }, (_, i) => runPrepared(db, insert, [`k${i}`, JSON.stringify({ i, name: "山田" }), at])));
    expect(n.every((r) => r.rowCount === 1)).toBe(true);
    const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => runPrepared(db, byKey, [`k${i}`])));
    expect(rows.map((r) => (r.rows[0].v as { i: number }).i)).toEqual([...Array(20).keys()]);
    expect(rows[3].rows[0].at).toEqual(at);
    expect(await db("prepared_probe").where({ k: "k3" }).first()).toEqual(rows[3].rows[0]);
  });

  it("a failing statement throws the driver's error and gives its connection back", async () => {
    for (let i = 0; i < 5; i++) {
      await expect(runPrepared(db, insert, ["k0", JSON.stringify({}), new Date()])).rejects.toThrow(/duplicate key/);
    }
    // Both connections are still in the pool.
    const both = await Promise.all([runPrepared(db, byKey, ["k1"]), runPrepared(db, byKey, ["k2"]), db.raw("SELECT 1")]);
    expect(both[0].rows).toHaveLength(1);
  });
});
