/**
 * Multi-row INSERT without the query builder: on the issuance hot path knex's builder costs more
 * CPU than the database does. Rows are arrays in `columns` order; values are bound, never inlined.
 */
import type { Knex } from "knex";

const placeholderCache = new Map<string, string>();

/**
 * INSERT INTO `table` (`columns`) VALUES (…), … [RETURNING `returning`] for `rows`, in chunks that
 * stay under Postgres' 65,535 bind parameters. `table`, `columns` and `returning` are trusted
 * identifiers from our code, never user input. Returns the RETURNING rows in order.
 */
export async function insertRows(
  db: Knex | Knex.Transaction,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returning?: string,
): Promise<Record<string, unknown>[]> {
  const perChunk = Math.max(1, Math.floor(60_000 / columns.length));
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < rows.length; i += perChunk) {
    const chunk = rows.slice(i, i + perChunk);
    const key = `${table}|${columns.join(",")}|${chunk.length}|${returning ?? ""}`;
    let sql = placeholderCache.get(key);
    if (!sql) {
      const tuple = `(${columns.map(() => "?").join(",")})`;
      sql = `INSERT INTO ${table} (${columns.join(",")}) VALUES ${Array(chunk.length).fill(tuple).join(",")}${returning ? ` RETURNING ${returning}` : ""}`;
      placeholderCache.set(key, sql);
    }
    const res = await db.raw(sql, chunk.flat() as Knex.RawBinding[]);
    if (returning) out.push(...(res.rows as Record<string, unknown>[]));
  }
  return out;
}
