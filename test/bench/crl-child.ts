/**
 * Child process of `npm run bench -- crl`: `node --import tsx test/bench/crl-child.ts CA OUT`.
 * Opens the IA context from the environment (HPKI_HOME, DATABASE_URL), runs generateCrl for CA,
 * writes the DER to OUT and prints one JSON line: seconds (generateCrl + file write), entries,
 * bytes, crlNumber, maxRssMb (process.resourceUsage, the whole process).
 */
import fs from "node:fs";
import { loadConfig } from "../../src/config.ts";
import { openIaContext } from "../../src/ia/context.ts";
import { generateCrl, loadCrlPolicy } from "../../src/ia/crl-generation.ts";

const [caName, out] = process.argv.slice(2);
const ctx = await openIaContext(loadConfig(), { poolSize: 1 });
try {
  const policy = loadCrlPolicy();
  const t0 = process.hrtime.bigint();
  const crl = await generateCrl({ db: ctx.db, keys: ctx.keys, policy }, caName, { actor: "bench", role: "ia" });
  fs.writeFileSync(out, crl.der);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, entries: crl.entries, bytes: crl.der.length, crlNumber: crl.crlNumber, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
} finally {
  await ctx.close();
}
