/**
 * PGlite is one process's database: a second process opening the same directory would corrupt
 * it. This lock file (created with O_EXCL, holding the owner's pid) makes the second process fail
 * fast with a clear message instead. A lock whose process is gone is taken over.
 */
import fs from "node:fs";

export class DatabaseInUseError extends Error {
  override name = "DatabaseInUseError";
}

/**
 * Takes the lock for PGlite directory `dir`; returns the function that releases it.
 * Throws DatabaseInUseError when a live process holds it.
 */
export function lockPgliteDir(dir: string): () => void {
  const file = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off("exit", release);
        try {
          if (fs.readFileSync(file, "utf8") === String(process.pid)) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
      process.on("exit", release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number.parseInt(fs.readFileSync(file, "utf8"), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new DatabaseInUseError(
          `the embedded database ${dir} is in use by process ${owner}; PGlite serves one process at a time — stop that process, or use Postgres (DATABASE_URL) to run several`,
        );
      }
      if (owner === process.pid) {
        throw new DatabaseInUseError(`the embedded database ${dir} is already open in this process`);
      }
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new DatabaseInUseError(`could not lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
