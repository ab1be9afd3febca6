/**
 * Serialises key ceremonies: "find the key, else generate it" must not interleave, or two runs
 * could each create a key under one label. In-process by a promise chain; across processes on
 * Postgres by a transaction-scoped advisory lock held while the ceremony runs. (Embedded PGlite is
 * single-process by its lock file, and its one connection could not hold a lock transaction open
 * while the ceremony queries.)
 */
import type { Knex } from "knex";
import { isEmbedded } from "../store/db.ts";

const CEREMONY_LOCK_KEY = 0x4850_4b43; // "HPKC"
let chain: Promise<unknown> = Promise.resolve();

/** Runs `fn` while holding the ceremony lock; returns its result. */
export function withCeremonyLock<T>(db: Knex, fn: () => Promise<T>): Promise<T> {
  const run = async () => {
    if (isEmbedded(db)) return fn();
    return db.transaction(async (lock) => {
      await lock.raw("SELECT pg_advisory_xact_lock(?)", [CEREMONY_LOCK_KEY]);
      return fn();
    });
  };
  const result = chain.then(run, run);
  chain = result.catch(() => undefined);
  return result;
}
