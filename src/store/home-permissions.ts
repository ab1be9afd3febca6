/**
 * $HPKI_HOME holds secrets at rest (HSM token files and PINs, session secrets, PIN mailers, the
 * managed database): it is private to its owner. Home 0700 — or 0710 with group `postgres` when
 * root runs the managed cluster as that user (src/store/managed-pg.ts) — and everything in it
 * without group/other permissions (files 0600, directories 0700). Checked at the start of every
 * hpki process: what is too open is repaired and said on stderr; what cannot be repaired (not ours)
 * is refused. The managed cluster's own directory ($HPKI_HOME/pg) is PostgreSQL's: it is checked
 * to be 0700 but not walked (PostgreSQL creates its files 0600 itself).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Config } from "../config.ts";
import { HpkiError } from "../pipeline/errors.ts";

/** The home cannot be made private (not ours): the process must not run on it. */
export class InsecureHomeError extends HpkiError {
  override name = "InsecureHomeError";
  constructor(message: string, messageJa: string) {
    super(message, messageJa, 500, "home_insecure");
  }
}

/** What securing a home did. */
export interface HomeCheck {
  created: boolean;
  /** Paths whose mode was tightened, with the old and new mode (octal strings). */
  repaired: { path: string; from: string; to: string }[];
}

const oct = (m: number) => `0${(m & 0o777).toString(8)}`;

function postgresGid(): number | undefined {
  const r = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/**
 * Creates `cfg.home` (0700) when missing, else tightens it and everything under it to owner-only
 * as described above. @throws InsecureHomeError (bilingual) when a too-open entry cannot be
 * chmod-ed (owned by someone else).
 */
export function secureHome(cfg: Pick<Config, "home" | "pgDir">): HomeCheck {
  const check: HomeCheck = { created: false, repaired: [] };
  if (!fs.existsSync(cfg.home)) {
    fs.mkdirSync(cfg.home, { recursive: true, mode: 0o700 });
    fs.chmodSync(cfg.home, 0o700); // mkdir's mode is masked by the umask only downwards; be exact
    check.created = true;
    return check;
  }
  const tighten = (p: string, st: fs.Stats, allowed: number) => {
    const mode = st.mode & 0o777;
    if ((mode & ~allowed & 0o077) === 0) return;
    const to = mode & (0o700 | allowed);
    try {
      fs.chmodSync(p, to);
    } catch (e) {
      throw new InsecureHomeError(
        `${p} is open to other users (mode ${oct(mode)}) and cannot be made private (${(e as NodeJS.ErrnoException).code}); fix its owner or mode, or use another HPKI_HOME`,
        `${p} が他のユーザーに開かれており（モード ${oct(mode)}）、非公開にできません（${(e as NodeJS.ErrnoException).code}）。所有者かモードを直すか、別の HPKI_HOME を使ってください`,
      );
    }
    check.repaired.push({ path: p, from: oct(mode), to: oct(to) });
  };
  const home = fs.statSync(cfg.home);
  if (!home.isDirectory()) {
    throw new InsecureHomeError(`HPKI_HOME ${cfg.home} is not a directory`, `HPKI_HOME ${cfg.home} はディレクトリではありません`);
  }
  // Root running the managed cluster as `postgres`: that group may traverse (x) the home, no more.
  const rootWithCluster = process.getuid?.() === 0 && home.gid !== 0 && home.gid === postgresGid();
  tighten(cfg.home, home, rootWithCluster ? 0o010 : 0);
  // Other hpki processes may be running on this home (SoftHSM lock and temp files come and go):
  // an entry that vanishes while we look is skipped, not an error.
  const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if (gone(e)) return;
      throw e;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isSymbolicLink() || !(e.isFile() || e.isDirectory())) continue; // sockets, links: not data
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      try {
        tighten(p, st, 0);
      } catch (err) {
        if (!fs.existsSync(p)) continue;
        throw err;
      }
      if (e.isDirectory() && p !== cfg.pgDir) walk(p);
    }
  };
  walk(cfg.home);
  return check;
}

/** The stderr message for a repaired home (English and Japanese), or "" when nothing was done. */
export function describeHomeCheck(cfg: Pick<Config, "home">, c: HomeCheck): string {
  if (!c.repaired.length) return "";
  const first = c.repaired.slice(0, 3).map((r) => `${r.path} ${r.from}→${r.to}`).join(", ");
  const more = c.repaired.length > 3 ? ` … (+${c.repaired.length - 3})` : "";
  return `hpki: HPKI_HOME ${cfg.home} was open to other users; made private (${c.repaired.length} entries: ${first}${more})\n`
    + `hpki: HPKI_HOME ${cfg.home} が他のユーザーに開かれていたため、非公開に修正しました（${c.repaired.length} 件）\n`;
}
