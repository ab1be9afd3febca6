/**
 * An SSO center (createSsoServer, as `hpki serve --role sso` mounts it) on a real HTTP listener on
 * 127.0.0.1, for integration tests that drive it with a relying-party library. `setUp` may add
 * routes of its own (e.g. a relying party's JWKS) to the same express app before /sso is mounted.
 */
import http from "node:http";
import express from "express";
import type { IaContext } from "../../src/ia/context.ts";
import { createSsoServer, type SsoServer } from "../../src/sso/server.ts";

export interface ListeningSso {
  sso: SsoServer;
  /** http://127.0.0.1:<port> (the SSO issuer is `${base}/sso`). */
  base: string;
  close(): Promise<void>;
}

/** Starts the SSO role of `ctx` with revocation refreshes off (tests refresh by hand). */
export async function listenSso(ctx: IaContext, setUp?: (app: express.Express) => void): Promise<ListeningSso> {
  const app = express();
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  setUp?.(app);
  const sso = await createSsoServer({ cfg: ctx.cfg, db: ctx.db, publicUrl: base }, { verifier: { refreshIntervalMs: 0 } });
  app.use("/sso", sso.router);
  return {
    sso,
    base,
    async close() {
      await sso.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
