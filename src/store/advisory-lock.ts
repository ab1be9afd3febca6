/**
 * Critical sections of the form "find it, else create it" for things the database cannot make
 * unique by itself (keys in an HSM, one-of-a-kind rows): in-process by a promise chain; across
 * processes on Postgres by a transaction-scoped advisory lock (pg_advisory_xact_lock) held while
 * the section runs.
 */
import type { Knex } from "knex";

/** Runs `fn` while holding the lock; returns its result. Never call it again from inside `fn` (it would wait for itself). */
export type LockRunner = <T>(db: Knex, fn: () => Promise<T>) => Promise<T>;

/** A lock identified by `key` (a 32-bit number unique to its purpose across the code base). */
export function advisoryLock(key: number): LockRunner {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(db: Knex, fn: () => Promise<T>): Promise<T> => {
    const run = async () => {
      return db.transaction(async (lock) => {
        await lock.raw("SELECT pg_advisory_xact_lock(?)", [key]);
        return fn();
      });
    };
    const result = chain.then(run, run);
    chain = result.catch(() => undefined);
    return result;
  };
}
