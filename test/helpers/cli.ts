/** The `hpki` command as a child process: a temp HPKI_HOME, a fresh database, the embedded SoftHSM. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { freshDatabaseUrl } from "./db.ts";
import { tempDir } from "./openssl.ts";

const repo = path.resolve(import.meta.dirname, "../..");

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
  /** The signal that ended the process (e.g. "SIGKILL"), or null. */
  signal: NodeJS.Signals | null;
  /** The last stdout line parsed as JSON (for --json). */
  json(): any;
}

export interface CliHarness {
  home: string;
  /** Fresh Postgres database URL (the CLI runs with it as DATABASE_URL). */
  dbUrl: string;
  hpki(...args: string[]): CliResult;
  /** `hpki` with extra environment variables (e.g. HPKI_FAULT). */
  hpkiEnv(extra: NodeJS.ProcessEnv, ...args: string[]): CliResult;
  /** The environment `hpki` runs in (for spawning long-running commands such as `hpki serve`). */
  env(): NodeJS.ProcessEnv;
  /** Runs `body` on the CLI's own database, opened in this process between CLI runs. */
  withDb(body: (db: Knex) => Promise<void>): Promise<void>;
  cleanup(): Promise<void>;
}

/** A temp HPKI_HOME (prefix `prefix`) and fresh database; `hpki` runs bin/hpki.js against them. */
export async function openCliHarness(prefix: string): Promise<CliHarness> {
  const home = tempDir(prefix);
  const db = await freshDatabaseUrl();
  const env = (): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: home };
    delete e.PKCS11_MODULE;
    delete e.HPKI_HSM_PIN;
    e.DATABASE_URL = db.url;
    return e;
  };
  const run = (extra: NodeJS.ProcessEnv, args: string[]): CliResult => {
    const r = spawnSync(process.execPath, [path.join(repo, "bin/hpki.js"), ...args], { cwd: repo, env: { ...env(), ...extra }, encoding: "utf8" });
    return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout.trim().split("\n").at(-1)!) };
  };
  return {
    home,
    dbUrl: db.url,
    env,
    withDb: async (body) => {
      const handle = await openDatabase(loadConfig({ HPKI_HOME: home, DATABASE_URL: db.url }));
      try {
        await body(handle);
      } finally {
        await handle.destroy();
      }
    },
    hpki: (...args) => run({}, args),
    hpkiEnv: (extra, ...args) => run(extra, args),
    cleanup: async () => {
      await db.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
