/**
 * The SSO process's copy of the registered clients (issue 14, Benchmark). oidc-provider asks for
 * the client of a request several times per request (client authentication, redirect checks,
 * claims, resource indicators), and a login is five requests: reading sso_clients each time was a
 * quarter of a login's SQL. Clients change rarely and only through clients.ts, whose transactions
 * NOTIFY CLIENTS_NOTIFY_CHANNEL with the client id; the directory LISTENs on it and forgets that
 * client, so a change made by the CLI or another SSO worker applies within milliseconds of its
 * commit; a change this process made applies at its commit (onClientChangeCommitted). While the LISTEN connection is down nothing is served from memory (every lookup reads
 * the table) until it is open again, so a lost notification cannot keep a disabled client alive.
 * Copies also expire after `maxAgeMs` (a bound even if a notification were lost unnoticed).
 */
import type { Knex } from "knex";
import { listenOnChannel, type ChannelListener } from "../store/listen.ts";
import { CLIENTS_NOTIFY_CHANNEL, findClient, onClientChangeCommitted, PORTAL_CLIENT_ID, portalClient, type SsoClient } from "./clients.ts";

/** How long a copy is used without a notification, ms. */
const DEFAULT_MAX_AGE_MS = 60_000;
/** Wait before opening the LISTEN connection again after it failed, ms. */
const RELISTEN_AFTER_MS = 5_000;

export class ClientDirectory {
  private readonly copies = new Map<string, { client: SsoClient; until: number }>();
  private listener: ChannelListener | undefined;
  /** The LISTEN being opened again (one attempt at a time), and when the next may start. */
  private reopening: Promise<void> | undefined;
  private reopenAt = 0;
  /** Counts forgets: a read that a notification overtook is not kept (it may predate the change). */
  private generation = 0;
  private closed = false;
  private stopLocal: () => void = () => undefined;
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
    // A change this process commits (console, CLI) applies here at once, without waiting for the notice.
    d.stopLocal = onClientChangeCommitted((id) => d.forget(id));
    await d.listen();
    return d;
  }

  /**
   * The client `clientId`: the built-in portal, else the registered client (disabled ones
   * included), or undefined. Unknown ids are not remembered, so a flood of made-up ids cannot grow
   * the map.
   */
  async get(clientId: string): Promise<SsoClient | undefined> {
    if (clientId === PORTAL_CLIENT_ID) return this.portal;
    if (!this.live) this.reopen();
    const copy = this.live ? this.copies.get(clientId) : undefined;
    if (copy && copy.until > Date.now()) return copy.client;
    const generation = this.generation;
    const client = await findClient(this.db, clientId);
    // Kept only while the LISTEN is up and no notification came during the read.
    if (client && generation === this.generation && this.live) this.copies.set(clientId, { client, until: Date.now() + this.maxAgeMs });
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
    this.stopLocal();
    this.forget();
    await this.reopening;
    await this.listener?.close().catch(() => undefined);
  }

  /** Whether notifications arrive: only then are copies kept and used. */
  private get live(): boolean {
    return this.listener !== undefined && !this.listener.closed;
  }

  /** Opens the LISTEN again in the background, at most one attempt every RELISTEN_AFTER_MS; lookups read the table meanwhile. */
  private reopen(): void {
    if (this.closed || this.reopening || Date.now() < this.reopenAt) return;
    this.reopenAt = Date.now() + RELISTEN_AFTER_MS;
    this.reopening = this.listen().finally(() => (this.reopening = undefined));
  }

  private async listen(): Promise<void> {
    try {
      const listener = await listenOnChannel(this.db, CLIENTS_NOTIFY_CHANNEL, (id) => this.forget(id || undefined), (e) => {
        this.forget();
        this.onError(e);
      });
      if (this.closed) return void (await listener.close().catch(() => undefined));
      this.listener = listener;
      // Changes made while nothing listened are in no notification: start empty, and drop reads under way.
      this.forget();
    } catch (e) {
      this.onError(e);
    }
  }
}
