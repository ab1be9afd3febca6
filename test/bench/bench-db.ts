/**
 * The benches' database: a fresh Postgres database on DATABASE_URL's server, else on the
 * PostgreSQL cluster hpki manages under the bench's $HPKI_HOME (the default set-up, fsync on),
 * which cleanup stops.
 */
import type { Config } from "../../src/config.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";
import { ensureManagedCluster, stopManagedCluster } from "../../src/store/managed-pg.ts";
import { freshDatabaseUrl } from "../helpers/db.ts";

export interface BenchDatabase {
  db: Db;
  kind: "PostgreSQL (DATABASE_URL)" | "PostgreSQL (managed default, $HPKI_HOME/pg)";
  /** URL of the fresh database (for child processes). */
  url: string;
  /** Closes the connection, drops the fresh database and stops a managed cluster. */
  cleanup(): Promise<void>;
}

/** Opens a fresh database for `cfg`: on cfg.databaseUrl's server when set, else on the managed cluster under cfg.home. */
export async function openBenchDatabase(cfg: Config): Promise<BenchDatabase> {
  const managed = !cfg.databaseUrl;
  const fresh = await freshDatabaseUrl(cfg.databaseUrl ?? (await ensureManagedCluster(cfg)));
  const db = await openDatabase(cfg, { databaseUrl: fresh.url, poolMax: 8 });
  return {
    db,
    kind: managed ? "PostgreSQL (managed default, $HPKI_HOME/pg)" : "PostgreSQL (DATABASE_URL)",
    url: fresh.url,
    cleanup: async () => {
      await db.destroy().catch(() => undefined); // a bench may have closed it already
      try {
        await fresh.cleanup();
      } finally {
        // Stopped even when the drop failed (a child's connection still closing), or it outlives the bench.
        if (managed) await stopManagedCluster(cfg);
      }
    },
  };
}
