/**
 * Test databases. With DATABASE_URL set (CI starts a throwaway cluster), every caller gets a
 * fresh Postgres database of its own, dropped afterwards; without it, an in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import knexFactory from "knex";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";

export interface TestDb {
  db: Db;
  /** Connection URL of the fresh Postgres database, or undefined for PGlite. */
  url: string | undefined;
  cleanup(): Promise<void>;
}

export async function openTestDatabase(): Promise<TestDb> {
  const base = process.env.DATABASE_URL;
  const cfg = loadConfig({ HPKI_HOME: "/nonexistent" });
  if (!base) {
    const db = await openDatabase(cfg, { pgliteDir: "memory" });
    return { db, url: undefined, cleanup: () => db.destroy() };
  }
  const name = `hpki_test_${randomBytes(6).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: base, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const db = await openDatabase(cfg, { databaseUrl: url.toString() });
  return {
    db,
    url: url.toString(),
    cleanup: async () => {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}
