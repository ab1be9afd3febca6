/**
 * $HPKI_HOME is private (issue 10 §6): created 0700, everything in it owner-only; a too-open home
 * is repaired with a message at the start of any hpki process, one that cannot be repaired is
 * refused. Real processes on real directories; the refusal is shown by running the CLI as another
 * OS user (nobody), which cannot chmod root's files.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/openssl.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const NOBODY = 65534;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** `hpki db status` on `home` (no DATABASE_URL: the managed cluster, which status does not start). */
function dbStatus(home: string, as?: number): Promise<{ code: number | null; err: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: home };
  delete env.DATABASE_URL;
  const opts: SpawnOptions = { cwd: repo, env };
  if (as !== undefined) Object.assign(opts, { uid: as, gid: as });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "db", "status"], opts);
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, err }));
  });
}

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe("$HPKI_HOME permissions", { timeout: 300_000 }, () => {
  it("creates a missing home 0700", async () => {
    const base = tempDir("hpki-home-new-");
    dirs.push(base);
    const home = path.join(base, "home");
    const r = await dbStatus(home);
    expect(r.code, r.err).toBe(0);
    expect(mode(home)).toBe(0o700);
  });

  it("repairs a home open to others (home 0700, files 0600, directories 0700) and says so in English and Japanese", async () => {
    const home = tempDir("hpki-home-open-");
    dirs.push(home);
    fs.chmodSync(home, 0o755);
    fs.mkdirSync(path.join(home, "hsm", "tokens"), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(home, "console-session.secret"), "s", { mode: 0o644 });
    fs.writeFileSync(path.join(home, "hsm", "tokens", "token.object"), "t", { mode: 0o664 });
    fs.writeFileSync(path.join(home, "hsm", "tokens", "run.sh"), "t", { mode: 0o755 });
    fs.chmodSync(path.join(home, "hsm"), 0o777);

    const r = await dbStatus(home);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`HPKI_HOME ${home} was open to other users; made private (6 entries`);
    expect(r.err).toContain("非公開に修正しました（6 件）");
    expect(mode(home)).toBe(0o700);
    expect(mode(path.join(home, "hsm"))).toBe(0o700);
    expect(mode(path.join(home, "hsm", "tokens"))).toBe(0o700);
    expect(mode(path.join(home, "console-session.secret"))).toBe(0o600);
    expect(mode(path.join(home, "hsm", "tokens", "token.object"))).toBe(0o600);
    expect(mode(path.join(home, "hsm", "tokens", "run.sh"))).toBe(0o700);

    const again = await dbStatus(home);
    expect(again.code, again.err).toBe(0);
    expect(again.err).not.toContain("made private");
  });

  it("refuses to run on a too-open home it cannot repair (owned by another user)", async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip(); // needs root to run the CLI as another user
    const home = tempDir("hpki-home-foreign-");
    dirs.push(home);
    fs.chmodSync(home, 0o755);
    fs.writeFileSync(path.join(home, "secret"), "s", { mode: 0o644 });
    const r = await dbStatus(home, NOBODY);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${home} is open to other users (mode 0755) and cannot be made private (EPERM)`);
    expect(r.err).toContain("非公開にできません");
    expect(mode(home)).toBe(0o755); // untouched
  });
});
