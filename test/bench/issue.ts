/**
 * `npm run bench -- issue [--count 2000] [--sessions N] [--batch 128] [--inflight 3]`
 *
 * Issues RSA-2048 sign-profile certificates through the full IA path — subject validation,
 * profile template, pre-issuance lint, intent row, HSM signature over the session pool,
 * certificate row and audit records — from CSRs prepared (and their proof of possession checked)
 * beforehand. In the same run, on the same token with the same number of sessions, measures the
 * raw PKCS#11 rate: C_Sign (CKM_SHA256_RSA_PKCS) on a tbsCertificate-sized message straight
 * through graphene, no pool, no JS work. ratio = certsPerSec / rawSignsPerSec.
 *
 * Database: DATABASE_URL when set, else the managed PostgreSQL cluster under a temp HPKI_HOME.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config.ts";
import type { Pkcs11Module } from "../../src/hsm/module.ts";
import { openIaContext } from "../../src/ia/context.ts";
import { IssuanceService, type IssuanceRequest } from "../../src/ia/issuance.ts";
import { encodeCertificate } from "../../src/pki/certificate.ts";
import { parseCertificationRequest } from "../../src/pki/csr.ts";
import { lintTbsCertificate } from "../../src/pki/lint.ts";
import { newSerialNumber } from "../../src/pki/serial.ts";
import { compileTbsTemplate } from "../../src/pki/tbs.ts";
import { computeValidity } from "../../src/pki/validity.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { openBenchDatabase } from "./bench-db.ts";

const by = { actor: "bench", role: "ia" };

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      count: { type: "string", default: "2000" },
      sessions: { type: "string", default: String(os.availableParallelism() * 2) },
      batch: { type: "string", default: "128" },
      keys: { type: "string", default: "16" },
      inflight: { type: "string", default: "3" },
    },
  });
  const count = Number(values.count);
  const sessions = Number(values.sessions);
  const batch = Number(values.batch);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-"));
  const cfg = loadConfig({ ...process.env, HPKI_HOME: home, PKCS11_MODULE: "", HPKI_HSM_PIN: "" });
  const bench = await openBenchDatabase(cfg);
  const ctx = await openIaContext(cfg, { poolSize: sessions, db: bench.db });
  try {
    await runDemoCeremony(ctx, by);

    // Prepared CSRs: distinct RSA-2048 subscriber keys made by OpenSSL, proof of possession checked once.
    const csrDir = path.join(home, "csr");
    fs.mkdirSync(csrDir);
    const spkis: Buffer[] = [];
    for (let i = 0; i < Number(values.keys); i++) {
      const f = path.join(csrDir, `${i}.csr`);
      execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${f}.key`, "-subj", `/CN=bench ${i}`, "-out", f], { stdio: "ignore" });
      spkis.push((await parseCertificationRequest(fs.readFileSync(f))).subjectPublicKeyInfo);
    }
    const profile = ctx.policies.profiles.get("sign")!;
    const requests: IssuanceRequest[] = Array.from({ length: count }, (_, i) => ({
      profile: "sign",
      subject: parseSubscriberSubject({
        hcRole: i % 3 ? "Medical Doctor" : "Pharmacist",
        subscriberId: `BENCH${String(i).padStart(6, "0")}`,
        name: { latin: "Taro Yamada", kanji: "山田　太郎" },
        organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
      }, profile, ctx.policies.hcRoles),
      subjectPublicKeyInfo: spkis[i % spkis.length],
      requestKey: `bench-${i}`,
    }));

    // Warm-up: JIT, template compile, session log-in.
    await ctx.issuance.issueMany(requests.splice(0, Math.min(batch, 64)), by);

    const cpu0 = process.cpuUsage();
    const rawTotal = Math.max(count, 1000);
    const signKey = (await ctx.keys.findKey("demo-sign-ca-1"))!;
    const rawSignsPerSec = await rawSignRate(ctx.module, ctx.cfg.caTokenLabel, signKey.id, sessions, rawTotal);
    const rawCpuMs = cpuMs(cpu0) / rawTotal;
    const stages = stageCosts(requests[0], ctx);
    // Several batches in flight so the HSM signs one batch while the database stores another.
    const inFlight = Number(values.inflight);
    const rssBefore = process.memoryUsage().rss;
    const cpu1 = process.cpuUsage();
    const pg0 = postgresCpuMs();
    const t0 = process.hrtime.bigint();
    await issueAll(ctx.issuance, requests, batch, inFlight);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const issued = requests.length;
    const nodeCpuMs = cpuMs(cpu1) / issued;
    const pgCpuMs = (postgresCpuMs() - pg0) / issued;
    const certsPerSec = issued / seconds;
    const stored = Number((await ctx.db("certificates").where({ status: "issued" }).count({ n: "*" }).first())?.n);
    const ratio = certsPerSec / rawSignsPerSec;

    // The same path with a signer that costs nothing: what the CA itself costs per certificate,
    // i.e. the rate it could sustain with an HSM that signs off this machine's CPUs.
    const nullSigner = Object.create(ctx.keys, { sign: { value: async () => Buffer.alloc(256, 1) } });
    const overheadService = new IssuanceService(ctx.db, nullSigner, ctx.policies.profiles);
    const overheadRequests = requests.map((r, i) => ({ ...r, requestKey: `overhead-${i}` }));
    const cpu2 = process.cpuUsage();
    const pg2 = postgresCpuMs();
    const t2 = process.hrtime.bigint();
    await issueAll(overheadService, overheadRequests, batch, inFlight);
    const overheadPerSec = overheadRequests.length / (Number(process.hrtime.bigint() - t2) / 1e9);
    const overheadCpuMs = cpuMs(cpu2) / overheadRequests.length;
    const overheadPgMs = (postgresCpuMs() - pg2) / overheadRequests.length;

    const rows = [
      ["database", bench.kind],
      ["HSM sessions", String(sessions)],
      ["batch size × batches in flight", `${batch} × ${inFlight}`],
      ["certificates issued", `${issued} (${stored} rows incl. warm-up)`],
      ["seconds", seconds.toFixed(2)],
      ["certificates/s (full path)", certsPerSec.toFixed(0)],
      ["raw C_Sign RSA-2048/s (same token, same sessions)", rawSignsPerSec.toFixed(0)],
      ["ratio", ratio.toFixed(3)],
      ["CPU ms per raw signature (SoftHSM threads)", rawCpuMs.toFixed(3)],
      ["CPU ms per certificate, this process (incl. SoftHSM)", nodeCpuMs.toFixed(3)],
      ["CPU ms per certificate, local postgres processes", pgCpuMs.toFixed(3)],
      ["without signing (zero-cost signer): certificates/s", overheadPerSec.toFixed(0)],
      ["without signing: CPU ms per certificate, process / postgres", `${overheadCpuMs.toFixed(3)} / ${overheadPgMs.toFixed(3)}`],
      ["pure stages per certificate: tbs build / lint / encode (µs)", `${stages.buildUs.toFixed(0)} / ${stages.lintUs.toFixed(0)} / ${stages.encodeUs.toFixed(0)}`],
      ["RSS growth MB", ((process.memoryUsage().rss - rssBefore) / 1048576).toFixed(0)],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(52)} ${v}`);
    console.log(JSON.stringify({
      certsPerSec: Math.round(certsPerSec),
      rawSignsPerSec: Math.round(rawSignsPerSec),
      ratio: Number(ratio.toFixed(3)),
      certsPerSecWithoutSigning: Math.round(overheadPerSec),
      database: bench.kind,
    }));
  } finally {
    await ctx.close();
    await bench.cleanup();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** Issues `requests` in batches of `batch`, `inFlight` batches at a time. */
async function issueAll(service: IssuanceService, requests: IssuanceRequest[], batch: number, inFlight: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < requests.length) {
      const chunk = requests.slice(next, next + batch);
      next += batch;
      await service.issueMany(chunk, by);
    }
  }));
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/** CPU time (ms) used so far by local processes named postgres (Linux /proc; 0 elsewhere). */
function postgresCpuMs(): number {
  let ticks = 0;
  try {
    for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        if (!stat.includes("(postgres)")) continue;
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    return 0;
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Main-thread cost of the pure stages for one request: tbs build, lint, certificate encoding (µs). */
function stageCosts(req: IssuanceRequest, ctx: Awaited<ReturnType<typeof openIaContext>>) {
  const profile = ctx.policies.profiles.get(req.profile)!;
  const issuer = { caName: "x", name: Buffer.from("3000", "hex"), keyIdentifier: Buffer.alloc(20, 1), authorityCertIssuer: Buffer.from("3000", "hex"),
    authorityCertSerialNumber: Buffer.from([1]), signatureAlgorithm: "sha256WithRSAEncryption" as const, crlDistributionPointUrl: "http://localhost/x.crl" };
  const template = compileTbsTemplate(profile, issuer);
  const v = { serialNumber: newSerialNumber(), subject: { kind: "subscriber" as const, subject: req.subject }, subjectPublicKeyInfo: req.subjectPublicKeyInfo, validity: computeValidity(profile, new Date()) };
  const tbs = template(v);
  const sig = Buffer.alloc(256, 7);
  const time = (f: () => unknown) => {
    for (let i = 0; i < 2000; i++) f();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10000; i++) f();
    return Number(process.hrtime.bigint() - t0) / 1e7;
  };
  return {
    buildUs: time(() => template(v)),
    lintUs: time(() => lintTbsCertificate(tbs, profile, issuer)),
    encodeUs: time(() => encodeCertificate(tbs, "sha256WithRSAEncryption", sig)),
  };
}

/**
 * Raw PKCS#11 baseline: `sessions` sessions on the token `tokenLabel` (logged in already, by a
 * pool of the same process), each signing back to back with graphene's asynchronous C_Sign
 * (CKM_SHA256_RSA_PKCS) over a `bytes`-byte message with the RSA key whose CKA_ID is `keyId`.
 * Signs/s. Also used by the OCSP bench.
 */
export async function rawSignRate(mod: Pkcs11Module, tokenLabel: string, keyId: Buffer, sessions: number, total: number, bytes = 700): Promise<number> {
  const slot = mod.findSlotByTokenLabel(tokenLabel)!;
  const data = Buffer.alloc(bytes, 0x5a);
  const opened = Array.from({ length: sessions }, () => slot.open(/* CKF_SERIAL_SESSION */ 4));
  try {
    const privs = opened.map((s) => s.find({ class: 3 /* CKO_PRIVATE_KEY */, id: keyId }).items(0).toType());
    let done = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(opened.map((s, i) => new Promise<void>((resolve, reject) => {
      const step = () => {
        if (done >= total) return resolve();
        done++;
        s.createSign("SHA256_RSA_PKCS", privs[i] as never).once(data, (err) => (err ? reject(err) : step()));
      };
      step();
    })));
    return total / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    for (const s of opened) s.close();
  }
}
