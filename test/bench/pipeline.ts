/**
 * `npm run bench -- pipeline [--count 1000] [--concurrency 8] [--batch 100]`
 *
 * Pushes `count` applications through the registration pipeline's service layer — LRA intake
 * (form validation, licence register check), three scanned documents, identity check, LRA
 * approval into the open batch, batch sign-off and forwarding, RA receipt of the batch, RA
 * approval (licence re-check, subscriber id), issuance request and its second-person approval —
 * `concurrency` applications at a time, in LRA batches of `batch`. Every step is its own
 * transaction with its audit record, exactly as the consoles call them.
 *
 * Prints applications/s and database round trips per application (every statement knex sends,
 * BEGIN/COMMIT included), and, measured in the same run on the same connection pool, the raw
 * round-trip rate (sequential `SELECT 1`) as the baseline: the pipeline is round-trip bound.
 * Database: DATABASE_URL when set, else the managed PostgreSQL cluster under a temp HPKI_HOME.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config.ts";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { approveIssuanceRequest, createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { forwardLraBatch, receiveLraBatch } from "../../src/pipeline/lra-batches.ts";
import type { Operator } from "../../src/pipeline/operator.ts";
import { loadPolicies } from "../../src/policies.ts";
import { createTestOperator } from "../helpers/operators.ts";
import { applicationInputFor, identityCheckInput, requiredUploads, type RegisterRow } from "../helpers/pipeline.ts";
import { openBenchDatabase } from "./bench-db.ts";

const FAMILY = [["佐藤", "サトウ"], ["鈴木", "スズキ"], ["髙橋", "タカハシ"], ["田中", "タナカ"], ["伊藤", "イトウ"], ["渡辺", "ワタナベ"], ["山本", "ヤマモト"], ["中村", "ナカムラ"]];
const GIVEN = [["太郎", "タロウ"], ["花子", "ハナコ"], ["誠", "マコト"], ["美咲", "ミサキ"], ["翔太", "ショウタ"], ["陽菜", "ヒナ"], ["健一", "ケンイチ"]];
const QUALIFICATIONS = ["Medical Doctor", "Medical Doctor", "Medical Doctor", "Pharmacist", "Dentist"];

/** A synthetic licence register of `n` people (distinct registration numbers). */
function syntheticRegister(n: number): RegisterRow[] {
  return Array.from({ length: n }, (_, i) => {
    const [fk, fr] = FAMILY[i % FAMILY.length];
    const [gk, gr] = GIVEN[Math.floor(i / FAMILY.length) % GIVEN.length];
    const year = 1950 + (i % 45);
    return {
      qualification: QUALIFICATIONS[i % QUALIFICATIONS.length],
      registration_number: String(500000 + i),
      registration_date: `${year + 26}-04-${String(1 + (i % 28)).padStart(2, "0")}`,
      name_kanji: `${fk}\u3000${gk}`,
      name_kana: `${fr}\u3000${gr}`,
      birth_date: `${year}-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}`,
    };
  });
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pooled<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { count: { type: "string", default: "1000" }, concurrency: { type: "string", default: "8" }, batch: { type: "string", default: "100" } },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const batchSize = Number(values.batch);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-bench-pipeline-"));
  const cfg = loadConfig({ ...process.env, HPKI_HOME: home });
  const bench = await openBenchDatabase(cfg);
  const db = bench.db;
  const log = (s: string) => process.stdout.write(`${s}\n`);
  try {
    const hcRoles = loadPolicies().hcRoles;
    const register = syntheticRegister(count);
    const header = "qualification,registration_number,registration_date,name_kanji,name_kana,birth_date";
    await importLicenceRegister(db, [header, ...register.map((r) => Object.values(r).join(","))].join("\n"), { actor: "bench", role: "ra" });
    const ops: Operator[] = [];
    for (const role of ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver"] as const) {
      ops.push((await createTestOperator(db, role, { lraCode: "13-901" })).operator);
    }
    const [reviewer, manager, officer, approver] = ops;

    // Baseline: sequential round trips on the same pool.
    const rtN = 2000;
    let t0 = performance.now();
    for (let i = 0; i < rtN; i++) await db.raw("SELECT 1");
    const rawRoundTripsPerSec = rtN / ((performance.now() - t0) / 1000);

    let queries = 0;
    db.on("query", () => queries++);
    const stage = { intake: 0, forward: 0, ra: 0 };
    const uploads = requiredUploads("bench"); // same bytes for everyone: sniffing and hashing still run per upload
    t0 = performance.now();
    for (let start = 0; start < count; start += batchSize) {
      const chunk = register.slice(start, start + batchSize).map((r, k) => ({ r, i: start + k }));
      let t = performance.now();
      const ids: number[] = [];
      await pooled(chunk, concurrency, async ({ r, i }) => {
        const app = await submitApplication(db, reviewer, hcRoles, applicationInputFor(r, i), { idempotencyKey: `bench-${i}` });
        const id = Number(app.id);
        for (const u of uploads) await addDocument(db, reviewer, id, u);
        await recordIdentityCheck(db, reviewer, id, identityCheckInput());
        await decideApplication(db, reviewer, id, "lra_approve");
        ids.push(id);
      });
      stage.intake += performance.now() - t;
      t = performance.now();
      const batchId = Number((await db("applications").where({ id: ids[0] }).first("lra_batch_id")).lra_batch_id);
      await forwardLraBatch(db, manager, batchId);
      await receiveLraBatch(db, officer, batchId);
      stage.forward += performance.now() - t;
      t = performance.now();
      await pooled(ids, concurrency, async (id) => {
        await decideApplication(db, officer, id, "ra_approve");
        const ir = await createIssuanceRequest(db, officer, id);
        await approveIssuanceRequest(db, approver, Number(ir.id));
      });
      stage.ra += performance.now() - t;
    }
    const seconds = (performance.now() - t0) / 1000;
    const done = Number((await db("issuance_requests").where({ state: "approved" }).count({ n: "*" }))[0].n);
    if (done !== count) throw new Error(`expected ${count} approved issuance requests, found ${done}`);

    const perApp = queries / count;
    const rows = [
      ["database", bench.kind],
      ["applications", String(count)],
      ["concurrency / LRA batch", `${concurrency} / ${batchSize}`],
      ["seconds", seconds.toFixed(2)],
      ["applications/s", (count / seconds).toFixed(1)],
      ["  intake + LRA review (s)", (stage.intake / 1000).toFixed(2)],
      ["  batch sign-off + RA receipt (s)", (stage.forward / 1000).toFixed(2)],
      ["  RA approval + issuance request + 2nd approval (s)", (stage.ra / 1000).toFixed(2)],
      ["round trips per application", perApp.toFixed(1)],
      ["raw round trips/s (SELECT 1, sequential)", rawRoundTripsPerSec.toFixed(0)],
      ["pipeline round trips/s (all workers)", (queries / seconds).toFixed(0)],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) log(`${k.padEnd(w)}  ${v}`);
    log(JSON.stringify({
      bench: "pipeline", database: bench.kind, applications: count, concurrency, seconds: Number(seconds.toFixed(3)),
      applicationsPerSecond: Number((count / seconds).toFixed(1)), roundTripsPerApplication: Number(perApp.toFixed(1)),
      rawRoundTripsPerSecond: Math.round(rawRoundTripsPerSec), pipelineRoundTripsPerSecond: Math.round(queries / seconds),
    }));
  } finally {
    await bench.cleanup();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
