/**
 * `npm run bench -- pobox [--size 1048576] [--recipients 1,10,100] [--seconds 2]`
 *
 * Issue 15 Benchmark (envelope half): envelopes per second for a 1 MB document sealed by
 * sealEnvelope (src/pki/envelope.ts: AES-256-GCM + one ECDH P-256 RecipientInfo per reader) to 1,
 * 10 and 100 EC readers, against, in the same run on the same bytes:
 *   - bare AES-256-GCM with node:crypto (the content encryption alone);
 *   - one key agreement with node:crypto (ephemeral P-256 key + ECDH), the per-reader floor;
 *   - `openssl cms -encrypt -aes-256-gcm` with the same readers (process start included).
 * Target: seal time ≤ 1.2 × bare AES-GCM time + readers × one key agreement. Re-encryption at the
 * box is the pobox role's bench. Last line: one JSON object.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createCipheriv, createECDH, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { sealEnvelope } from "../../src/pki/envelope.ts";

/** Mean milliseconds of `fn` over at least `seconds` (and at least `minRuns` runs). */
async function timeIt(fn: () => unknown, seconds: number, minRuns = 3): Promise<{ ms: number; runs: number }> {
  await fn(); // warm-up
  const start = process.hrtime.bigint();
  let runs = 0;
  while (runs < minRuns || Number(process.hrtime.bigint() - start) / 1e9 < seconds) {
    await fn();
    runs++;
  }
  return { ms: Number(process.hrtime.bigint() - start) / 1e6 / runs, runs };
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

  const aes = await timeIt(() => {
    const c = createCipheriv("aes-256-gcm", randomBytes(32), randomBytes(12));
    Buffer.concat([c.update(content), c.final()]);
    c.getAuthTag();
  }, seconds, 20);
  const peer = createECDH("prime256v1");
  peer.generateKeys();
  const peerPoint = peer.getPublicKey();
  const ka = await timeIt(() => {
    const eph = createECDH("prime256v1");
    eph.generateKeys();
    eph.computeSecret(peerPoint);
  }, seconds, 100);

  const rows: { recipients: number; ourMs: number; envelopesPerSecond: number; budgetMs: number; withinTarget: boolean; opensslMs: number; opensslPerSecond: number }[] = [];
  for (const n of counts) {
    const readers = certs.slice(0, n);
    const ours = await timeIt(() => sealEnvelope(content, readers), seconds);
    const out = path.join(dir, "out.der");
    const args = ["cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER", "-in", contentFile, "-out", out, "-keyopt", "ecdh_kdf_md:sha256"];
    const recip = pems.slice(0, n).flatMap((p) => ["-recip", p, "-keyopt", "ecdh_kdf_md:sha256"]);
    const opensslRun = () => {
      const r = spawnSync("openssl", [...args.slice(0, -2), ...recip]);
      if (r.status !== 0) throw new Error(`openssl cms -encrypt failed: ${r.stderr}`);
    };
    const ossl = await timeIt(opensslRun, seconds);
    const budgetMs = 1.2 * aes.ms + n * ka.ms;
    rows.push({
      recipients: n,
      ourMs: round(ours.ms),
      envelopesPerSecond: round(1000 / ours.ms),
      budgetMs: round(budgetMs),
      withinTarget: ours.ms <= budgetMs,
      opensslMs: round(ossl.ms),
      opensslPerSecond: round(1000 / ossl.ms),
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });

  console.log(`pobox envelopes: ${size} bytes, EC P-256 readers, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, node ${process.version}`);
  console.log(`bare AES-256-GCM (node:crypto): ${round(aes.ms)} ms (${round(size / 1048576 / (aes.ms / 1000))} MB/s); one key agreement (node:crypto ECDH P-256, ephemeral key + derive): ${round(ka.ms, 3)} ms`);
  console.log("readers | ours ms | envelopes/s | budget ms (1.2×AES + n×KA) | within | openssl cms ms | openssl/s");
  for (const r of rows) {
    console.log(`${String(r.recipients).padStart(7)} | ${String(r.ourMs).padStart(7)} | ${String(r.envelopesPerSecond).padStart(11)} | ${String(r.budgetMs).padStart(26)} | ${r.withinTarget ? "yes" : "NO "}    | ${String(r.opensslMs).padStart(14)} | ${r.opensslPerSecond}`);
  }
  console.log(JSON.stringify({
    bench: "pobox",
    sizeBytes: size,
    aesGcmMs: round(aes.ms),
    keyAgreementMs: round(ka.ms, 3),
    rows,
    allWithinTarget: rows.every((r) => r.withinTarget),
    loadAverage1m: round(os.loadavg()[0], 1),
  }));
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
