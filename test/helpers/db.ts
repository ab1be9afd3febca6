/**
 * Test databases: every caller gets a fresh Postgres database of its own on DATABASE_URL's server,
 * dropped afterwards. DATABASE_URL is always set under vitest: the developer's or CI's, else the
 * throwaway cluster test/global-setup.ts starts for the run.
 */
import { randomBytes } from "node:crypto";
import knexFactory from "knex";
import { loadConfig } from "../../src/config.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";

export interface TestDb {
  db: Db;
  /** Connection URL of the fresh Postgres database. */
  url: string;
  cleanup(): Promise<void>;
}

/** A migrated database for one test file: a fresh Postgres database. */
export async function openTestDatabase(): Promise<TestDb> {
  const fresh = await freshDatabaseUrl();
  const cfg = loadConfig({ HPKI_HOME: "/nonexistent" });
  const db = await openDatabase(cfg, { databaseUrl: fresh.url });
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
 * cleanup). Also used by tests that run the CLI in a child process. @throws when `base` is unset
 * (outside vitest's global set-up).
 */
export async function freshDatabaseUrl(
  base: string | undefined = process.env.DATABASE_URL,
): Promise<{ url: string; cleanup(): Promise<void> }> {
  if (!base) throw new Error("DATABASE_URL is unset: run the tests through vitest (test/global-setup.ts starts a cluster)");
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
