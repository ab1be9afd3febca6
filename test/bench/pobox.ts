/**
 * `npm run bench -- pobox [--size 1048576] [--recipients 1,10,100] [--seconds 2]`
 *
 * Issue 15 Benchmark (envelope half): envelopes per second for a 1 MB document sealed by
 * sealEnvelope (src/pki/envelope.ts: AES-256-GCM + one ECDH P-256 RecipientInfo per reader) to 1,
 * 10 and 100 EC readers, against, in the same run on the same bytes:
 *   - bare AES-256-GCM with node:crypto (the content encryption alone);
 *   - one key agreement with node:crypto (ephemeral P-256 key + ECDH), the per-reader floor;
 *   - `openssl cms -encrypt -aes-256-gcm` with the same readers (process start included).
 * Target: seal time ≤ 1.2 × bare AES-GCM time + readers × one key agreement, judged on wall time
 * and, separately, on CPU time (the seal shares its key agreements with a helper thread while it
 * encrypts, so wall time can be under the single-thread cost while CPU time is not). Both baselines are
 * single-thread node:crypto calls; the helper thread is started before the first row. Re-encryption at the box is the pobox role's bench. Last line: one
 * JSON object.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate, createCipheriv, createECDH, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { sealEnvelope } from "../../src/pki/envelope.ts";
import { keyAgreementHelperOnline } from "../../src/pki/key-agreement-pool.ts";

/**
 * Median and fastest milliseconds of one run of `fn` over at least `seconds` (and `minRuns` runs):
 * not the mean, because this 2-core machine is shared and one descheduled run is no figure. The
 * target is judged on the fastest runs of all three (each side at its least disturbed). The same
 * for the process CPU time of a run (user + system of all threads, which Linux sums exactly:
 * sealEnvelope shares its key agreements with a helper thread, src/pki/key-agreement-pool.ts).
 */
async function timeIt(fn: () => unknown, seconds: number, minRuns = 3): Promise<{ ms: number; minMs: number; cpuMs: number; cpuMinMs: number; runs: number }> {
  await fn(); // warm-up
  const start = process.hrtime.bigint();
  const times: number[] = [];
  const cpu: number[] = [];
  while (times.length < minRuns || Number(process.hrtime.bigint() - start) / 1e9 < seconds) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { ms: times[times.length >> 1], minMs: times[0], cpuMs: cpu[cpu.length >> 1], cpuMinMs: cpu[0], runs: times.length };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { size: { type: "string", default: String(1 << 20) }, recipients: { type: "string", default: "1,10,100" }, seconds: { type: "string", default: "2" } },
  });
  const size = Number(values.size);
  const counts = values.recipients.split(",").map(Number);
  const seconds = Number(values.seconds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-pobox-"));
  const max = Math.max(...counts);
  const certs: Buffer[] = [];
  const pems: string[] = [];
  for (let i = 0; i < max; i++) {
    const pem = path.join(dir, `r${i}.pem`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, `r${i}.key`), "-out", pem,
      "-days", "1", "-subj", `/C=JP/CN=reader ${i}`, "-addext", "keyUsage=critical,keyAgreement"], { stdio: "pipe" });
    pems.push(pem);
    certs.push(execFileSync("openssl", ["x509", "-in", pem, "-outform", "DER"]));
  }
  const content = randomBytes(size);
  const contentFile = path.join(dir, "content.bin");
  fs.writeFileSync(contentFile, content);

  const aesRun = () => {
    const c = createCipheriv("aes-256-gcm", randomBytes(32), randomBytes(12));
    Buffer.concat([c.update(content), c.final()]);
    c.getAuthTag();
  };
  // One key agreement as the envelope does it (agreeKey in src/pki/key-agreement-pool.ts): a fresh ephemeral key with the next reader's key.
  const readerPoints = certs.map((c) => new X509Certificate(c).publicKey.export({ type: "spki", format: "der" }).subarray(-65));
  let next = 0;
  const kaRun = () => {
    const eph = createECDH("prime256v1");
    eph.generateKeys();
    eph.computeSecret(readerPoints[next++ % readerPoints.length]);
  };
  // Steady state, as in a running box or client: the seal's helper thread is up before the first row.
  for (let waited = 0; !keyAgreementHelperOnline() && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  // The baselines are measured again next to each row, so all three see the same machine load.
  const aesAll: number[] = [];
  const kaAll: number[] = [];
  const rows: {
    recipients: number; ourMs: number; ourMinMs: number; ourCpuMs: number; ourCpuMinMs: number; envelopesPerSecond: number; aesGcmMinMs: number; keyAgreementMinMs: number;
    aesGcmCpuMinMs: number; keyAgreementCpuMinMs: number; budgetMs: number; withinTarget: boolean; budgetCpuMs: number; withinTargetCpu: boolean;
    budgetScaledMs: number; withinScaled: boolean; budgetScaledCpuMs: number; withinScaledCpu: boolean;
    opensslMs: number; opensslPerSecond: number;
  }[] = [];
  for (const n of counts) {
    const readers = certs.slice(0, n);
    const aes = await timeIt(aesRun, seconds / 2, 20);
    const ka = await timeIt(kaRun, seconds / 2, 100);
    aesAll.push(aes.minMs);
    kaAll.push(ka.minMs);
    const ours = await timeIt(() => sealEnvelope(content, readers), seconds);
    const out = path.join(dir, "out.der");
    const args = ["cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER", "-in", contentFile, "-out", out, "-keyopt", "ecdh_kdf_md:sha256"];
    const recip = pems.slice(0, n).flatMap((p) => ["-recip", p, "-keyopt", "ecdh_kdf_md:sha256"]);
    const opensslRun = () => {
      const r = spawnSync("openssl", [...args.slice(0, -2), ...recip]);
      if (r.status !== 0) throw new Error(`openssl cms -encrypt failed: ${r.stderr}`);
    };
    const ossl = await timeIt(opensslRun, seconds);
    // The target read two ways: 1.2 × AES + n × KA (strict) and 1.2 × (AES + n × KA).
    const budgetMs = 1.2 * aes.minMs + n * ka.minMs;
    const budgetScaledMs = 1.2 * (aes.minMs + n * ka.minMs);
    const budgetCpuMs = 1.2 * aes.cpuMinMs + n * ka.cpuMinMs;
    const budgetScaledCpuMs = 1.2 * (aes.cpuMinMs + n * ka.cpuMinMs);
    rows.push({
      recipients: n,
      ourMs: round(ours.ms),
      ourMinMs: round(ours.minMs),
      ourCpuMs: round(ours.cpuMs),
      ourCpuMinMs: round(ours.cpuMinMs),
      envelopesPerSecond: round(1000 / ours.ms),
      aesGcmMinMs: round(aes.minMs, 3),
      keyAgreementMinMs: round(ka.minMs, 3),
      aesGcmCpuMinMs: round(aes.cpuMinMs, 3),
      keyAgreementCpuMinMs: round(ka.cpuMinMs, 3),
      budgetMs: round(budgetMs),
      withinTarget: ours.minMs <= budgetMs,
      budgetCpuMs: round(budgetCpuMs),
      withinTargetCpu: ours.cpuMinMs <= budgetCpuMs,
      budgetScaledMs: round(budgetScaledMs),
      withinScaled: ours.minMs <= budgetScaledMs,
      budgetScaledCpuMs: round(budgetScaledCpuMs),
      withinScaledCpu: ours.cpuMinMs <= budgetScaledCpuMs,
      opensslMs: round(ossl.ms),
      opensslPerSecond: round(1000 / ossl.ms),
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });

  console.log(`pobox envelopes: ${size} bytes, EC P-256 readers, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}`);
  console.log("bare AES-256-GCM and one key agreement (KA: ephemeral P-256 key + ECDH) with node:crypto, measured beside each row");
  console.log("wall: ms of one run, median / least; CPU: ms of one run, all threads, median / least; each target reading judged on the least of each side");
  console.log("readers | ours wall ms  | envelopes/s | AES min | KA min | 1.2×AES+n×KA    | 1.2×(AES+n×KA)  | ours CPU ms   | AES CPU | KA CPU | 1.2×AES+n×KA    | 1.2×(AES+n×KA)  | openssl cms ms");
  const judged = (budget: number, within: boolean) => `${budget} ${within ? "yes" : "NO"}`.padEnd(15);
  for (const r of rows) {
    console.log([String(r.recipients).padStart(7), `${r.ourMs} / ${r.ourMinMs}`.padEnd(13), String(r.envelopesPerSecond).padStart(11), String(r.aesGcmMinMs).padStart(7),
      String(r.keyAgreementMinMs).padStart(6), judged(r.budgetMs, r.withinTarget), judged(r.budgetScaledMs, r.withinScaled), `${r.ourCpuMs} / ${r.ourCpuMinMs}`.padEnd(13),
      String(r.aesGcmCpuMinMs).padStart(7), String(r.keyAgreementCpuMinMs).padStart(6), judged(r.budgetCpuMs, r.withinTargetCpu), judged(r.budgetScaledCpuMs, r.withinScaledCpu),
      String(r.opensslMs)].join(" | "));
  }
  console.log(JSON.stringify({
    bench: "pobox",
    sizeBytes: size,
    aesGcmMinMs: round(Math.min(...aesAll), 3),
    keyAgreementMinMs: round(Math.min(...kaAll), 3),
    rows,
    allWithinTarget: rows.every((r) => r.withinTarget),
    allWithinTargetCpu: rows.every((r) => r.withinTargetCpu),
    allWithinScaled: rows.every((r) => r.withinScaled),
    allWithinScaledCpu: rows.every((r) => r.withinScaledCpu),
    loadAverage1m: round(os.loadavg()[0], 1),
  }));
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
