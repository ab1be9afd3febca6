/**
 * `npm run bench -- sso [--entries 1000000] [--logins 20000] [--full-logins 2000] [--concurrency 8] [--workers 1]`
 *
 * Card-login verification as the SSO center does it for every login: path validation of the
 * authentication certificate to the demo root (signature with node:crypto, validity, key usage,
 * policy, revocation lookup of the end entity and of its issuing CA), identity extraction, and the
 * check of the card's signature over the login challenge — with N revoked serials of the issuing
 * CA loaded into the revocation index from the database (the same CardLoginVerifier the server
 * uses). The challenges are signed beforehand by a SoftHSM card (signing is the client's cost).
 * Reports verifications/s on one thread and p50/p99 latency for a certificate seen for the first
 * time (everything from the DER) and for the re-check of a session's certificate at each later use
 * (its parse, names and signature remembered; validity and revocation checked), both with the
 * challenge signature check, the time to load the index (full and
 * incremental read), the bytes the index holds and, for comparison, the heap a Set of hex strings
 * takes for the same serials.
 *
 * Then full logins per second through `hpki serve --role sso --workers W` on the same database
 * (sso-logins.ts): authorize → card challenge signed by the person's SoftHSM card → token exchange →
 * ID token verified by openid-client, `concurrency` people at once (one card each), with p50/p99
 * and the CPU per login of the SSO processes, PostgreSQL and the load (--full-logins 0 skips it).
 *
 * Database: DATABASE_URL when set, else the managed PostgreSQL cluster under a temp HPKI_HOME.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { loadConfig } from "../../src/config.ts";
import { issueOntoCard } from "../../src/ia/cards.ts";
import { openIaContext } from "../../src/ia/context.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { signLoginChallenge } from "../../src/sso/card-agent.ts";
import { verifyChallengeSignature } from "../../src/status/challenge-signature.ts";
import { CardLoginVerifier } from "../../src/status/certificate-verifier.ts";
import type { Db } from "../../src/store/db.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { openBenchDatabase } from "./bench-db.ts";
import { opensslRsa2048SignsPerSecond } from "./openssl-speed.ts";
import { benchBareProvider, benchFullLogins, type FullLoginResult } from "./sso-logins.ts";

const by = { actor: "bench", role: "ia" };
const CA = "demo-auth-ca";
const CHALLENGES = 64;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: {
    entries: { type: "string", default: "1000000" }, logins: { type: "string", default: "20000" },
    "full-logins": { type: "string", default: "2000" }, concurrency: { type: "string", default: "8" }, workers: { type: "string", default: "1" },
  } });
  const fullLogins = Number(values["full-logins"]);
  const concurrency = Number(values.concurrency);
  const workers = Number(values.workers);
  if (!Number.isInteger(fullLogins) || fullLogins < 0 || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(workers) || workers < 1) {
    throw new Error("--full-logins ≥ 0, --concurrency ≥ 1 and --workers ≥ 1 must be integers");
  }
  const entries = Number(values.entries);
  const logins = Number(values.logins);
  if (!Number.isInteger(entries) || entries < 0 || !Number.isInteger(logins) || logins < 1) throw new Error("--entries ≥ 0 and --logins ≥ 1 must be integers");
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-sso-"));
  const cfg = loadConfig({ ...process.env, HPKI_HOME: home, PKCS11_MODULE: "", HPKI_HSM_PIN: "" });
  const bench = await openBenchDatabase(cfg);
  try {
    const ctx = await openIaContext(cfg, { db: bench.db, poolSize: 2 });
    await runDemoCeremony(ctx, by);
    // One card per person logging in at once (the full-login lanes); the first also signs the challenges below.
    const cards = await ctx.cards.provisionBlankCards(fullLogins > 0 ? concurrency : 1);
    const profile = ctx.policies.profiles.get("auth-person")!;
    for (const [i, card] of cards.entries()) {
      const subscriberId = `BENCH${String(i + 1).padStart(4, "0")}`;
      const subject = parseSubscriberSubject({ hcRole: "Medical Doctor", subscriberId, name: { latin: "Taro Yamada", kanji: "山田　太郎" } }, profile, ctx.policies.hcRoles);
      await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: card.label, pin: card.userPin, profile: "auth-person", subject }, by);
    }
    const blank = cards[0];
    const signed = [];
    for (let i = 0; i < CHALLENGES; i++) {
      const text = `HPKI-SSO-LOGIN-2\norigin=https://sso.bench\nissuer=https://sso.bench/sso\nclient_id=bench\nclient_name=Bench\ninteraction=bench-${i}\nnonce=${i}\nexpires=2030-01-01T00:00:00.000Z`;
      const s = await signLoginChallenge(ctx.cards, blank.label, blank.userPin, text);
      signed.push({ text, cert: Buffer.from(s.certificate, "base64"), signature: Buffer.from(s.signature, "base64") });
    }
    ctx.pool.close();

    const t0 = Date.now();
    if (entries > 0) await insertRevocations(bench.db, entries);
    const insertSeconds = (Date.now() - t0) / 1000;

    gc();
    const before = process.memoryUsage();
    const t1 = performance.now();
    // First, every verification from the DER (a login with a certificate this process has not seen).
    const verifier = await CardLoginVerifier.open({ db: bench.db, refreshIntervalMs: 0, maxStalenessMs: 3600_000, rememberCertificates: false });
    const loadMs = performance.now() - t1;
    gc();
    const index = verifier.index.footprint();
    const afterLoad = process.memoryUsage();
    // The digests live in ArrayBuffers (outside the JS heap): count both.
    const heldIndex = afterLoad.heapUsed - before.heapUsed + (afterLoad.arrayBuffers - before.arrayBuffers);
    const t2 = performance.now();
    await verifier.refresh();
    const incrementalMs = performance.now() - t2;

    const { seconds, cpuSeconds, pct } = await measureVerifications(verifier, signed, logins);
    verifier.close();
    // Then as a session's certificate is checked again at each use (parse, names and signature remembered).
    const rechecking = await CardLoginVerifier.open({ db: bench.db, refreshIntervalMs: 0, maxStalenessMs: 3600_000 });
    const recheck = await measureVerifications(rechecking, signed, logins);
    rechecking.close();

    // Comparison: the same serials as a Set of hex strings.
    gc();
    const hb = process.memoryUsage().heapUsed;
    const set = new Set<string>();
    let after = 0;
    for (;;) {
      const rows = await bench.db("revocations").where("id", ">", after).orderBy("id").limit(50_000).select("id", "serial_hex");
      if (rows.length === 0) break;
      for (const r of rows) set.add(r.serial_hex as string);
      after = Number(rows[rows.length - 1].id);
    }
    gc();
    const setHeap = process.memoryUsage().heapUsed - hb;
    const setSize = set.size;
    set.clear();

    // The machine's speed just before and after the logins (OpenSSL RSA-2048 signatures/s, one process).
    const speedBefore = fullLogins > 0 ? opensslRsa2048SignsPerSecond() : 0;
    const full: FullLoginResult | undefined = fullLogins > 0
      ? await benchFullLogins(ctx, cards.map((c) => ({ label: c.label, pin: c.userPin })), { count: fullLogins, concurrency, warmup: 50, workers, home, databaseUrl: bench.url, indexEntries: index.entries })
      : undefined;
    // The library's own cost for the same flow (in-memory storage, no card), in this run.
    const bare = fullLogins > 0 ? await benchBareProvider(fullLogins, concurrency, 50) : undefined;
    const opensslSignsPerSecond = fullLogins > 0 ? (speedBefore + opensslRsa2048SignsPerSecond()) / 2 : 0;
    // Server CPU per login in OpenSSL RSA-2048 signatures of this run: comparable across runs and machines.
    const inSignatures = (f: FullLoginResult) => ((f.ssoCpuMs + (f.postgresCpuMs ?? 0)) / 1000) * opensslSignsPerSecond;

    const mb = (b: number) => (b / 1048576).toFixed(1);
    const rows: [string, string][] = [
      ["database", bench.kind],
      ["revoked serials in the index (issuing CA)", String(index.entries)],
      ["insert revocations (s)", insertSeconds.toFixed(1)],
      ["index load, full read (ms)", loadMs.toFixed(0)],
      ["index refresh, incremental (ms)", incrementalMs.toFixed(1)],
      ["index held: digests (MB)", mb(index.bytes)],
      ["index: memory growth while loading, heap + ArrayBuffers (MB)", mb(heldIndex)],
      ["for comparison: Set of hex strings, heap (MB)", `${mb(setHeap)} (${setSize} entries)`],
      ["verifications", String(logins)],
      ["verifications/s (1 thread, wall clock)", (logins / seconds).toFixed(0)],
      ["verifications per CPU-second (1 thread)", (logins / cpuSeconds).toFixed(0)],
      ["latency p50 / p99 (ms)", `${pct(0.5).toFixed(3)} / ${pct(0.99).toFixed(3)}`],
      ["re-check of a session's certificate: verifications/s (1 thread)", (logins / recheck.seconds).toFixed(0)],
      ["re-check: latency p50 / p99 (ms)", `${recheck.pct(0.5).toFixed(3)} / ${recheck.pct(0.99).toFixed(3)}`],
      ...(full ? [
        ["full logins (authorize → card → token → ID token verified)", `${full.logins} (${full.concurrency} people at once, index ${full.indexEntries} entries)`],
        ["SSO processes (hpki serve --role sso --workers)", String(full.ssoProcesses)],
        ["full logins/s, wall clock (SSO, PostgreSQL and the load on this machine)", full.loginsPerSecond.toFixed(0)],
        ["full login latency p50 / p99 (ms)", `${full.p50Ms.toFixed(1)} / ${full.p99Ms.toFixed(1)}`],
        ["CPU per login: SSO processes (ms)", full.ssoCpuMs.toFixed(2)],
        ["CPU per login: PostgreSQL (ms)", full.postgresCpuMs === undefined ? "n/a (not on this machine)" : full.postgresCpuMs.toFixed(2)],
        ["CPU per login: load — relying party, browsers, cards (ms)", full.loadCpuMs.toFixed(2)],
        ...(full.postgresCpuMs === undefined ? [] : [[`server capacity on ${os.availableParallelism()} cores: cores ÷ (SSO + PostgreSQL CPU) (logins/s)`, capacity(full).toFixed(0)]]),
        ["reference: oidc-provider alone, same flow (in-memory storage, no card): CPU per login (ms), logins/s", `${bare!.cpuMs.toFixed(2)}, ${bare!.loginsPerSecond.toFixed(0)}`],
        ["ratio: SSO processes' CPU per login ÷ oidc-provider alone", (full.ssoCpuMs / bare!.cpuMs).toFixed(2)],
        ["reference: openssl speed rsa2048, signatures/s (1 process, before and after)", opensslSignsPerSecond.toFixed(0)],
        ["server CPU per login (SSO + PostgreSQL) in those signatures (target: ≤ 10 ms CPU, 200/s on 2 cores)", `${inSignatures(full).toFixed(1)} (≤ ${((10 / 1000) * opensslSignsPerSecond).toFixed(1)})`],
      ] as [string, string][] : []),
      ["cores available / load average (1 min)", `${os.availableParallelism()} / ${os.loadavg()[0].toFixed(1)}`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`);
    process.stdout.write(`${JSON.stringify({
      bench: "sso", database: bench.kind, revokedEntries: index.entries, verifications: logins,
      verificationsPerSecond: Math.round(logins / seconds), verificationsPerCpuSecond: Math.round(logins / cpuSeconds), p50Ms: round(pct(0.5)), p99Ms: round(pct(0.99)),
      recheckPerSecond: Math.round(logins / recheck.seconds), recheckP50Ms: round(recheck.pct(0.5)), recheckP99Ms: round(recheck.pct(0.99)),
      indexBytes: index.bytes, indexMemoryGrowthBytes: heldIndex, hexStringSetHeapBytes: setHeap,
      indexLoadMs: Math.round(loadMs), incrementalRefreshMs: round(incrementalMs), cores: os.availableParallelism(), loadAverage: round(os.loadavg()[0]),
      ...(full ? { fullLogins: full.logins, fullLoginConcurrency: full.concurrency, fullLoginsPerSecond: round(full.loginsPerSecond), fullLoginP50Ms: round(full.p50Ms), fullLoginP99Ms: round(full.p99Ms),
        ssoProcesses: full.ssoProcesses, ssoCpuMsPerLogin: round(full.ssoCpuMs), postgresCpuMsPerLogin: full.postgresCpuMs === undefined ? null : round(full.postgresCpuMs),
        loadCpuMsPerLogin: round(full.loadCpuMs), serverCapacityLoginsPerSecond: full.postgresCpuMs === undefined ? null : Math.round(capacity(full)),
        bareProviderCpuMsPerLogin: round(bare!.cpuMs), bareProviderLoginsPerSecond: round(bare!.loginsPerSecond),
        opensslRsa2048SignsPerSecond: Math.round(opensslSignsPerSecond), serverCpuPerLoginInOpensslSignatures: round(inSignatures(full)) } : {}),
    })}\n`);
  } finally {
    await bench.cleanup();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** `n` verifications one at a time after a warm-up: wall and CPU seconds, latency percentiles (ms). */
async function measureVerifications(verifier: CardLoginVerifier, signed: { text: string; cert: Buffer; signature: Buffer }[], n: number): Promise<{ seconds: number; cpuSeconds: number; pct: (p: number) => number }> {
  for (let i = 0; i < 500; i++) await verifyOne(verifier, signed[i % signed.length]);
  const lat = new Float64Array(n);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const a = performance.now();
    await verifyOne(verifier, signed[i % signed.length]);
    lat[i] = performance.now() - a;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort();
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, pct: (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] };
}

/** One login's checks; verify() resolves at once here (the index is current), so the await costs one microtask. */
async function verifyOne(verifier: CardLoginVerifier, s: { text: string; cert: Buffer; signature: Buffer }): Promise<void> {
  const { path } = await verifier.verify(s.cert);
  verifyChallengeSignature(path.leaf.spki, s.text, s.signature);
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** Logins per second this machine's cores serve at the server's CPU per login (SSO + PostgreSQL). */
const capacity = (f: FullLoginResult) => (os.availableParallelism() * 1000) / (f.ssoCpuMs + (f.postgresCpuMs ?? 0));

/** N revoked certificates of the auth CA with random 16-byte serials, by set-based SQL (as the crl bench). */
async function insertRevocations(db: Db, n: number): Promise<void> {
  const ca = await db("certificate_authorities").where({ name: CA }).first("id");
  await db.raw(`INSERT INTO certificates (ca_id, serial_hex, profile, status, tbs, tbs_sha256, der, subject, not_before, not_after)
    SELECT ?, upper(encode(s, 'hex')), 'auth-person', 'issued', '\\x00', '\\x00', '\\x00', '{}', now() - interval '1 day', now() + interval '5 years'
    FROM (SELECT set_byte(b, 0, get_byte(b, 0) % 127 + 1) AS s
          FROM (SELECT decode(md5(random()::text || g::text), 'hex') AS b FROM generate_series(1, ?) g) r) x`, [ca.id, n]);
  await db.raw(`INSERT INTO revocations (certificate_id, ca_id, serial_hex, serial, reason, revoked_at, actor, not_after)
    SELECT id, ca_id, serial_hex, decode(serial_hex, 'hex'), 'keyCompromise', now() - interval '1 day', 'bench', not_after
    FROM certificates WHERE ca_id = ? AND der = '\\x00'`, [ca.id]);
  // Both tables vacuumed now, so autovacuum does not run during the logins (its CPU would count as theirs).
  await db.raw("VACUUM ANALYZE certificates");
  await db.raw("VACUUM ANALYZE revocations");
}
