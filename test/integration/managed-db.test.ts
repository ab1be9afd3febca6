/**
 * The default set-up as a new user gets it (issue 11 §1): no DATABASE_URL, a fresh HPKI_HOME, the
 * PostgreSQL cluster hpki manages under $HPKI_HOME/pg. Real processes: two started at once on the
 * fresh home, `hpki revoke` and `hpki crl generate` beside a running `hpki serve`, `--workers 2`,
 * `hpki db status|backup|stop`. Every cluster started here is stopped in cleanup.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { clusterPaths, ensureManagedCluster, managedClusterStatus, stopManagedCluster } from "../../src/store/managed-pg.ts";
import { tempDir } from "../helpers/openssl.ts";

const repo = path.resolve(import.meta.dirname, "../..");

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** The default set-up's environment for `home`: no DATABASE_URL, the embedded SoftHSM. */
function defaultEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: home };
  for (const k of ["DATABASE_URL", "PKCS11_MODULE", "HPKI_HSM_PIN"]) delete env[k];
  return env;
}

/** Runs `hpki args…` on `home` to completion (asynchronously, so several can run at once). */
function hpki(home: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), ...args], { cwd: repo, env: defaultEnv(home) });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, out, err }));
  });
}

const lastJson = (r: Run) => JSON.parse(r.out.trim().split("\n").at(-1)!);

/** Starts `hpki serve …--json` on `home`; resolves once it listens, with its URL and a stop function. */
async function serve(home: string, ...args: string[]): Promise<{ url: string; json: any; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--port", "0", "--json", ...args], { cwd: repo, env: defaultEnv(home) });
  const exited = new Promise((r) => child.once("exit", r));
  const json = await new Promise<any>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
    });
    child.stderr.on("data", (d) => (err += d));
    child.once("close", (code) => reject(new Error(`hpki serve exited ${code}: ${err}`)));
  });
  return {
    url: json.url,
    json,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) {
    await stopManagedCluster(loadConfig({ HPKI_HOME: home })).catch(() => false);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

describe("the default database: a PostgreSQL cluster hpki manages under $HPKI_HOME/pg", { timeout: 900_000 }, () => {
  it("serves many processes: two start at once on a fresh home, two servers share it, the CLI revokes and makes a CRL beside them, --workers 2 serves", async () => {
    const home = tempDir("hpki-managed-");
    homes.push(home);
    fs.rmdirSync(home); // fresh: hpki creates it

    // Two processes at once on a fresh home: one makes the cluster, both migrate and run.
    const [a, b] = await Promise.all([hpki(home, "audit", "verify", "--json"), hpki(home, "audit", "verify", "--json")]);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(lastJson(a).ok).toBe(true);
    const status = await hpki(home, "db", "status", "--json");
    expect(status.code, status.err).toBe(0);
    expect(lastJson(status)).toMatchObject({ managed: true, initialised: true, running: true, dataDir: path.join(home, "pg", "data") });
    // Private: the cluster's directory 0700 and the home closed to others.
    expect(fs.statSync(path.join(home, "pg")).mode & 0o777).toBe(0o700);
    expect(fs.statSync(home).mode & 0o007).toBe(0);
    // The server log goes to PostgreSQL's collector, one file per weekday (rotated, 7 days kept).
    expect(fs.readdirSync(path.join(home, "pg", "log")).filter((f) => /^postgresql-(Sun|Mon|Tue|Wed|Thu|Fri|Sat)\.log$/.test(f))).toHaveLength(1);

    const init = await hpki(home, "ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json");
    expect(init.code, init.err).toBe(0);
    const prov = await hpki(home, "cards", "provision", "--count", "1", "--json");
    expect(prov.code, prov.err).toBe(0);
    const card = lastJson(prov).cards[0];
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
    const subject = path.join(home, "subject.json");
    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Pharmacist", subscriberId: "MDB0001", name: { latin: "Hanako Sato", kanji: "佐藤　花子" } }));
    const issued = await hpki(home, "issue", "--profile", "sign", "--subject", subject, "--card", card.label, "--pin", pin, "--out", path.join(home, "sign.pem"), "--json");
    expect(issued.code, issued.err).toBe(0);
    const serial = String(lastJson(issued).serialHex);

    // Two servers on one home (the IA and the repository), and the CLI beside them.
    const [ia, server] = await Promise.all([serve(home, "--role", "ia"), serve(home, "--role", "repo")]);
    try {
      const revoked = await hpki(home, "revoke", "--ca", "demo-sign-ca", "--serial", serial, "--reason", "keyCompromise", "--json");
      expect(revoked.code, revoked.err).toBe(0);
      const crlFile = path.join(home, "sign.crl");
      const crl = await hpki(home, "crl", "generate", "--ca", "demo-sign-ca", "--out", crlFile, "--json");
      expect(crl.code, crl.err).toBe(0);
      expect(fs.statSync(crlFile).size).toBeGreaterThan(0);
      // The repository sees what the CLI wrote: the CRL it publishes lists the serial (its cache
      // is refreshed within seconds: wait for that, not for a fixed time).
      const listsSerial = async () => {
        const published = await fetch(`${server.url}/crl/demo-sign-ca.crl`);
        return published.status === 200 && Buffer.from(await published.arrayBuffer()).toString("hex").toUpperCase().includes(serial.toUpperCase());
      };
      const deadline = Date.now() + 120_000;
      while (!(await listsSerial()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      expect(await listsSerial()).toBe(true);
    } finally {
      await Promise.all([ia.stop(), server.stop()]);
    }

    const workers = await serve(home, "--role", "repo", "--workers", "2");
    try {
      expect(workers.json.workers).toHaveLength(2);
      const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${workers.url}/crl/demo-sign-ca.crl`).then((r) => r.status)));
      expect(new Set(answers)).toEqual(new Set([200]));
    } finally {
      await workers.stop();
    }

    // The cluster outlives the processes that used it; backup, then a clean stop.
    const backupFile = path.join(home, "backup.dump");
    const backup = await hpki(home, "db", "backup", backupFile, "--json");
    expect(backup.code, backup.err).toBe(0);
    expect(fs.readFileSync(backupFile).subarray(0, 5).toString()).toBe("PGDMP"); // pg_dump custom format
    expect(fs.statSync(backupFile).mode & 0o777).toBe(0o600);
    const stop = await hpki(home, "db", "stop", "--json");
    expect(stop.code, stop.err).toBe(0);
    expect(lastJson(stop).stopped).toBe(true);
    expect(managedClusterStatus(loadConfig({ HPKI_HOME: home })).running).toBe(false);
  });

  it("puts the socket in a private directory under /tmp when the home's path is too long for a unix socket", async () => {
    const base = tempDir("hpki-managed-long-");
    homes.push(base);
    fs.chmodSync(base, 0o755); // a parent anyone may traverse, as a checkout's usually is
    const home = path.join(base, "a-rather-long-directory-name-for-a-state-directory".repeat(2));
    const cfg = loadConfig({ HPKI_HOME: home });
    const paths = clusterPaths(cfg);
    expect(paths.socketDir).toMatch(/^\/tmp\/hpki-pg-[0-9a-f]{16}$/);
    homes.push(home);
    const url = await ensureManagedCluster(cfg);
    try {
      expect(fs.existsSync(path.join(paths.socketDir, ".s.PGSQL.5432"))).toBe(true);
      expect(fs.statSync(paths.socketDir).mode & 0o777).toBe(0o700);
      expect(url).toContain(encodeURIComponent(paths.socketDir));
      // Idempotent: a second start while it runs changes nothing.
      expect(await ensureManagedCluster(cfg)).toBe(url);
    } finally {
      expect(await stopManagedCluster(cfg)).toBe(true);
      fs.rmSync(paths.socketDir, { recursive: true, force: true });
    }
  });

  it("as root, keeps the cluster of a home the postgres user cannot reach in /var/lib/hpki-ca, linked from $HPKI_HOME/pg", async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip(); // only root switches to the postgres user
    const closed = tempDir("hpki-managed-closed-"); // mkdtemp: 0700 root, closed to postgres
    const home = path.join(closed, "home");
    homes.push(home, closed);
    const cfg = loadConfig({ HPKI_HOME: home });
    const url = await ensureManagedCluster(cfg);
    const paths = clusterPaths(cfg);
    try {
      expect(fs.lstatSync(cfg.pgDir).isSymbolicLink()).toBe(true);
      expect(paths.pgDir).toMatch(/^\/var\/lib\/hpki-ca\/pg-[0-9a-f]{16}$/);
      expect(url).toContain(encodeURIComponent(paths.pgDir));
      expect(managedClusterStatus(cfg)).toMatchObject({ running: true, dataDir: path.join(paths.pgDir, "data") });
    } finally {
      expect(await stopManagedCluster(cfg)).toBe(true);
      fs.rmSync(paths.pgDir, { recursive: true, force: true });
    }
  });
});
