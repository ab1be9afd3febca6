/**
 * The console HTTP client (src/web/console/client.ts) signing in as test operators, and a started
 * console server on a fresh database for e2e tests.
 *
 *   const c = new ConsoleClient(server.url, "/lra");
 *   await c.login(reviewer);                         // TestOperator from ./operators.ts
 *   const r = await c.postJson("/applications", {...}); // X-CSRF-Token sent automatically
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import type { Db } from "../../src/store/db.ts";
import type { RoleName } from "../../src/web/role.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { openTestDatabase } from "./db.ts";
import { ConsoleClient as BaseConsoleClient, type ConsoleResponse } from "../../src/web/console/client.ts";
import type { TestOperator } from "./operators.ts";
import { DEMO_LICENCE_REGISTER } from "./pipeline.ts";

export type { ConsoleResponse, RequestOptions } from "../../src/web/console/client.ts";

/** The console client of src/web/console/client.ts, signing in as a test operator. */
export class ConsoleClient extends BaseConsoleClient {
  /**
   * Signs in over JSON (GET /login for the CSRF token, POST /login with a fresh TOTP code).
   * Returns the POST response; throws unless it is 200.
   */
  login(op: Pick<TestOperator, "username" | "password" | "nextCode">): Promise<ConsoleResponse> {
    return op.nextCode().then((code) => this.signIn(op.username, op.password, code));
  }
}

/** A started HTTP server over a fresh test database with the licence register loaded. */
export interface ConsoleTestServer {
  db: Db;
  server: StartedServer;
  /** A client of console `base` signed in as `op` (one TOTP code used). */
  signIn(base: string, op: Pick<TestOperator, "username" | "password" | "nextCode">): Promise<ConsoleClient>;
  cleanup(): Promise<void>;
}

/**
 * Starts the real role servers `roles` (port 0) on a fresh database (PostgreSQL) with the demo licence register imported; call cleanup() in afterAll.
 */
export async function startConsoleTestServer(roles: RoleName[] = ["lra", "ra"]): Promise<ConsoleTestServer> {
  const t = await openTestDatabase();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-consoles-"));
  await importLicenceRegister(t.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  const cfg = loadConfig({ HPKI_HOME: home, HPKI_SESSION_SECRET: "e2e-console-secret-0123456789abcdef" });
  const server = await startServer({ cfg, db: t.db, roles, port: 0 });
  return {
    db: t.db,
    server,
    async signIn(base, op) {
      const c = new ConsoleClient(server.url, base);
      await c.login(op);
      return c;
    },
    async cleanup() {
      await server.close();
      await t.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
