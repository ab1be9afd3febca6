/**
 * PostgreSQL LISTEN on a dedicated connection outside the pool (a pooled connection would be handed
 * to other queries and lose its LISTEN). Notifications arrive within milliseconds of the NOTIFYing
 * transaction's commit. Used by the IA (approved revocations) and the repository (OCSP status).
 */
import type { Knex } from "knex";

interface PgConnection {
  query(sql: string): Promise<unknown>;
  on(event: "notification", cb: (n: { channel: string; payload?: string }) => void): void;
  on(event: "error" | "end", cb: (e?: Error) => void): void;
}

/** An open LISTEN: `closed` turns true when the connection ends or fails (the caller reopens). */
export interface ChannelListener {
  readonly closed: boolean;
  close(): Promise<void>;
}

/**
 * LISTENs on `channel` (an SQL identifier of ours, never user input) and calls `onNotify(payload)`
 * for each notification ("" when it has none); `onError` hears a connection failure, after which
 * `closed` is true.
 * @throws when the connection cannot be opened.
 */
export async function listenOnChannel(db: Knex, channel: string, onNotify: (payload: string) => void, onError?: (e: unknown) => void): Promise<ChannelListener> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  let closed = false;
  const client = db.client as { acquireRawConnection(): Promise<PgConnection>; destroyRawConnection(c: PgConnection): Promise<void> };
  const conn = await client.acquireRawConnection();
  conn.on("notification", (n) => {
    if (n.channel === channel) onNotify(n.payload ?? "");
  });
  conn.on("error", (e) => {
    closed = true;
    onError?.(e);
  });
  conn.on("end", () => void (closed = true));
  await conn.query(`LISTEN ${channel}`);
  return {
    get closed() {
      return closed;
    },
    async close() {
      closed = true;
      await client.destroyRawConnection(conn);
    },
  };
}
