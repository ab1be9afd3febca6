/**
 * Database connection: PostgreSQL at DATABASE_URL when set (an external server), else the cluster
 * hpki manages under $HPKI_HOME/pg (src/store/managed-pg.ts: initdb on first use, started on
 * demand, unix socket only). Either way a real multi-connection PostgreSQL: the CLI runs beside
 * `hpki serve`, several servers share one home, and commits are fsynced.
 */
import knexFactory, { type Knex } from "knex";
import pg from "pg";
import type { Config } from "../config.ts";
import { ensureManagedCluster } from "./managed-pg.ts";
import { migrationSource } from "./migrations.ts";

// int8 → JS number: ids and counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${v} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
});

export type Db = Knex;

const MIGRATION_LOCK_KEY = 0x4850_4d49; // "HPMI"

export interface OpenDatabaseOptions {
  /** Override the Postgres URL of `cfg` (tests, benches). */
  databaseUrl?: string;
  /** Pool size; default 10. */
  poolMax?: number;
  /** Run pending migrations (default true). */
  migrate?: boolean;
}

/**
 * The connection URL for `cfg`: DATABASE_URL (or `override`), else the managed cluster's, started
 * (and on first use created) when it does not run. @throws ManagedDatabaseError as ensureManagedCluster.
 */
export async function databaseUrlFor(cfg: Config, override?: string): Promise<string> {
  return override ?? cfg.databaseUrl ?? (await ensureManagedCluster(cfg));
}

/**
 * Opens the database for `cfg` and brings its schema up to date (forward-only migrations from
 * migrations/; processes starting together migrate one after the other). Returns a knex
 * instance; call `db.destroy()` when done. Throws when Postgres is unreachable or cannot be
 * started, or a migration fails (the failed migration's transaction is rolled back).
 */
export async function openDatabase(cfg: Config, opts: OpenDatabaseOptions = {}): Promise<Db> {
  const url = await databaseUrlFor(cfg, opts.databaseUrl);
  const db = knexFactory({ client: "pg", connection: url, pool: { min: 0, max: opts.poolMax ?? 10 } });
  try {
    if (opts.migrate !== false) {
      if ((opts.poolMax ?? 10) >= 2) {
        // Two processes starting on a fresh database at once: knex's lock row refuses the second
        // ("Migration table is already locked") rather than waiting, and creating its own tables
        // can race too. An advisory lock (held on a connection of its own) makes it wait instead.
        await db.transaction(async (lock) => {
          await lock.raw("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK_KEY]);
          await db.migrate.latest({ migrationSource });
        });
      } else {
        await db.migrate.latest({ migrationSource });
      }
    }
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return db;
}
