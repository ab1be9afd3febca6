/**
 * `hpki serve --workers N`: the stateless roles in N processes sharing one listening socket
 * (node:cluster; the primary only forks, restarts and stops them). Every worker is a complete
 * `hpki serve` of its own — database pool, OCSP token session pool, SSO verifier — so nothing is
 * shared but the port. This is how the repository's OCSP responder uses more than one core: one
 * Node process tops out at one core of HTTP work (`npm run bench -- ocsp`).
 *
 * Refused: the IA (its schedulers and workers run once per host by design).
 */
import cluster from "node:cluster";
import { processConfig } from "../config.ts";
import type { RoleName } from "../web/role.ts";

/** Roles that may run in several processes: no background job of their own that must run once. */
export const MULTI_PROCESS_ROLES: readonly RoleName[] = ["repo", "sso", "lra", "ra"];

/**
 * Checks that `roles` may run in `workers` processes (any database: external or managed PostgreSQL).
 * @throws Error (English and Japanese) naming the reason.
 */
export function checkWorkers(workers: number, roles: readonly RoleName[]): void {
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error(`--workers must be 1–64 / --workers は 1〜64 で指定してください`);
  if (workers === 1) return;
  const single = roles.filter((r) => !MULTI_PROCESS_ROLES.includes(r));
  if (single.length) {
    throw new Error(`--workers: ${single.join(", ")} must run in one process (its schedulers run once per host) / ${single.join(", ")} は1プロセスで動かしてください（スケジューラは1つだけ動かします）`);
  }
}

/** What a worker tells the primary once it listens. */
interface ListeningMessage {
  hpkiServe: "listening";
  url: string;
}

/**
 * In the primary: forks `workers` processes running this same command, resolves with the URL
 * once all listen, restarts a worker that dies (unless stopping), and on SIGINT/SIGTERM stops them
 * all and exits. @throws Error when a worker exits before listening.
 */
export async function runPrimary(workers: number): Promise<{ url: string; pids: number[] }> {
  let stopping = false;
  const fork = () => cluster.fork({ HPKI_SERVE_WORKER: "1" });
  const started = Array.from({ length: workers }, fork);
  const urls = await Promise.all(
    started.map(
      (w) =>
        new Promise<string>((resolve, reject) => {
          w.on("message", (m: ListeningMessage) => m?.hpkiServe === "listening" && resolve(m.url));
          w.once("exit", (code) => reject(new Error(`hpki serve worker ${w.process.pid} exited ${code} before listening`)));
        }),
    ),
  ).catch((e) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    throw e;
  });
  cluster.on("exit", (w, code, signal) => {
    if (stopping) return;
    process.stderr.write(`hpki serve: worker ${w.process.pid} exited (${signal ?? code}); starting another\n`);
    fork();
  });
  const stop = () => {
    stopping = true;
    const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let left = all.length;
    if (left === 0) process.exit(0);
    for (const w of all) {
      w!.once("exit", () => --left === 0 && process.exit(0));
      w!.kill("SIGTERM");
    }
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return { url: urls[0], pids: started.map((w) => w.process.pid!) };
}

/** True in a worker forked by runPrimary. */
export const isServeWorker = (): boolean => cluster.isWorker && processConfig().serveWorker;

/** In a worker: tells the primary it listens at `url`. */
export function reportListening(url: string): void {
  process.send?.({ hpkiServe: "listening", url } satisfies ListeningMessage);
}
