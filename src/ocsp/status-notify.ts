/**
 * Listening for OCSP_STATUS_CHANNEL (presigned-state.ts), so the repository drops a cached
 * pre-signed response the moment the revocation that made it stale commits: a dedicated Postgres
 * connection outside the pool (notifications arrive within milliseconds of the commit, before the
 * revoking client can have asked anything else).
 */
import type { Knex } from "knex";
import { listenOnChannel, type ChannelListener } from "../store/listen.ts";
import { OCSP_STATUS_CHANNEL } from "./presigned-state.ts";

/** An open LISTEN: `closed` turns true when the connection ends or fails (the caller reopens). */
export type StatusListener = ChannelListener;

/**
 * LISTENs on OCSP_STATUS_CHANNEL and calls `onChange(caId, serialHex)` for each notification
 * (payload "caId:serialHex").
 * @throws when the connection cannot be opened.
 */
export async function listenForStatusChanges(db: Knex, onChange: (caId: number, serialHex: string) => void): Promise<StatusListener> {
  return listenOnChannel(db, OCSP_STATUS_CHANNEL, (payload) => {
    const i = payload.indexOf(":");
    if (i > 0) onChange(Number(payload.slice(0, i)), payload.slice(i + 1));
  });
}
