/**
 * An IA issuance worker in its own process, for crash and concurrency tests (issue 10 §1, §2):
 * `node --import tsx ia-worker-child.ts work '<operator JSON>' <limit>` opens the IA context from
 * the environment (HPKI_HOME, DATABASE_URL, HPKI_IA_LEASE_SECONDS, HPKI_FAULT…), claims and
 * personalises up to <limit> requests and prints one JSON line {claimed, issued, failed, lost}
 * (request ids). `… cards` prints every card token with its key pairs and certificates
 * ({label, keys: [{id, label, hasPrivateKey}], certificates: [{id, der}]}, hex / base64), read
 * with the PIN from its mailer — a fresh process, so it sees the tokens as they are on disk.
 */
import { loadConfig } from "../../../src/config.ts";
import { claimForPersonalisation, personaliseClaimed, readPinMailer } from "../../../src/ia/card-personalisation.ts";
import { pinMailerPath } from "../../../src/ia/cards.ts";
import { openIaContext } from "../../../src/ia/context.ts";
import type { Operator } from "../../../src/pipeline/operator.ts";
import fs from "node:fs";

const [mode, ...args] = process.argv.slice(2);
const ctx = await openIaContext(loadConfig(), { poolSize: 2 });
try {
  if (mode === "work") {
    const op = JSON.parse(args[0]) as Operator;
    const claims = await claimForPersonalisation(ctx, op, { limit: Number(args[1]) });
    process.stderr.write(`claimed ${claims.map((c) => c.request.id).join(",")}\n`);
    const run = await personaliseClaimed(ctx, op, claims);
    process.stdout.write(`${JSON.stringify({
      claimed: claims.map((c) => Number(c.request.id)),
      issued: run.issued.map((c) => c.requestId),
      failed: run.failed.filter((f) => !f.lost).map((f) => ({ requestId: f.requestId, error: f.error })),
      lost: run.failed.filter((f) => f.lost).map((f) => f.requestId),
    })}\n`);
  } else if (mode === "cards") {
    const out = [];
    for (const label of ctx.cards.listCards()) {
      const mailer = pinMailerPath(ctx.cfg.mailDir, label);
      if (!fs.existsSync(mailer)) {
        out.push({ label, unreadable: "no PIN mailer" });
        continue;
      }
      const card = await ctx.cards.openCard(label, readPinMailer(mailer));
      try {
        const keys = (await card.keyPairs()).map((k) => ({ id: k.id.toString("hex"), label: k.label, hasPrivateKey: k.hasPrivateKey }));
        const certificates = (await card.listCertificates()).map((c) => ({ id: c.id.toString("hex"), der: c.der.toString("base64") }));
        out.push({ label, keys, certificates });
      } finally {
        card.close();
      }
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await ctx.close();
}
