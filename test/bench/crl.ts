/**
 * `npm run bench -- crl [--entries 100000]`
 *
 * Puts N revoked certificates (random 16-byte serials, a reasonCode on every entry) into the
 * database with set-based SQL, then builds the issuing CA's CRL through our path — the same
 * generateCrl as `hpki crl generate`: keyset-paged rows → streaming DER encoder → one HSM
 * signature → CRL row + audit → DER file — in a child process, so its peak RSS is that of the
 * CRL work alone (the database server is another process). In the same run
 * it writes an index.txt for the same set and has `openssl ca -gencrl` (RSA-2048 software key)
 * build that CRL. Both children are measured by /usr/bin/time -v when installed (wall seconds,
 * maximum RSS), else by their own reports / polling /proc. ratio = our seconds / OpenSSL's.
 *
 * Database: DATABASE_URL when set, else the PostgreSQL cluster hpki manages under the temp
 * HPKI_HOME (the default set-up, fsync on).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config.ts";
import { openIaContext } from "../../src/ia/context.ts";
import type { Db } from "../../src/store/db.ts";
import { runDemoCeremony } from "../helpers/ia.ts";
import { openBenchDatabase } from "./bench-db.ts";

const by = { actor: "bench", role: "ia" };
const CA = "demo-sign-ca";
/** Reasons both we and `openssl ca` write (OpenSSL's index.txt knows no privilegeWithdrawn). */
const REASONS = ["keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"];
const TIME = fs.existsSync("/usr/bin/time") ? "/usr/bin/time" : null;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { entries: { type: "string", default: "100000" } } });
  const entries = Number(values.entries);
  if (!Number.isInteger(entries) || entries < 1) throw new Error("--entries must be a positive integer");
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-crl-"));
  const cfg = loadConfig({ ...process.env, HPKI_HOME: home, PKCS11_MODULE: "", HPKI_HSM_PIN: "" });
  const bench = await openBenchDatabase(cfg);
  const dbUrl = bench.url;
  try {
    const ctx = await openIaContext(cfg, { db: bench.db, poolSize: 2 });
    await runDemoCeremony(ctx, by);
    ctx.pool.close();

    const t0 = Date.now();
    await insertRevocations(bench.db, entries);
    // Steady state: autovacuum would have run on revocations accumulated over months (hint bits
    // set, visibility map current). Without it the first scan pays for the bulk insert.
    await bench.db.raw("VACUUM ANALYZE revocations");
    const insertSeconds = (Date.now() - t0) / 1000;
    const opensslDir = path.join(home, "openssl");
    const t1 = Date.now();
    await writeOpensslCa(bench.db, opensslDir);
    const indexSeconds = (Date.now() - t1) / 1000;

    const ourOut = path.join(home, "ours.crl");
    const ours = await measure(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "crl-child.ts"), CA, ourOut],
      { ...process.env, HPKI_HOME: home, DATABASE_URL: dbUrl, PKCS11_MODULE: "", HPKI_HSM_PIN: "" }, process.cwd());
    if (ours.code !== 0) throw new Error(`CRL child failed: ${ours.stderr}`);
    const child = JSON.parse(ours.stdout.trim().split("\n").at(-1)!) as { seconds: number; entries: number; bytes: number; maxRssMb: number; crlNumber: number };
    const theirs = await measure("openssl", ["ca", "-gencrl", "-config", "openssl.cnf", "-out", "openssl.crl"], process.env, opensslDir);
    const verified = await measure("openssl", ["crl", "-inform", "der", "-in", ourOut, "-noout", "-verify", "-CAfile", path.join(cfg.repoDir, `${CA}.pem`)], process.env, home);

    // Our seconds: generateCrl inside the child (rows → signed CRL stored and written), as the
    // child timed it; process start and context opening are in its wall time, shown apart.
    const seconds = child.seconds;
    const peakRssMb = ours.maxRssMb ?? child.maxRssMb;
    const ratio = seconds / theirs.seconds;
    const rows: [string, string][] = [
      ["database", bench.kind],
      ["entries (ours / expected)", `${child.entries} / ${entries}`],
      ["insert revocations (s)", insertSeconds.toFixed(1)],
      ["write index.txt (s)", indexSeconds.toFixed(1)],
      ["ours: generateCrl seconds", seconds.toFixed(2)],
      ["ours: child wall seconds (incl. node start, ctx open)", ours.seconds.toFixed(2)],
      ["ours: peak RSS MB (whole child process)", peakRssMb.toFixed(0)],
      ["ours: CRL bytes (DER)", String(child.bytes)],
      ["ours: openssl crl -verify", verified.code === 0 ? "OK" : `FAILED: ${verified.stderr.trim()}`],
      ["openssl ca -gencrl: seconds", theirs.seconds.toFixed(2)],
      ["openssl ca -gencrl: peak RSS MB", (theirs.maxRssMb ?? NaN).toFixed(0)],
      ["openssl CRL bytes (PEM)", String(fs.statSync(path.join(opensslDir, "openssl.crl")).size)],
      ["ratio (ours / openssl seconds)", ratio.toFixed(3)],
      ["RSS measured by", TIME ? "/usr/bin/time -v" : "/proc polling + process.resourceUsage"],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(56)} ${v}`);
    if (theirs.code !== 0) throw new Error(`openssl ca -gencrl failed: ${theirs.stderr}`);
    console.log(JSON.stringify({
      entries: child.entries,
      seconds: Number(seconds.toFixed(3)),
      peakRssMb: Math.round(peakRssMb),
      opensslSeconds: Number(theirs.seconds.toFixed(3)),
      opensslPeakRssMb: Math.round(theirs.maxRssMb ?? 0),
      ratio: Number(ratio.toFixed(3)),
    }));
  } finally {
    await bench.cleanup();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** The URL of the bench's own Postgres database (same server as DATABASE_URL), for the child. */
/**
 * N issued-certificate rows under the sign CA and one revocation each, in two set-based
 * statements: md5 of random() gives 16 bytes; the first octet is forced into 1..127 so the
 * serial is positive, 16 octets, like newSerialNumber's.
 */
async function insertRevocations(db: Db, n: number): Promise<void> {
  const ca = await db("certificate_authorities").where({ name: CA }).first("id");
  const reasons = `ARRAY[${REASONS.map((r) => `'${r}'`).join(",")}]`;
  await db.raw(`INSERT INTO certificates (ca_id, serial_hex, profile, status, tbs, tbs_sha256, der, subject, not_before, not_after)
    SELECT ?, upper(encode(s, 'hex')), 'sign', 'issued', '\\x00', '\\x00', '\\x00', '{}', now() - interval '1 day', now() + interval '5 years'
    FROM (SELECT set_byte(b, 0, get_byte(b, 0) % 127 + 1) AS s
          FROM (SELECT decode(md5(random()::text || g::text), 'hex') AS b FROM generate_series(1, ?) g) r) x`, [ca.id, n]);
  await db.raw(`INSERT INTO revocations (certificate_id, ca_id, serial_hex, serial, reason, revoked_at, actor, not_after)
    SELECT id, ca_id, serial_hex, decode(serial_hex, 'hex'), (${reasons})[1 + (id % ${REASONS.length})],
      date_trunc('second', now() - random() * interval '365 days'), 'bench', not_after
    FROM certificates WHERE ca_id = ?`, [ca.id]);
}

/** openssl.cnf, a software RSA-2048 CA and index.txt (R lines) for the same revocations. */
async function writeOpensslCa(db: Db, dir: string): Promise<void> {
  fs.mkdirSync(dir);
  await measure("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=bench openssl CA", "-days", "30"], process.env, dir);
  fs.writeFileSync(path.join(dir, "openssl.cnf"), [
    "[ ca ]", "default_ca = bench", "[ bench ]", "database = index.txt", "crlnumber = crlnumber", "certificate = ca.pem",
    "private_key = ca.key", "default_md = sha256", "default_crl_hours = 96", "crl_extensions = crl_ext",
    "[ crl_ext ]", "authorityKeyIdentifier = keyid:always", "",
  ].join("\n"));
  fs.writeFileSync(path.join(dir, "crlnumber"), "01\n");
  fs.writeFileSync(path.join(dir, "index.txt.attr"), "unique_subject = no\n");
  const out = fs.openSync(path.join(dir, "index.txt"), "w");
  const utc = (d: Date) => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, "$1$2$3$4$5$6Z");
  try {
    let after = 0;
    for (;;) {
      const rows = await db("revocations").where("id", ">", after).orderBy("id").limit(50_000).select("id", "serial_hex", "revoked_at", "reason", "not_after");
      if (rows.length === 0) break;
      fs.writeSync(out, rows.map((r) => `R\t${utc(new Date(r.not_after))}\t${utc(new Date(r.revoked_at))},${r.reason}\t${r.serial_hex}\tunknown\t/CN=bench\n`).join(""));
      after = Number(rows[rows.length - 1].id);
    }
  } finally {
    fs.closeSync(out);
  }
}

interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  maxRssMb: number | null;
}

/** Runs a child under /usr/bin/time -v (or polls /proc/<pid>/status VmHWM): wall seconds and peak RSS. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = TIME ? spawn(TIME, ["-v", cmd, ...args], { env, cwd }) : spawn(cmd, args, { env, cwd });
    let stdout = "";
    let stderr = "";
    let polledKb = 0;
    const poll = TIME ? null : setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p.pid}/status`, "utf8"));
        if (m) polledKb = Math.max(polledKb, Number(m[1]));
      } catch {
        // exited
      }
    }, 20);
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => {
      if (poll) clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const kb = m ? Number(m[1]) : polledKb;
      resolve({ code, stdout, stderr, seconds, maxRssMb: kb ? kb / 1024 : null });
    });
  });
}
