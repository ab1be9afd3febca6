import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { lockPgliteDir } from "../../src/store/pglite-lock.ts";
import { tempDir } from "../helpers/openssl.ts";

describe("embedded PGlite: one process per database directory", () => {
  const home = tempDir("hpki-lock-");
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it("refuses a second open while the first is open, and allows it after destroy", async () => {
    const cfg = loadConfig({ HPKI_HOME: home });
    const db = await openDatabase(cfg, { pgliteDir: cfg.pgliteDir });
    await expect(openDatabase(cfg, { pgliteDir: cfg.pgliteDir })).rejects.toThrow(/already open/);
    await db.destroy();
    const again = await openDatabase(cfg, { pgliteDir: cfg.pgliteDir });
    expect((await again.raw("select 1 as one")).rows[0].one).toBe(1);
    await again.destroy();
    expect(fs.existsSync(`${cfg.pgliteDir}.lock`)).toBe(false);
  });

  it("names the live process that holds the lock, and takes over a stale one", async () => {
    const dir = path.join(home, "other-db");
    const holder = spawn("sleep", ["30"]);
    try {
      fs.writeFileSync(`${dir}.lock`, String(holder.pid));
      expect(() => lockPgliteDir(dir)).toThrow(new RegExp(`in use by process ${holder.pid}`));
    } finally {
      holder.kill();
    }
    await new Promise((r) => holder.once("exit", r));
    const release = lockPgliteDir(dir); // the holder is gone: stale lock taken over
    expect(fs.readFileSync(`${dir}.lock`, "utf8")).toBe(String(process.pid));
    release();
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);
  });
});
