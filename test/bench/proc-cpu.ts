/**
 * CPU time of a process tree from Linux procfs, for benches whose server runs in other processes
 * (an `hpki serve` child and its workers, the PostgreSQL cluster): utime + stime of `root` and every
 * live descendant (proc(5), /proc/[pid]/stat fields 14 and 15, in clock ticks), per process, so a
 * phase's figure counts only processes seen at its end: one that exited during the phase takes its
 * time with it (read around a phase in which the tree's processes live on: a connection pool,
 * forked workers).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

const TICKS_PER_S = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** { pid → [ppid, cpu ms] } of every process readable now. */
function processTable(): Map<number, [number, number]> {
  const table = new Map<number, [number, number]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // The command name (field 2) may hold spaces and parentheses: split after its last ")".
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    table.set(Number(name), [Number(f[1]), ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S]);
  }
  return table;
}

/** CPU milliseconds (user + system) used so far by `root` and each of its live descendants, by pid. */
export function treeCpuMs(root: number): Map<number, number> {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, [ppid]] of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out = new Map<number, number>();
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    const row = table.get(pid);
    if (row) out.set(pid, row[1]);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU milliseconds a tree used between two readings: for each process of `after`, its time minus
 * its time in `before` (0 for a process started in between). A process that ended in between
 * (e.g. an autovacuum worker) drops out rather than making the figure negative.
 */
export function cpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** The parent of `pid` (for a PostgreSQL backend: the postmaster), or undefined if not on this machine. */
export function parentPid(pid: number): number | undefined {
  return processTable().get(pid)?.[0];
}
