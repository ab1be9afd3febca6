/**
 * vitest global set-up: the suite runs on real PostgreSQL. With DATABASE_URL set (a developer's
 * server, CI's cluster) it is used as is; without it, a throwaway cluster is made for this run in a
 * temp directory by the same code that manages $HPKI_HOME/pg (src/store/managed-pg.ts), with
 * fsync off (nothing in it outlives the run), and DATABASE_URL is set for the test workers. It is
 * stopped and removed when the run ends. test/helpers/db.ts gives each test file its own database.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config.ts";
import { ensureManagedCluster, stopManagedCluster } from "../src/store/managed-pg.ts";

export default async function setup(): Promise<(() => Promise<void>) | void> {
  if (process.env.DATABASE_URL) return;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-test-pg-"));
  const cfg = loadConfig({ HPKI_HOME: home });
  process.env.DATABASE_URL = await ensureManagedCluster(cfg, { settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_connections: "300" } });
  return async () => {
    await stopManagedCluster(cfg);
    fs.rmSync(home, { recursive: true, force: true });
    delete process.env.DATABASE_URL;
  };
}
