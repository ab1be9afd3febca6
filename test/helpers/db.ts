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

/** A migrated database for one test file: fresh Postgres database or in-memory PGlite. */
export async function openTestDatabase(): Promise<TestDb> {
  const fresh = await freshDatabaseUrl();
  const cfg = loadConfig({ HPKI_HOME: "/nonexistent" });
  const db = await openDatabase(cfg, fresh.url ? { databaseUrl: fresh.url } : { pgliteDir: "memory" });
  return {
    db,
    url: fresh.url,
    cleanup: async () => {
      await db.destroy();
      await fresh.cleanup();
    },
  };
}

/**
 * A fresh, empty Postgres database on DATABASE_URL's server (dropped, connections and all, by
 * cleanup), or undefined when DATABASE_URL is unset so callers fall back to PGlite. Also used by
 * tests that run the CLI in a child process.
 */
export async function freshDatabaseUrl(
  base: string | undefined = process.env.DATABASE_URL,
): Promise<{ url: string | undefined; cleanup(): Promise<void> }> {
  if (!base) return { url: undefined, cleanup: async () => {} };
  const name = `hpki_test_${randomBytes(6).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: base, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    cleanup: async () => {
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}
