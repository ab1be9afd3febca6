/**
 * Listening for OCSP_STATUS_CHANNEL (presigned-state.ts), so the repository drops a cached
 * pre-signed response the moment the revocation that made it stale commits: a dedicated Postgres
 * connection outside the pool (notifications arrive within milliseconds of the commit, before the
 * revoking client can have asked anything else).
 */
import type { Knex } from "knex";
import { OCSP_STATUS_CHANNEL } from "./presigned-state.ts";

interface PgConnection {
  query(sql: string): Promise<unknown>;
  on(event: "notification", cb: (n: { channel: string; payload?: string }) => void): void;
  on(event: "error" | "end", cb: (e?: Error) => void): void;
}

/** An open LISTEN: `closed` turns true when the connection ends or fails (the caller reopens). */
export interface StatusListener {
  readonly closed: boolean;
  close(): Promise<void>;
}

/**
 * LISTENs on OCSP_STATUS_CHANNEL and calls `onChange(caId, serialHex)` for each notification.
 * @throws when the connection cannot be opened.
 */
export async function listenForStatusChanges(db: Knex, onChange: (caId: number, serialHex: string) => void): Promise<StatusListener> {
  const deliver = (payload: string | undefined) => {
    if (!payload) return;
    const i = payload.indexOf(":");
    onChange(Number(payload.slice(0, i)), payload.slice(i + 1));
  };
  let closed = false;
  const client = db.client as { acquireRawConnection(): Promise<PgConnection>; destroyRawConnection(c: PgConnection): Promise<void> };
  const conn = await client.acquireRawConnection();
  conn.on("notification", (n) => {
    if (n.channel === OCSP_STATUS_CHANNEL) deliver(n.payload);
  });
  conn.on("error", () => void (closed = true));
  conn.on("end", () => void (closed = true));
  await conn.query(`LISTEN ${OCSP_STATUS_CHANNEL}`);
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
