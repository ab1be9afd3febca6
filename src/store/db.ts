/**
 * Database connection: Postgres at DATABASE_URL in production, embedded PGlite (Postgres compiled
 * to WASM) in $HPKI_HOME/db as the zero-setup default. Same SQL on both; the differences PGlite
 * shows (bytea as Uint8Array, int8 as number, one connection) are absorbed in src/store/rows.ts.
 */
import fs from "node:fs";
import knexFactory, { type Knex } from "knex";
import pg from "pg";
import ClientPGLite from "knex-pglite";
import type { Config } from "../config.ts";
import { migrationSource } from "./migrations.ts";
import { lockPgliteDir } from "./pglite-lock.ts";

// int8 → JS number, as PGlite already does: ids and counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 ${v} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
});

export type Db = Knex;

const MIGRATION_LOCK_KEY = 0x4850_4d49; // "HPMI"

export interface OpenDatabaseOptions {
  /** Override the Postgres URL or PGlite directory of `cfg` (tests). `memory` opens an in-memory PGlite. */
  databaseUrl?: string;
  pgliteDir?: string | "memory";
  /** Postgres pool size; default 10. Ignored for PGlite (one connection). */
  poolMax?: number;
  /** Run pending migrations (default true). */
  migrate?: boolean;
}

/**
 * Opens the database for `cfg` and brings its schema up to date (forward-only migrations from
 * migrations/; on Postgres, processes starting together migrate one after the other). Returns a
 * knex instance; call `db.destroy()` when done. Throws when Postgres is unreachable or a migration
 * fails (the failed migration's transaction is rolled back).
 */
export async function openDatabase(cfg: Config, opts: OpenDatabaseOptions = {}): Promise<Db> {
  const url = opts.databaseUrl ?? (opts.pgliteDir ? undefined : cfg.databaseUrl);
  let db: Knex;
  if (url) {
    db = knexFactory({ client: "pg", connection: url, pool: { min: 0, max: opts.poolMax ?? 10 } });
  } else {
    const dir = opts.pgliteDir ?? cfg.pgliteDir;
    let release = () => {};
    if (dir !== "memory") {
      fs.mkdirSync(dir, { recursive: true });
      release = lockPgliteDir(dir);
    }
    // The lock lives as long as the client: released when knex destroys it.
    const Base = ClientPGLite as unknown as new (config: Knex.Config) => { destroy(cb?: unknown): Promise<void> };
    class LockedClientPGLite extends Base {
      override async destroy(cb?: unknown): Promise<void> {
        try {
          return await super.destroy(cb);
        } finally {
          release();
        }
      }
    }
    db = knexFactory({
      client: LockedClientPGLite as unknown as typeof knexFactory.Client,
      dialect: "postgres",
      connection: dir === "memory" ? {} : { filename: dir },
    } as Knex.Config);
  }
  try {
    if (opts.migrate !== false) {
      if (url && (opts.poolMax ?? 10) >= 2) {
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

/** True when `db` is the embedded PGlite (single connection: no SKIP LOCKED concurrency). */
export function isEmbedded(db: Db): boolean {
  return (db.client as { constructor: { name: string } }).constructor.name.includes("PGLite");
}
