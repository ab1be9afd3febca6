/**
 * `hpki ocsp init|refresh` and `hpki crl schedule`: the IA's side of certificate status — delegated
 * responder certificates, pre-signed OCSP responses, and the status scheduler in the foreground.
 */
import type { Command } from "commander";
import { loadCrlPolicy } from "../ia/crl-generation.ts";
import { CrlScheduler } from "../ia/crl-scheduler.ts";
import { ensureOcspResponders } from "../ia/ocsp-responders.ts";
import { exportOcspResponses, registerExportDir, unregisterExportDir } from "../ocsp/export.ts";
import { OcspPresigner } from "../ocsp/presigner.ts";
import { loadOcspPolicy } from "../ocsp/responders.ts";
import { cliActor, table, withIa } from "./run.ts";

export function registerOcspCommands(program: Command): void {
  const ocsp = program.command("ocsp").description("OCSP responder certificates and pre-signed responses (IA)");
  ocsp.command("init")
    .description("issue a delegated OCSP responder certificate for every issuing CA that lacks a current one (idempotent), then pre-sign responses")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const policy = loadOcspPolicy();
        const keys = ctx.ocspKeys().keys;
        const made = await ensureOcspResponders({ db: ctx.db, caKeys: ctx.keys, ocspKeys: keys, policy }, cliActor());
        const signed = await new OcspPresigner({ db: ctx.db, keys, policy }).refresh(cliActor());
        const json = {
          responders: made.map((m) => ({ caName: m.caName, result: m.result, keyLabel: m.keyLabel, serialHex: m.serialHex, notBefore: m.notBefore.toISOString(), notAfter: m.notAfter.toISOString() })),
          presigned: signed.total,
        };
        const text = table([["CA", "result", "responder serial", "key label", "notAfter"], ...json.responders.map((r) => [r.caName, r.result, r.serialHex, r.keyLabel, r.notAfter])]);
        return { text: `${text}\npre-signed responses for ${signed.total} certificate(s)`, json };
      }),
    );
  ocsp.command("refresh")
    .description("one pre-signing pass: new certificates, changed statuses, responses close to nextUpdate")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const r = await new OcspPresigner({ db: ctx.db, keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() }).refresh(cliActor());
        return { text: `pre-signed responses for ${r.total} certificate(s)`, json: r };
      }),
    );
  registerOcspExportCommand(ocsp);
}

/** `hpki ocsp export`: the static RFC 5019 GET files and the nginx example (src/ocsp/export.ts). */
function registerOcspExportCommand(ocsp: Command): void {
  ocsp.command("export")
    .description("write the pre-signed responses as RFC 5019 GET files (<dir>/ocsp/<base64>.resp) and nginx-ocsp.conf; the status scheduler of this host keeps the directory current")
    .requiredOption("--dir <dir>", "export directory (created if missing)")
    .option("--full", "look at every response, not only those written since the directory's watermark")
    .option("--no-register", "export once; do not ask the status scheduler to keep the directory current")
    .option("--unregister", "stop keeping the directory current (writes nothing)")
    .option("--json", "print one JSON object")
    .action(async (o: { dir: string; full?: boolean; register: boolean; unregister?: boolean; json?: boolean }) =>
      withIa(o, async (ctx) => {
        if (o.unregister) {
          const was = await unregisterExportDir(ctx.db, o.dir);
          return { text: was ? `${o.dir}: no longer kept current` : `${o.dir}: was not registered on this host`, json: { unregistered: was } };
        }
        if (o.register) await registerExportDir(ctx.db, o.dir);
        const r = await exportOcspResponses(ctx.db, o.dir, loadOcspPolicy(), { full: o.full });
        const text = [
          `${r.dir}: ${r.read} response(s) read since the watermark, ${r.written} file(s) written, ${r.removed} removed; watermark ${r.watermark ?? "-"}`,
          `nginx example: ${r.dir}/nginx-ocsp.conf${o.register ? "; kept current by the status scheduler on this host" : ""}`,
        ].join("\n");
        return { text, json: { ...r, registered: o.register } };
      }),
    );
}

/** `hpki crl schedule`: registered under the `crl` command of revocation.ts. */
export function registerCrlScheduleCommand(crl: Command): void {
  crl.command("schedule")
    .description("run the IA status scheduler until Ctrl-C: CRLs daily and after revocations, OCSP responses kept fresh")
    .option("--poll-seconds <n>", "seconds between checks", (v) => Number.parseInt(v, 10), 15)
    .option("--no-ocsp", "CRLs only")
    .action(async (o: { pollSeconds: number; ocsp: boolean }) =>
      withIa({}, async (ctx) => {
        const scheduler = new CrlScheduler({
          db: ctx.db,
          keys: ctx.keys,
          crlPolicy: loadCrlPolicy(),
          ocsp: o.ocsp ? { keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() } : undefined,
          by: cliActor(),
          pollMs: o.pollSeconds * 1000,
        });
        process.stdout.write(`hpki crl schedule: polling every ${o.pollSeconds} s (Ctrl-C to stop)\n`);
        await new Promise<void>((resolve) => {
          scheduler.start();
          const stop = () => void scheduler.stop().then(resolve);
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        return { text: "hpki crl schedule: stopped", json: {} };
      }),
    );
}
