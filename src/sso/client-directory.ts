/**
 * The SSO process's copy of the registered clients (issue 14, Benchmark). oidc-provider asks for
 * the client of a request several times per request (client authentication, redirect checks,
 * claims, resource indicators), and a login is five requests: reading sso_clients each time was a
 * quarter of a login's SQL. Clients change rarely and only through clients.ts, whose transactions
 * NOTIFY CLIENTS_NOTIFY_CHANNEL with the client id; the directory LISTENs on it and forgets that
 * client, so a change made by the CLI or another SSO worker applies within milliseconds of its
 * commit. While the LISTEN connection is down nothing is served from memory (every lookup reads
 * the table) until it is open again, so a lost notification cannot keep a disabled client alive.
 * Copies also expire after `maxAgeMs` (a bound even if a notification were lost unnoticed).
 */
import type { Knex } from "knex";
import { listenOnChannel, type ChannelListener } from "../store/listen.ts";
import { CLIENTS_NOTIFY_CHANNEL, findClient, PORTAL_CLIENT_ID, portalClient, type SsoClient } from "./clients.ts";

/** How long a copy is used without a notification, ms. */
const DEFAULT_MAX_AGE_MS = 60_000;
/** Wait before opening the LISTEN connection again after it failed, ms. */
const RELISTEN_AFTER_MS = 5_000;

export class ClientDirectory {
  private readonly copies = new Map<string, { client: SsoClient; until: number }>();
  private listener: ChannelListener | undefined;
  private relistenAt = 0;
  /** Counts forgets: a read that a notification overtook is not kept (it may predate the change). */
  private generation = 0;
  private closed = false;
  private readonly portal: SsoClient;

  private constructor(private readonly db: Knex, issuer: string, private readonly maxAgeMs: number, private readonly onError: (e: unknown) => void) {
    this.portal = portalClient(issuer);
  }

  /**
   * Opens the directory for the SSO center of `issuer`; without a working LISTEN it still answers,
   * from the table. `onError` hears LISTEN failures.
   */
  static async open(db: Knex, issuer: string, opts: { maxAgeMs?: number; onError?: (e: unknown) => void } = {}): Promise<ClientDirectory> {
    const d = new ClientDirectory(db, issuer, opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS, opts.onError ?? (() => undefined));
    await d.listen();
    return d;
  }

  /**
   * The client `clientId` as resolveClient gives it (the built-in portal, else the registered
   * client, disabled ones included), or undefined. Unknown ids are not remembered, so a flood of
   * made-up ids cannot grow the map.
   */
  async get(clientId: string): Promise<SsoClient | undefined> {
    if (clientId === PORTAL_CLIENT_ID) return this.portal;
    const live = this.listener && !this.listener.closed;
    if (!live) {
      this.forget();
      if (!this.closed && Date.now() >= this.relistenAt) await this.listen();
    }
    const now = Date.now();
    const copy = this.copies.get(clientId);
    if (copy && copy.until > now && this.listener && !this.listener.closed) return copy.client;
    const generation = this.generation;
    const client = await findClient(this.db, clientId);
    // Kept only while the LISTEN is up and no notification came during the read.
    if (client && generation === this.generation && this.listener && !this.listener.closed) this.copies.set(clientId, { client, until: now + this.maxAgeMs });
    return client;
  }

  /** Forgets `clientId` (or every client). */
  forget(clientId?: string): void {
    this.generation++;
    if (clientId === undefined) this.copies.clear();
    else this.copies.delete(clientId);
  }

  /** Stops listening; lookups read the table from now on. */
  async close(): Promise<void> {
    this.closed = true;
    this.copies.clear();
    await this.listener?.close().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    try {
      // A change committed before the LISTEN began is not in any copy: the map was emptied.
      this.listener = await listenOnChannel(this.db, CLIENTS_NOTIFY_CHANNEL, (id) => this.forget(id || undefined), (e) => {
        this.forget();
        this.onError(e);
      });
    } catch (e) {
      this.listener = undefined;
      this.relistenAt = Date.now() + RELISTEN_AFTER_MS;
      this.onError(e);
    }
  }
}
