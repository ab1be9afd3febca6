/**
 * The default database: a PostgreSQL cluster that hpki manages under $HPKI_HOME/pg, from Debian's
 * postgresql binaries (/usr/lib/postgresql/<major>/bin, the newest, or the one matching an
 * existing cluster). Created (initdb) on first use and started on demand by any hpki process that
 * needs the database; it then stays up as a server after that process exits, until `hpki db stop`.
 *
 * - Unix socket only (listen_addresses=''), trust authentication on the local socket: the socket
 *   directory's permissions (0700, owned by the cluster's OS user) are the access control. When the
 *   socket path would exceed the kernel's 107-byte limit, the socket lives in a private directory
 *   /tmp/hpki-pg-<hash of the home> instead.
 * - PostgreSQL refuses to run as root: as root, initdb/pg_ctl run as the `postgres` OS user, the
 *   cluster directory is owned by postgres (0700) and $HPKI_HOME is mode 0710, group postgres, so
 *   that user can reach it and nobody else can. As any other user, everything belongs to that user.
 * - fsync, full_page_writes and synchronous_commit keep PostgreSQL's defaults: a committed record
 *   survives a power failure.
 * - Race-safe: initialisation and start run under an exclusive flock(2) on $HPKI_HOME/pg/hpki.lock
 *   (util-linux flock, released by the kernel when its holder dies), and both are idempotent, so
 *   processes starting together on a fresh home all come up.
 */
import { spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Config } from "../config.ts";
import { HpkiError } from "../pipeline/errors.ts";

/** Superuser and database of a managed cluster (trust on a private socket: no password). */
export const MANAGED_USER = "hpki";
export const MANAGED_DATABASE = "hpki";
/** Names the socket file (.s.PGSQL.5432); no TCP port is opened. */
const SOCKET_PORT = 5432;
const SUN_PATH_MAX = 107;
const POSTGRES_ROOT = "/usr/lib/postgresql";

/** A failure of the managed cluster (503: the database is unavailable), in English and Japanese. */
export class ManagedDatabaseError extends HpkiError {
  override name = "ManagedDatabaseError";
  constructor(message: string, messageJa: string) {
    super(message, messageJa, 503, "database_unavailable");
  }
}

/** Where a managed cluster lives. */
export interface ClusterPaths {
  /** $HPKI_HOME/pg: the cluster's own directory (0700, owned by the cluster's OS user). */
  pgDir: string;
  /** PGDATA. */
  dataDir: string;
  logFile: string;
  lockFile: string;
  /** Written into PGDATA once the hpki database exists: lets later processes skip the lock. */
  readyMarker: string;
  /** Directory of the unix socket: pgDir, or /tmp/hpki-pg-<hash> when pgDir is too long a path. */
  socketDir: string;
}

/**
 * Paths of the managed cluster for `cfg`. $HPKI_HOME/pg is followed when it is a symbolic link
 * (root's fallback for a home the postgres user cannot reach, see ensureManagedCluster).
 */
export function clusterPaths(cfg: Pick<Config, "pgDir">): ClusterPaths {
  let pgDir = cfg.pgDir;
  try {
    if (fs.lstatSync(pgDir).isSymbolicLink()) pgDir = fs.realpathSync(pgDir);
  } catch {
    // not made yet
  }
  const socketFile = (dir: string) => path.join(dir, `.s.PGSQL.${SOCKET_PORT}`);
  const socketDir = Buffer.byteLength(socketFile(pgDir)) <= SUN_PATH_MAX
    ? pgDir
    : path.join("/tmp", `hpki-pg-${createHash("sha256").update(pgDir).digest("hex").slice(0, 16)}`);
  return {
    pgDir,
    dataDir: path.join(pgDir, "data"),
    logFile: path.join(pgDir, "postgres.log"),
    lockFile: path.join(pgDir, "hpki.lock"),
    readyMarker: path.join(pgDir, "data", "hpki.ready"),
    socketDir,
  };
}

/** libpq/node-postgres URL of the managed database over its unix socket. */
export function managedUrl(paths: ClusterPaths, database = MANAGED_DATABASE): string {
  return `postgresql://${MANAGED_USER}@localhost/${database}?host=${encodeURIComponent(paths.socketDir)}&port=${SOCKET_PORT}`;
}

/** The OS account the cluster runs as: `postgres` when we are root, else ourselves. */
interface RunAs {
  uid: number;
  gid: number;
  name: string;
  /** True when that is another account than ours (root → postgres). */
  switched: boolean;
}

function runAs(): RunAs {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? uid, name: String(uid), switched: false };
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const u = id("-u");
  const g = id("-g");
  if (u.status !== 0 || g.status !== 0) {
    throw new ManagedDatabaseError(
      "running as root, the managed PostgreSQL needs the `postgres` OS user (apt-get install postgresql), or set DATABASE_URL",
      "root で実行する場合、管理下の PostgreSQL には OS ユーザー postgres が必要です（apt-get install postgresql）。または DATABASE_URL を設定してください",
    );
  }
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), name: "postgres", switched: true };
}

/** Installed PostgreSQL majors, newest first. */
function installedMajors(): number[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(POSTGRES_ROOT);
  } catch {
    // none installed
  }
  return names
    .filter((n) => /^\d+$/.test(n) && fs.existsSync(path.join(POSTGRES_ROOT, n, "bin", "postgres")))
    .map(Number)
    .sort((a, b) => b - a);
}

/**
 * The bin directory to use for `dataDir`: the major it was created with when it exists, else the
 * newest installed. @throws ManagedDatabaseError when none is installed or the cluster's is gone.
 */
export function postgresBinDir(dataDir: string): string {
  const majors = installedMajors();
  let want: number | undefined;
  try {
    want = Number(fs.readFileSync(path.join(dataDir, "PG_VERSION"), "utf8").trim());
  } catch {
    // not initialised yet
  }
  if (want !== undefined && !majors.includes(want)) {
    throw new ManagedDatabaseError(
      `the database in ${dataDir} was made by PostgreSQL ${want}, which is not installed (installed: ${majors.join(", ") || "none"}); install postgresql-${want} or upgrade it with pg_upgrade`,
      `${dataDir} のデータベースは PostgreSQL ${want} で作られましたが、インストールされていません（pg_upgrade で更新するか postgresql-${want} を入れてください）`,
    );
  }
  const major = want ?? majors[0];
  if (major === undefined) {
    throw new ManagedDatabaseError(
      "PostgreSQL is not installed: run scripts/setup.sh (apt-get install postgresql), or set DATABASE_URL",
      "PostgreSQL がインストールされていません。scripts/setup.sh を実行する（apt-get install postgresql）か、DATABASE_URL を設定してください",
    );
  }
  return path.join(POSTGRES_ROOT, String(major), "bin");
}

/** Runs a PostgreSQL server program as the cluster's OS user; resolves with its output or throws with it. */
async function runPg(who: RunAs, cwd: string, file: string, args: string[], allowCodes: number[] = [0]): Promise<{ code: number; out: string }> {
  const opts: SpawnOptions = { cwd, stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, LC_ALL: "C.UTF-8", PGTZ: "UTC" } };
  if (who.switched) Object.assign(opts, { uid: who.uid, gid: who.gid });
  return new Promise((resolve, reject) => {
    // detached: a server started by pg_ctl gets no terminal signals meant for this process (Ctrl-C).
    const child = spawn(file, args, opts);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    child.once("error", reject);
    child.once("close", (code) => {
      if (allowCodes.includes(code ?? -1)) resolve({ code: code ?? -1, out });
      else reject(new ManagedDatabaseError(`${path.basename(file)} ${args[0]} failed (exit ${code}): ${out.trim()}`, `${path.basename(file)} が失敗しました（終了コード ${code}）`));
    });
  });
}

/** Holds an exclusive flock on `file` (util-linux flock in a child) while `fn` runs. */
async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  // The child holds the lock until its stdin closes: when we end it, or when this process dies.
  const holder = spawn("flock", ["-x", file, "sh", "-c", "echo locked; read _ || true"], { stdio: ["pipe", "pipe", "pipe"] });
  const closed = new Promise<void>((r) => holder.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    let err = "";
    holder.stderr!.on("data", (d) => (err += d));
    holder.stdout!.once("data", () => resolve());
    holder.once("error", reject);
    holder.once("close", (code) => reject(new Error(`flock ${file} exited ${code}: ${err.trim()}`)));
  });
  try {
    return await fn();
  } finally {
    holder.stdin!.end();
    await closed;
  }
}

/** Creates `dir` (0700) owned by `who`; for a shared parent such as /tmp refuses one somebody else made. */
function privateDir(dir: string, who: RunAs, mustBeFresh: boolean): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const st = fs.lstatSync(dir);
  const ours = st.uid === who.uid || st.uid === (process.getuid?.() ?? -1);
  if (!st.isDirectory() || (mustBeFresh && !ours)) {
    throw new ManagedDatabaseError(
      `${dir} is not a directory of ours (owner uid ${st.uid}); remove it or set HPKI_HOME to a shorter path`,
      `${dir} は hpki のディレクトリではありません（所有者 uid ${st.uid}）。削除するか、HPKI_HOME を短いパスにしてください`,
    );
  }
  if (who.switched && st.uid !== who.uid) fs.chownSync(dir, who.uid, who.gid);
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
}

/** Where root keeps clusters of homes the postgres user cannot reach (e.g. a clone under /root). */
const ROOT_FALLBACK_DIR = "/var/lib/hpki-ca";

/** True when `who` can traverse `dir` (all its parents included). */
const reachable = (dir: string, who: RunAs) => spawnSync("test", ["-x", dir], { uid: who.uid, gid: who.gid }).status === 0;

/**
 * As root: $HPKI_HOME must let the postgres user through (0710, group postgres). When a parent
 * directory closes it to that user and no cluster exists yet, the cluster goes to
 * /var/lib/hpki-ca/pg-<hash of the home> instead, with $HPKI_HOME/pg a symbolic link to it.
 */
function letClusterUserIn(cfg: Pick<Config, "home" | "pgDir">, who: RunAs): void {
  if (!who.switched) return;
  const home = cfg.home;
  const st = fs.statSync(home);
  if (st.gid !== who.gid) fs.chownSync(home, st.uid, who.gid);
  fs.chmodSync(home, 0o710);
  if (fs.lstatSync(cfg.pgDir, { throwIfNoEntry: false })?.isSymbolicLink()) return;
  if (reachable(home, who)) return;
  if (!fs.existsSync(cfg.pgDir)) {
    fs.mkdirSync(ROOT_FALLBACK_DIR, { recursive: true, mode: 0o711 });
    const target = path.join(ROOT_FALLBACK_DIR, `pg-${createHash("sha256").update(cfg.pgDir).digest("hex").slice(0, 16)}`);
    privateDir(target, who, false);
    try {
      fs.symlinkSync(target, cfg.pgDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e; // another process was first
      return;
    }
    process.stderr.write(`hpki: the postgres OS user cannot reach ${home}: the database cluster is kept in ${target} ($HPKI_HOME/pg links to it)\n`
      + `hpki: OS ユーザー postgres が ${home} に到達できないため、データベースは ${target} に置きます（$HPKI_HOME/pg はそこへのリンクです）\n`);
    return;
  }
  throw new ManagedDatabaseError(
    `the postgres OS user cannot reach ${home} (a parent directory is closed to it); put HPKI_HOME elsewhere (e.g. under /srv or /var/lib) or set DATABASE_URL`,
    `OS ユーザー postgres が ${home} に到達できません（親ディレクトリが閉じています）。HPKI_HOME を別の場所（/srv や /var/lib など）にするか、DATABASE_URL を設定してください`,
  );
}

interface PostmasterPid {
  pid: number;
  status: string;
}

/** postmaster.pid of `dataDir` (line 1 pid, line 8 status "ready"/"starting"/"stopping"), if any. */
function readPostmasterPid(dataDir: string): PostmasterPid | undefined {
  try {
    const lines = fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n");
    return { pid: Number(lines[0]), status: (lines[7] ?? "").trim() };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when the cluster's postmaster runs and accepts connections (by its pid file). */
export function clusterRunning(paths: ClusterPaths): boolean {
  const pm = readPostmasterPid(paths.dataDir);
  return !!pm && Number.isInteger(pm.pid) && pm.pid > 0 && pm.status === "ready" && alive(pm.pid);
}

/** Options for starting a managed cluster. */
export interface EnsureClusterOptions {
  /** Extra server settings (name → value), e.g. the test suite's { fsync: "off" }. Applied at each start. */
  settings?: Record<string, string>;
}

/** Quotes one word for the shell that pg_ctl hands its -o options to. */
const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Makes sure the managed cluster of `cfg` exists and runs, and that its `hpki` database exists:
 * initdb on first use, pg_ctl start when stopped (idempotent, serialised by the lock file).
 * Returns its connection URL (unix socket). @throws ManagedDatabaseError (bilingual) when
 * PostgreSQL is missing, root finds no `postgres` user, or initdb/start fail (with the log's tail).
 */
export async function ensureManagedCluster(cfg: Pick<Config, "home" | "pgDir">, opts: EnsureClusterOptions = {}): Promise<string> {
  const running = clusterPaths(cfg);
  if (clusterRunning(running) && fs.existsSync(running.readyMarker)) return managedUrl(running);
  const who = runAs();
  fs.mkdirSync(cfg.home, { recursive: true, mode: 0o700 });
  letClusterUserIn(cfg, who);
  const paths = clusterPaths(cfg); // again: letClusterUserIn may have made pg a link
  privateDir(paths.pgDir, who, false);
  await withFileLock(paths.lockFile, async () => {
    const bin = postgresBinDir(paths.dataDir);
    if (!fs.existsSync(path.join(paths.dataDir, "PG_VERSION"))) {
      fs.rmSync(paths.dataDir, { recursive: true, force: true }); // a half-made initdb (killed): start over
      await runPg(who, paths.pgDir, path.join(bin, "initdb"), [
        "-D", paths.dataDir, "-U", MANAGED_USER, "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=reject",
      ]);
    }
    if (!clusterRunning(paths)) {
      if (paths.socketDir !== paths.pgDir) privateDir(paths.socketDir, who, true);
      const settings: Record<string, string> = {
        listen_addresses: "", unix_socket_directories: paths.socketDir, port: String(SOCKET_PORT),
        // Server log rotation by PostgreSQL's own collector: one file per weekday under pg/log,
        // overwritten a week later, so a long-running default set-up keeps at most 7 days of log.
        // Only messages before the collector starts (a failed start) go to postgres.log.
        logging_collector: "on", log_directory: path.join(paths.pgDir, "log"), log_filename: "postgresql-%a.log",
        log_truncate_on_rotation: "on", log_rotation_age: "1d", log_rotation_size: "0",
        ...opts.settings,
      };
      const o = Object.entries(settings).map(([k, v]) => `-c ${shellQuote(`${k}=${v}`)}`).join(" ");
      await runPg(who, paths.pgDir, path.join(bin, "pg_ctl"), ["start", "-D", paths.dataDir, "-l", paths.logFile, "-w", "-t", "120", "-o", o]).catch((e) => {
        throw new ManagedDatabaseError(`${(e as Error).message}\n${logTail(paths.logFile)}`, "管理下の PostgreSQL を起動できませんでした（ログを確認してください）");
      });
    }
    if (!fs.existsSync(paths.readyMarker)) {
      const client = new pg.Client({ connectionString: managedUrl(paths, "postgres") });
      await client.connect();
      try {
        const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [MANAGED_DATABASE]);
        if (found.rowCount === 0) await client.query(`CREATE DATABASE ${MANAGED_DATABASE}`);
      } finally {
        await client.end();
      }
      fs.writeFileSync(paths.readyMarker, "", { mode: 0o600 });
    }
  });
  return managedUrl(paths);
}

/** The last lines of the server log (for an error message). */
function logTail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Stops the managed cluster (fast shutdown: open sessions are ended, transactions rolled back,
 * then a checkpoint). Returns false when it was not running. @throws ManagedDatabaseError on failure.
 */
export async function stopManagedCluster(cfg: Pick<Config, "pgDir">): Promise<boolean> {
  const paths = clusterPaths(cfg);
  if (!fs.existsSync(path.join(paths.dataDir, "PG_VERSION")) || !readPostmasterPid(paths.dataDir)) return false;
  const who = runAs();
  const r = await runPg(who, paths.pgDir, path.join(postgresBinDir(paths.dataDir), "pg_ctl"), ["stop", "-D", paths.dataDir, "-m", "fast", "-w", "-t", "120"], [0, 1]);
  if (r.code !== 0 && clusterRunning(paths)) {
    throw new ManagedDatabaseError(`pg_ctl stop failed: ${r.out.trim()}`, "管理下の PostgreSQL を停止できませんでした");
  }
  return r.code === 0;
}

/** What `hpki db status` reports about the managed cluster. */
export interface ClusterStatus {
  managed: true;
  initialised: boolean;
  running: boolean;
  pid: number | null;
  dataDir: string;
  socketDir: string;
  url: string;
  /** OS account the server runs as. */
  owner: string;
  /** PostgreSQL major of the data directory (PG_VERSION), null before initdb. */
  version: string | null;
  /** Bytes under the data directory (tables, WAL, everything). */
  dataBytes: number;
}

/** Status of the managed cluster of `cfg` (no side effects; reads the data directory). */
export function managedClusterStatus(cfg: Pick<Config, "pgDir">): ClusterStatus {
  const paths = clusterPaths(cfg);
  let version: string | null = null;
  try {
    version = fs.readFileSync(path.join(paths.dataDir, "PG_VERSION"), "utf8").trim();
  } catch {
    // not initialised
  }
  const running = clusterRunning(paths);
  let owner = "";
  try {
    const uid = String(fs.statSync(paths.pgDir).uid);
    owner = spawnSync("id", ["-nu", uid], { encoding: "utf8" }).stdout?.trim() || uid;
  } catch {
    // no cluster yet
  }
  return {
    managed: true,
    initialised: version !== null,
    running,
    pid: running ? readPostmasterPid(paths.dataDir)!.pid : null,
    dataDir: paths.dataDir,
    socketDir: paths.socketDir,
    url: managedUrl(paths),
    owner,
    version,
    dataBytes: duBytes(paths.dataDir),
  };
}

/** Sum of file sizes under `dir` (0 when absent). */
function duBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += duBytes(p);
    else if (e.isFile()) {
      try {
        total += fs.statSync(p).size;
      } catch {
        // removed meanwhile (WAL recycling)
      }
    }
  }
  return total;
}

/**
 * pg_dump of the database at `url` in custom format (-Fc, restorable with pg_restore) into
 * `file` (mode 0600). Uses the newest installed pg_dump (it must not be older than the server).
 * @throws ManagedDatabaseError with pg_dump's message.
 */
export async function backupDatabase(url: string, file: string, dataDir?: string): Promise<{ file: string; bytes: number }> {
  const bin = dataDir ? postgresBinDir(dataDir) : path.join(POSTGRES_ROOT, String(installedMajors()[0] ?? 0), "bin");
  const out = path.resolve(file);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(path.join(bin, "pg_dump"), ["-Fc", "-f", out, "-d", url], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new ManagedDatabaseError(`pg_dump failed: ${err.trim()}`, `pg_dump が失敗しました: ${err.trim()}`))));
  });
  fs.chmodSync(out, 0o600);
  return { file: out, bytes: fs.statSync(out).size };
}
