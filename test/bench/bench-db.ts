/** The benches' database: a fresh Postgres database on DATABASE_URL's server, else PGlite. */
import type { Config } from "../../src/config.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";
import { freshDatabaseUrl } from "../helpers/db.ts";

export interface BenchDatabase {
  db: Db;
  kind: "PostgreSQL" | "PGlite (embedded)";
  /** URL of the fresh Postgres database (for child processes), undefined for PGlite. */
  url: string | undefined;
  /** Closes the connection and drops the fresh database. */
  cleanup(): Promise<void>;
}

/** Opens a fresh database for `cfg`: on cfg.databaseUrl's server when set, else PGlite under cfg.home. */
export async function openBenchDatabase(cfg: Config): Promise<BenchDatabase> {
  const fresh = await freshDatabaseUrl(cfg.databaseUrl);
  const db = await openDatabase(cfg, fresh.url ? { databaseUrl: fresh.url, poolMax: 8 } : {});
  return {
    db,
    kind: fresh.url ? "PostgreSQL" : "PGlite (embedded)",
    url: fresh.url,
    cleanup: async () => {
      await db.destroy();
      await fresh.cleanup();
    },
  };
}
