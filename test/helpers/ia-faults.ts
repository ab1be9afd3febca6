/**
 * Fault-injection harness for the IA issuance worker (issue 10 §1, §2), shared by the crash tests
 * and `npm run bench -- faults`: real worker processes (test/integration/helpers/ia-worker-child.ts)
 * on the test's $HPKI_HOME (SoftHSM tokens, PIN mailers) and Postgres database, killed by the fault
 * hook (HPKI_FAULT), and the outcome read from the database and from the cards themselves.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import type { Knex } from "knex";
import type { Operator } from "../../src/pipeline/operator.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const CHILD = path.join(repo, "test/integration/helpers/ia-worker-child.ts");

/** What a worker process did: exit code or signal, and its JSON line when it finished. */
export interface WorkerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  result: { claimed: number[]; issued: number[]; failed: { requestId: number; error: string }[]; lost: number[] } | null;
}

/** Where the workers run: the IA home and database URL of the test. */
export interface WorkerSite {
  home: string;
  databaseUrl: string;
}

function runChild(site: WorkerSite, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: site.home, DATABASE_URL: site.databaseUrl, ...env };
    delete childEnv.PKCS11_MODULE;
    const p = spawn(process.execPath, ["--import", "tsx", CHILD, ...args], { cwd: repo, env: childEnv });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, out, err }));
  });
}

/**
 * Runs one IA worker process claiming up to `limit` requests as `op`, with `env` (HPKI_FAULT,
 * HPKI_FAULT_DELAY_MS, HPKI_IA_LEASE_SECONDS, HPKI_IA_HEARTBEAT_SECONDS…). Resolves when it ends.
 */
export async function runWorker(site: WorkerSite, op: Operator, limit: number, env: NodeJS.ProcessEnv = {}): Promise<WorkerRun> {
  const r = await runChild(site, ["work", JSON.stringify(op), String(limit)], env);
  const line = r.out.trim().split("\n").at(-1);
  return { code: r.code, signal: r.signal, stderr: r.err, result: r.code === 0 && line ? JSON.parse(line) : null };
}

/** A card token as the "cards" child reads it. */
export interface CardContents {
  label: string;
  unreadable?: string;
  keys?: { id: string; label: string; hasPrivateKey: boolean }[];
  certificates?: { id: string; der: string }[];
}

/** Every card token of the site with its key pairs and certificates, read by a fresh process. */
export async function readCards(site: WorkerSite): Promise<CardContents[]> {
  const r = await runChild(site, ["cards"], {});
  if (r.code !== 0) throw new Error(`reading the cards failed: ${r.err}`);
  return JSON.parse(r.out.trim().split("\n").at(-1)!);
}

/** Waits until no request is "issuing" under a live lease (a killed worker's leases have run out). */
export async function waitForLeasesToLapse(db: Knex, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await db("issuance_requests").where({ state: "issuing" }).whereRaw("lease_expires_at > now()").count({ n: "*" }).first();
    if (Number(live?.n) === 0) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for issuance leases to lapse");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The outcome of a fault run over `requestIds` (see faultOutcome). */
export interface FaultOutcome {
  requests: number;
  /** Issued, with exactly one certificate per requested profile, on one card, each written once. */
  issuedExactlyOnce: number;
  /** Failed with an error recorded: can be retried or withdrawn. */
  correctablyFailed: number;
  /** Requests with more than one card bound or more than one certificate for a profile. */
  duplicated: number;
  /** Private keys on any card without a certificate of the same CKA_ID on that card. */
  orphanedKeys: number;
  /** Certificates issued in the database that are on no card. */
  certificatesNotOnCard: number;
  /** Cards set aside for inspection. */
  cardsForInspection: number;
  /** Requests in neither issued nor failed (still issuing, …). */
  unfinished: number;
}

/**
 * Counts what the requests `requestIds` became: from the database (states, certificates by request
 * key, card_bound audit records) and from the cards (key pairs and certificates by CKA_ID).
 */
export async function faultOutcome(db: Knex, site: WorkerSite, requestIds: number[]): Promise<FaultOutcome> {
  const cards = await readCards(site);
  const reqs = await db("issuance_requests").whereIn("id", requestIds).select("id", "state", "profiles", "card_label", "last_error");
  const certs = await db("certificates").where("request_key", "like", "ir:%").select("request_key", "status", "der", "card_label", "profile");
  const onCards = new Set(cards.flatMap((c) => (c.certificates ?? []).map((x) => x.der)));
  const bound = await db("audit_log").where({ action: "issuance_request.card_bound" }).whereIn("object_id", requestIds.map(String)).select("object_id");
  const o: FaultOutcome = {
    requests: reqs.length, issuedExactlyOnce: 0, correctablyFailed: 0, duplicated: 0, orphanedKeys: 0,
    certificatesNotOnCard: 0, cardsForInspection: 0, unfinished: 0,
  };
  for (const r of reqs) {
    const mine = certs.filter((c) => new RegExp(`^ir:${r.id}:`).test(c.request_key) && c.status === "issued");
    const profiles = (typeof r.profiles === "string" ? JSON.parse(r.profiles) : r.profiles) as string[];
    const perProfile = profiles.map((p) => mine.filter((c) => c.profile === p).length);
    const cardsBound = bound.filter((b) => b.object_id === String(r.id)).length;
    if (perProfile.some((n) => n > 1) || cardsBound > 1) o.duplicated++;
    if (r.state === "issued" && perProfile.every((n) => n === 1) && cardsBound === 1 && mine.every((c) => c.card_label === r.card_label)) o.issuedExactlyOnce++;
    else if (r.state === "failed" && r.last_error) o.correctablyFailed++;
    else if (r.state !== "issued") o.unfinished++;
    o.certificatesNotOnCard += mine.filter((c) => !onCards.has(Buffer.from(c.der).toString("base64"))).length;
  }
  for (const c of cards) {
    const certIds = new Set((c.certificates ?? []).map((x) => x.id));
    o.orphanedKeys += (c.keys ?? []).filter((k) => k.hasPrivateKey && !certIds.has(k.id)).length;
  }
  o.cardsForInspection = Number((await db("cards").where({ status: "spoiled" }).count({ n: "*" }).first())?.n);
  return o;
}
