/**
 * `npm run bench -- pobox-reencrypt [--seconds 3] [--workers N]`
 *
 * Issue 15 Benchmark (box half): proxy re-encryptions per second at the PO box — what
 * src/pobox/organisation.ts reencryptFor does per request besides the database: parse the capsule
 * from the envelope's organisation recipient and re-encrypt it with the designation's kfrag
 * (src/pki/pre.ts Reencryptor, Umbral WASM) — on 1 thread and on N worker threads (default: one
 * per core), against the same count of bare secp256k1-free baselines measured in the same run:
 * node:crypto ECDH P-256 derive (one key agreement), so the figure has a yardstick.
 * Target: ≥ 1,000 re-encryptions/s on 2 cores. Last line: one JSON object.
 */
import { createECDH } from "node:crypto";
import os from "node:os";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { createKfrag, encapsulate, generatePreKeyPair, openReencrypted, Reencryptor } from "../../src/pki/pre.ts";

interface Job {
  kfrag: Uint8Array;
  capsule: Uint8Array;
  seconds: number;
}

/** Re-encrypts `capsule` for `seconds`; returns the count. */
async function loop(job: Job): Promise<number> {
  const r = await Reencryptor.of(job.kfrag);
  const end = performance.now() + job.seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) r.reencrypt(job.capsule);
    n += 50;
  }
  r.free();
  return n;
}

if (!isMainThread && workerData?.pobox) {
  const job = workerData.job as Job;
  parentPort!.once("message", () => void loop(job).then((n) => parentPort!.postMessage(n)));
}

function ecdhPerSecond(seconds: number): number {
  const a = createECDH("prime256v1");
  a.generateKeys();
  const b = createECDH("prime256v1");
  const pub = b.generateKeys();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) a.computeSecret(pub);
    n += 50;
  }
  return n / seconds;
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { seconds: { type: "string", default: "3" }, workers: { type: "string", default: String(os.cpus().length) } } });
  const seconds = Number(values.seconds);
  const workers = Number(values.workers);
  const facility = await generatePreKeyPair();
  const holder = await generatePreKeyPair();
  const designee = await generatePreKeyPair();
  const kfrag = await createKfrag(facility.secretKey, designee.publicKey, holder.secretKey);
  const cek = crypto.getRandomValues(new Uint8Array(32));
  const { capsule, encryptedKey } = await encapsulate(facility.publicKey, cek);
  // Correctness first: the designee opens what the bench re-encrypts.
  const check = await Reencryptor.of(kfrag);
  const opened = await openReencrypted({ designeeSk: designee.secretKey, facilityPk: facility.publicKey, verifyingPk: holder.publicKey, capsule, cfrag: check.reencrypt(capsule), encryptedKey });
  if (Buffer.compare(Buffer.from(opened), Buffer.from(cek)) !== 0) throw new Error("re-encryption does not open");
  check.free();

  const job: Job = { kfrag, capsule, seconds };
  const single = (await loop(job)) / seconds;
  // Workers load this TypeScript file through tsx's API (a worker does not inherit the --import hook).
  const boot = `import("tsx/esm/api").then(({ tsImport }) => tsImport(${JSON.stringify(import.meta.url)}, ${JSON.stringify(import.meta.url)}))`;
  const pool = Array.from({ length: workers }, () => new Worker(boot, { eval: true, workerData: { pobox: true, job } }));
  await new Promise((r) => setTimeout(r, 500)); // let the workers load the WASM module
  const counts = await Promise.all(pool.map((w) => new Promise<number>((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
    w.postMessage("go");
  })));
  await Promise.all(pool.map((w) => w.terminate()));
  const parallel = counts.reduce((a, b) => a + b, 0) / seconds;
  const ecdh = ecdhPerSecond(Math.min(seconds, 2));
  const round = (x: number) => Math.round(x);
  console.log(`pobox re-encryption (Umbral, @nucypher/umbral-pre WASM): ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}`);
  console.log(`1 thread: ${round(single)} re-encryptions/s; ${workers} worker threads: ${round(parallel)} re-encryptions/s (target ≥ 1,000 on 2 cores: ${parallel >= 1000 ? "met" : "NOT met"})`);
  console.log(`baseline, same run: node:crypto ECDH P-256 derive ${round(ecdh)}/s on 1 thread`);
  console.log(JSON.stringify({
    bench: "pobox-reencrypt", cores: os.cpus().length, workers, seconds,
    reencryptionsPerSecond1Thread: round(single), reencryptionsPerSecond: round(parallel), ecdhP256PerSecond1Thread: round(ecdh),
    withinTarget: parallel >= 1000, loadAverage1m: Math.round(os.loadavg()[0] * 10) / 10,
  }));
}
