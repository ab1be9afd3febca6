/**
 * `npm run bench -- faults`: the fault-injection run of issue 10 in one report — IA issuance with
 * worker processes SIGKILLed at chosen steps (faults-issuance: kills injected, requests completed
 * exactly once, duplicated, orphaned keys), then the CA and OCSP token directories moved away and
 * back under a running server (faults-hsm: time to recover after the HSM returns). Each part
 * prints its own table; the last line is one JSON object joining both. Options go to neither
 * part (run `faults-issuance` or `faults-hsm` alone to set them).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { ensureManagedCluster, stopManagedCluster } from "../../src/store/managed-pg.ts";
import { run as runIssuance } from "./faults-issuance.ts";
import { run as runHsm } from "./faults-hsm.ts";

/** Runs `body` with DATABASE_URL set: the caller's, else a managed cluster in a temp home (the default set-up). */
async function withDatabaseUrl<T>(body: () => Promise<T>): Promise<T> {
  if (process.env.DATABASE_URL) return body();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-faults-db-"));
  const cfg = loadConfig({ HPKI_HOME: home });
  process.env.DATABASE_URL = await ensureManagedCluster(cfg);
  try {
    return await body();
  } finally {
    delete process.env.DATABASE_URL;
    await stopManagedCluster(cfg);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  if (args.length) throw new Error("bench faults takes no options: use faults-issuance or faults-hsm for those");
  const { issuance, hsm } = await withDatabaseUrl(async () => ({ issuance: await runIssuance([]), hsm: await runHsm([]) }));
  const summary = {
    bench: "faults",
    killsInjected: issuance.killsInjected,
    completedExactlyOnce: issuance.completedExactlyOnce,
    duplicated: issuance.duplicated,
    orphanedKeys: issuance.orphanedKeys,
    timeToRecoverWorstMs: hsm.timeToRecoverWorstMs,
    targets: { duplicated: 0, orphanedKeys: 0, timeToRecoverMs: 5000 },
    issuance,
    hsm,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary;
}
