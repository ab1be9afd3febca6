/**
 * `npm run bench -- ocsp [--certs 200] [--seconds 10] [--connections 64] [--live-seconds 5] [--driver auto|wrk|autocannon] [--workers N] [--nginx-workers 1]`
 *
 * Drives the repository's OCSP responder over loopback with wrk when installed, else autocannon: the repo role runs in a
 * child process (ocsp-child.ts; one Node process, as `hpki serve --role repo` does), the load
 * generator beside it, both on the same machine. First POST requests without a nonce for a mix of good and
 * revoked certificates, SHA-1 and SHA-256 CertIDs (the pre-signed path); then the same with a
 * nonce (the live path: one HSM signature per response). In the same run, the raw PKCS#11 signing
 * rate of the responder key (C_Sign on the OCSP token, same number of sessions) and the HTTP
 * ceiling — a bare node:http server in the same kind of child answering with a fixed body, driven
 * the same way — for comparison: the pre-signed path can at best reach that ceiling. Last, nginx
 * (Debian's, a child with its own config: test/helpers/nginx.ts) serving the `hpki ocsp export`
 * files to RFC 5019 GET requests for the same certificates (issue 11 §6: target ≥ 30,000/s on 2
 * cores; our responder's target ≥ 0.8 of the bare node:http server).
 *
 * Set-up (not timed): demo ceremony, --certs sign certificates, a quarter revoked, responder
 * certificates and pre-signed responses (the IA's `hpki ocsp init`). Every request body is checked
 * once before the run to get a successful response with the expected status.
 * Database: DATABASE_URL when set, else the managed PostgreSQL cluster under a temp HPKI_HOME.
 */
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { loadConfig } from "../../src/config.ts";
import { openIaContext } from "../../src/ia/context.ts";
import { ensureOcspResponders } from "../../src/ia/ocsp-responders.ts";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { CERT_ID_HASHES, loadOcspIssuers } from "../../src/ocsp/issuers.ts";
import { exportOcspResponses, type ExportOutcome } from "../../src/ocsp/export.ts";
import { OcspPresigner } from "../../src/ocsp/presigner.ts";
import { loadOcspPolicy } from "../../src/ocsp/responders.ts";
import { explicit, octetString, oid, sequence } from "../../src/pki/der.ts";
import { childrenOf, contentOf, readSingle } from "../../src/pki/der-cursor.ts";
import { OID } from "../../src/pki/oids.ts";
import type { OcspPolicy } from "../../src/pki/ocsp-policy.ts";
import { encodeCertId } from "../../src/pki/ocsp-response.ts";
import { POLICIES_DIR } from "../../src/policies.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { startNginx } from "../helpers/nginx.ts";
import { openBenchDatabase } from "./bench-db.ts";
import { rawSignRate } from "./issue.ts";

const by = { actor: "bench", role: "ia" };
const repo = path.resolve(import.meta.dirname, "../..");

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      certs: { type: "string", default: "200" },
      seconds: { type: "string", default: "10" },
      "live-seconds": { type: "string", default: "5" },
      connections: { type: "string", default: "64" },
      driver: { type: "string", default: "auto" },
      workers: { type: "string", default: "1" },
      "nginx-workers": { type: "string", default: "1" },
    },
  });
  const certCount = Number(values.certs);
  const driver = pickDriver(values.driver!);
  const workers = Number(values.workers);
  const connections = Number(values.connections);
  const sessions = os.availableParallelism() * 2;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-ocsp-"));
  // One client (wrk on 127.0.0.1) stands for many: lift the per-source live-signing limit.
  const policiesDir = path.join(home, "policies");
  fs.cpSync(POLICIES_DIR, policiesDir, { recursive: true });
  fs.writeFileSync(path.join(policiesDir, "ocsp.yaml"), fs.readFileSync(path.join(policiesDir, "ocsp.yaml"), "utf8").replace(/^live:[\s\S]*$/m, "live:\n  perSourcePerSecond: 100000\n  burst: 100000\n"));
  const exportDir = path.join(home, "export");
  const cfg = loadConfig({ ...process.env, HPKI_HOME: home, PKCS11_MODULE: "", HPKI_HSM_PIN: "", HPKI_OCSP_PIN: "" });
  const bench = await openBenchDatabase(cfg);
  let dbClosed = false;
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // ---- set-up: the IA issues, revokes, creates responders and pre-signs ----
    const ctx = await openIaContext(cfg, { poolSize: sessions, db: bench.db });
    let bodies: { body: Buffer; expect: "good" | "revoked" }[];
    let rawSignsPerSec: number;
    let exported: ExportOutcome;
    let nginxPolicy: OcspPolicy;
    try {
      await runDemoCeremony(ctx, by);
      const profile = ctx.policies.profiles.get("sign")!;
      const spkis = Array.from({ length: 8 }, () => generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" }));
      const issued = await ctx.issuance.issueMany(Array.from({ length: certCount }, (_, i) => ({
        profile: "sign",
        subject: parseSubscriberSubject({ hcRole: "Medical Doctor", subscriberId: `OCSP${String(i).padStart(6, "0")}`, name: { latin: "Taro Yamada" } }, profile, ctx.policies.hcRoles),
        subjectPublicKeyInfo: spkis[i % spkis.length],
      })), by);
      const revoked = new Set<string>();
      for (const c of issued.filter((_, i) => i % 4 === 0)) {
        await revokeCertificate(ctx.db, { caName: c.caName, serialHex: c.serialHex, reason: "keyCompromise" }, by);
        revoked.add(c.serialHex);
      }
      const policy = loadOcspPolicy();
      const ocspKeys = ctx.ocspKeys();
      const [responder] = (await ensureOcspResponders({ db: ctx.db, caKeys: ctx.keys, ocspKeys: ocspKeys.keys, policy }, by)).filter((r) => r.caName === "demo-sign-ca");
      await new OcspPresigner({ db: ctx.db, keys: ocspKeys.keys, policy }).refresh(by);
      exported = await exportOcspResponses(ctx.db, exportDir, policy);
      nginxPolicy = policy;
      const issuer = (await loadOcspIssuers(ctx.db)).find((i) => i.caName === "demo-sign-ca")!;
      bodies = issued.map((c, i) => {
        const hash = CERT_ID_HASHES[i % 2];
        const certId = encodeCertId(hash, issuer.hashes[hash].issuerNameHash, issuer.hashes[hash].issuerKeyHash, Buffer.from(c.serialHex, "hex"));
        return { body: sequence(sequence(sequence(sequence(certId)))), expect: revoked.has(c.serialHex) ? "revoked" : "good" };
      });
      const responderKey = (await ocspKeys.keys.findKey(responder.keyLabel))!;
      rawSignsPerSec = await rawSignRate(ctx.module, cfg.ocspTokenLabel, responderKey.id, sessions, 2000, 300);
    } finally {
      await ctx.close();
    }
    // The parent's connections are not needed any more.
    await bench.db.destroy();
    dbClosed = true;

    // ---- the repository in a child process ----
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: home, PKCS11_MODULE: "", HPKI_HSM_PIN: "", HPKI_OCSP_PIN: "", HPKI_POLICIES: policiesDir };
    if (bench.url) env.DATABASE_URL = bench.url;
    else delete env.DATABASE_URL;
    const startChild = async (...args: string[]) => {
      // HPKI_BENCH_CHILD_NODE_ARGS: extra node flags for the server child (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
      const nodeArgs = (process.env.HPKI_BENCH_CHILD_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
      child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(repo, "test/bench/ocsp-child.ts"), ...args], { cwd: repo, env, stdio: ["ignore", "pipe", "inherit"] });
      const lines = lineReader(child.stdout!);
      const { url } = JSON.parse(await lines.next()) as { url: string };
      const pid = child.pid!;
      const stop = async () => {
        child!.kill("SIGTERM");
        return JSON.parse(await lines.next()) as { cpuMs: number; maxRssMb: number };
      };
      return { url, stop, cpuMs: () => processCpuMs(pid) };
    };
    const { url, stop, cpuMs } = workers > 1 ? await startCluster(env, workers) : await startChild();

    // Each body once: a successful response with the expected status, else the bench is void.
    for (const b of bodies) {
      const res = Buffer.from(await (await fetch(`${url}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: new Uint8Array(b.body) })).arrayBuffer());
      const status = certStatusOf(res);
      if (status !== b.expect) throw new Error(`bench request check: expected ${b.expect}, got ${status}`);
    }

    let cpu0 = cpuMs();
    const presigned = await drive(driver, home, url, bodies.map((b) => b.body), Number(values.seconds), connections);
    const presignedCpuUs = ((cpuMs() - cpu0) * 1000) / presigned.requests.total;
    const withNonce = bodies.map((b) => addNonce(b.body));
    cpu0 = cpuMs();
    const live = await drive(driver, home, url, withNonce, Number(values["live-seconds"]), connections);
    const liveCpuUs = ((cpuMs() - cpu0) * 1000) / live.requests.total;

    const usage = await stop();
    const bare = await startChild("ceiling");
    cpu0 = bare.cpuMs();
    const ceiling = await drive(driver, home, bare.url, bodies.map((b) => b.body), Number(values.seconds), connections);
    const ceilingCpuUs = ((bare.cpuMs() - cpu0) * 1000) / ceiling.requests.total;
    await bare.stop();

    // ---- nginx serving the export (RFC 5019 GET), each path checked once first ----
    const nginx = await startNginx(exportDir, nginxPolicy!, "http://127.0.0.1:9", { workers: Number(values["nginx-workers"]) });
    let staticRun: LoadResult;
    let nginxCpuUs: number;
    try {
      const paths = bodies.map((b) => `/ocsp/${encodeURIComponent(b.body.toString("base64"))}`);
      for (const [i, p] of paths.entries()) {
        const res = await fetch(`${nginx.url}${p}`);
        const status = certStatusOf(Buffer.from(await res.arrayBuffer()));
        if (res.status !== 200 || status !== bodies[i].expect) throw new Error(`bench nginx check: ${p}: HTTP ${res.status}, ${status}`);
      }
      const nginxPids = () => [nginx.pid, ...childPids(nginx.pid)];
      const nginxCpu = () => nginxPids().reduce((t, pid) => t + processCpuMs(pid), 0);
      cpu0 = nginxCpu();
      staticRun = await wrk(home, nginx.url, paths.map((p) => ({ path: p })), Number(values.seconds), connections);
      nginxCpuUs = ((nginxCpu() - cpu0) * 1000) / staticRun.requests.total;
    } finally {
      await nginx.stop();
    }
    const rows = [
      ["database", bench.kind],
      ["certificates (¼ revoked), CertIDs SHA-1/SHA-256 alternating", String(certCount)],
      [`load generator (${driver === "wrk" ? "wrk, 1 thread" : "autocannon"}) connections × seconds`, `${connections} × ${values.seconds}`],
      ["pre-signed (no nonce): responses/s", presigned.requests.average.toFixed(0)],
      ["pre-signed: latency p50 / p99 ms", `${presigned.latency.p50} / ${presigned.latency.p99}`],
      ["pre-signed: non-2xx / errors / timeouts", `${presigned.non2xx} / ${presigned.errors} / ${presigned.timeouts}`],
      ["live (nonce, signed per request): responses/s", live.requests.average.toFixed(0)],
      ["live: latency p50 / p99 ms", `${live.latency.p50} / ${live.latency.p99}`],
      ["live: non-2xx / errors / timeouts", `${live.non2xx} / ${live.errors} / ${live.timeouts}`],
      [`raw C_Sign RSA-2048/s, responder key (${sessions} sessions)`, rawSignsPerSec.toFixed(0)],
      ["HTTP ceiling: bare node:http, fixed 1,500-byte body: responses/s", ceiling.requests.average.toFixed(0)],
      ["pre-signed / ceiling", (presigned.requests.average / ceiling.requests.average).toFixed(2)],
      [`nginx (${values["nginx-workers"]} worker(s)) serving \`hpki ocsp export\` files, RFC 5019 GET: responses/s`, staticRun.requests.average.toFixed(0)],
      ["nginx: latency p50 / p99 ms; non-2xx / errors", `${staticRun.latency.p50} / ${staticRun.latency.p99}; ${staticRun.non2xx} / ${staticRun.errors}`],
      ["nginx CPU µs per response", nginxCpuUs.toFixed(0)],
      ["export: files written", String(exported!.written)],
      ["server CPU µs per response: pre-signed / live / ceiling", `${presignedCpuUs.toFixed(0)} / ${liveCpuUs.toFixed(0)} / ${ceilingCpuUs.toFixed(0)}`],
      ["→ pre-signed responses/s per server core (1e6 / CPU µs)", (1e6 / presignedCpuUs).toFixed(0)],
      ["repo processes (hpki serve --workers)", String(workers)],
      ["repo process CPU s (set-up, both runs) / peak RSS MB", `${(usage.cpuMs / 1000).toFixed(1)} / ${usage.maxRssMb.toFixed(0)}`],
      ["load average (1 min) at the end", os.loadavg()[0].toFixed(1)],
      ["cores", String(os.availableParallelism())],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(64)} ${v}`);
    console.log(JSON.stringify({
      responsesPerSecond: Math.round(presigned.requests.average),
      p50Ms: presigned.latency.p50,
      p99Ms: presigned.latency.p99,
      liveResponsesPerSecond: Math.round(live.requests.average),
      liveP50Ms: live.latency.p50,
      liveP99Ms: live.latency.p99,
      rawHsmSignsPerSecond: Math.round(rawSignsPerSec),
      httpCeilingPerSecond: Math.round(ceiling.requests.average),
      serverCpuUsPerResponse: Math.round(presignedCpuUs),
      liveServerCpuUsPerResponse: Math.round(liveCpuUs),
      ceilingServerCpuUsPerResponse: Math.round(ceilingCpuUs),
      presignedOverCeiling: Number((presigned.requests.average / ceiling.requests.average).toFixed(2)),
      nginxExportedPerSecond: Math.round(staticRun.requests.average),
      nginxCpuUsPerResponse: Math.round(nginxCpuUs),
      loadAverage: Number(os.loadavg()[0].toFixed(1)),
      errors: presigned.errors + presigned.non2xx + live.errors + live.non2xx,
      connections,
      driver,
      workers,
      database: bench.kind,
    }));
  } finally {
    const last = child as ReturnType<typeof spawn> | undefined;
    if (last && last.exitCode === null) last.kill("SIGKILL");
    if (!dbClosed) await bench.db.destroy();
    await bench.cleanup().catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/**
 * The repository as `hpki serve --role repo --workers N` (node:cluster, Postgres only): its URL,
 * the CPU of all its processes (primary + workers, /proc) and a stop that reports it with the
 * workers' peak RSS (VmHWM, the largest).
 */
async function startCluster(env: NodeJS.ProcessEnv, workers: number) {
  if (!env.DATABASE_URL) throw new Error("--workers needs Postgres (DATABASE_URL)");
  const p = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "repo", "--port", "0", "--workers", String(workers), "--json"], { cwd: repo, env, stdio: ["ignore", "pipe", "inherit"] });
  const lines = lineReader(p.stdout!);
  const started = JSON.parse(await lines.next()) as { url: string; workers: number[] };
  const pids = [p.pid!, ...started.workers];
  const cpuMs = () => pids.reduce((t, pid) => t + processCpuMs(pid), 0);
  const peakRssMb = () => Math.max(...pids.map((pid) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024));
  return {
    url: started.url,
    cpuMs,
    stop: async () => {
      const usage = { cpuMs: cpuMs(), maxRssMb: peakRssMb() };
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await exited;
      return usage;
    },
  };
}

/** What a load run reports (autocannon's shape; wrk's output is read into it). */
interface LoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

/**
 * The load generator: wrk (C, one thread: it leaves the other core to the server, where
 * autocannon — JavaScript — needs most of one itself) when installed (`apt-get install wrk`) or
 * asked for with --driver wrk; autocannon otherwise or with --driver autocannon.
 */
function pickDriver(asked: string): "wrk" | "autocannon" {
  const hasWrk = spawnSync("wrk", ["--version"]).error === undefined;
  if (asked === "wrk" && !hasWrk) throw new Error("--driver wrk: wrk is not installed (apt-get install wrk)");
  if (asked !== "auto" && asked !== "wrk" && asked !== "autocannon") throw new Error(`--driver ${asked}: wrk | autocannon | auto`);
  return asked === "autocannon" || !hasWrk ? "autocannon" : "wrk";
}

/** POSTs each body in turn on every connection for `seconds` with the chosen load generator. */
function drive(driver: "wrk" | "autocannon", dir: string, url: string, bodies: Buffer[], seconds: number, connections: number): Promise<LoadResult> {
  if (driver === "wrk") return wrk(dir, url, bodies.map((body) => ({ path: "/ocsp", body })), seconds, connections);
  return autocannon({
    url: `${url}/ocsp`,
    connections,
    duration: seconds,
    requests: bodies.map((b) => ({ method: "POST" as const, path: "/ocsp", headers: { "content-type": "application/ocsp-request" }, body: b })),
  });
}

/**
 * wrk with a Lua script cycling through `requests`: POST of `body` to `path`, or GET of `path`
 * when there is no body (decimal escapes: LuaJIT reads them as bytes).
 */
async function wrk(dir: string, url: string, requests: { path: string; body?: Buffer }[], seconds: number, connections: number): Promise<LoadResult> {
  const script = path.join(dir, "ocsp-bench.lua");
  const lua = (b: Buffer) => `"${[...b].map((x) => `\\${x}`).join("")}"`;
  const post = requests[0].body !== undefined;
  fs.writeFileSync(script, [
    post ? 'wrk.method = "POST"' : 'wrk.method = "GET"',
    post ? 'wrk.headers["Content-Type"] = "application/ocsp-request"' : "",
    `local paths = { ${requests.map((r) => lua(Buffer.from(r.path))).join(",\n")} }`,
    post ? `local bodies = { ${requests.map((r) => lua(r.body!)).join(",\n")} }` : "local bodies = {}",
    "local i = 0",
    "request = function() i = i % #paths + 1; return wrk.format(nil, paths[i], nil, bodies[i]) end",
  ].join("\n"));
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, `${url}/ocsp`], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    p.stdout.on("data", (d: Buffer) => (text += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
  });
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const ms = (pct: string) => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    return m ? Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]] : NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: { average: num(/Requests\/sec:\s+([\d.]+)/), total: num(/(\d+) requests in/) },
    latency: { p50: ms("50"), p99: ms("99") },
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    errors: socket ? Number(socket[1]) + Number(socket[2]) + Number(socket[3]) : 0,
    timeouts: socket ? Number(socket[4]) : 0,
  };
}

/** The same OCSPRequest with requestExtensions { id-pkix-ocsp-nonce: OCTET STRING (16 random octets) }. */
function addNonce(request: Buffer): Buffer {
  const [tbsRequest] = childrenOf(request, readSingle(request));
  const [requestList] = childrenOf(request, tbsRequest);
  const nonce = explicit(2, sequence(sequence(oid(OID.idPkixOcspNonce), octetString(octetString(randomBytes(16))))));
  return sequence(sequence(request.subarray(requestList.start, requestList.end), nonce));
}

/**
 * "good" | "revoked" | "unknown" of the first SingleResponse (RFC 6960 §4.2.1), or
 * "responseStatus N" when the response is not successful.
 */
function certStatusOf(der: Buffer): string {
  const [status, bytes] = childrenOf(der, readSingle(der));
  if (der[status.end - 1] !== 0) return `responseStatus ${der[status.end - 1]}`;
  const [, response] = childrenOf(der, childrenOf(der, bytes)[0]); // ResponseBytes { type, OCTET STRING }
  const basic = Buffer.from(contentOf(der, response));
  const [tbs] = childrenOf(basic, readSingle(basic));
  const fields = childrenOf(basic, tbs);
  const responses = fields[fields[0].tag === 0xa0 ? 3 : 2];
  const [single] = childrenOf(basic, responses);
  const certStatus = childrenOf(basic, single)[1];
  return ({ 0x80: "good", 0xa1: "revoked", 0x82: "unknown" } as Record<number, string>)[certStatus.tag] ?? "?";
}

/** The child processes of `pid` (nginx's workers), from /proc. */
function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU time (ms, user + system) used so far by process `pid` (Linux /proc; 0 elsewhere). */
function processCpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime (fields 14, 15) in USER_HZ = 100
  } catch {
    return 0;
  }
}

/** Reads a stream line by line. */
function lineReader(stream: NodeJS.ReadableStream): { next(): Promise<string> } {
  let buf = "";
  const waiting: ((l: string) => void)[] = [];
  const ready: string[] = [];
  stream.setEncoding("utf8");
  stream.on("data", (d: string) => {
    buf += d;
    for (let n = buf.indexOf("\n"); n >= 0; n = buf.indexOf("\n")) {
      const line = buf.slice(0, n);
      buf = buf.slice(n + 1);
      const w = waiting.shift();
      if (w) w(line);
      else ready.push(line);
    }
  });
  return { next: () => (ready.length ? Promise.resolve(ready.shift()!) : new Promise((r) => waiting.push(r))) };
}
