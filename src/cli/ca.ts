/** `hpki ca init | list | export`: the key ceremony and the CA hierarchy. */
import fs from "node:fs";
import type { Command } from "commander";
import { appendAudit } from "../audit/log.ts";
import { ensureAuditSigner } from "../audit/checkpoint-signer.ts";
import { certificateUrls } from "../config.ts";
import { listCas, findCaByName } from "../ia/ca-registry.ts";
import { readCeremonyFile } from "../ia/ceremony-file.ts";
import { runCeremony } from "../ia/ceremony.ts";
import { formatName } from "../pki/name-decode.ts";
import { toPem } from "../pki/pem.ts";
import { cliActor, table, withIa } from "./run.ts";

export function registerCaCommands(program: Command): void {
  const ca = program.command("ca").description("CA hierarchy: key ceremony, list, export");

  ca.command("init")
    .description("run a key ceremony: create the root and issuing-CA keys in the HSM and sign their certificates (idempotent)")
    .requiredOption("--ceremony <file>", "reviewed ceremony YAML, e.g. policies/ceremony.demo.yaml")
    .option("--json", "print one JSON object")
    .action(async (o: { ceremony: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const file = readCeremonyFile(o.ceremony);
        const outcomes = await runCeremony(
          { db: ctx.db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: ctx.cfg.repoDir, urls: certificateUrls(ctx.cfg) },
          file,
          cliActor(),
        );
        const changed = outcomes.filter((x) => x.result !== "unchanged").length;
        // The audit checkpoint key lives on the CA token too (src/audit/checkpoint-signer.ts): made here, once.
        const audit = await ensureAuditSigner(ctx.keys);
        if (audit.created) {
          await ctx.db.transaction((trx) => appendAudit(trx, [{ ...cliActor(), action: "audit.signing-key-created", objectType: "hsm-key", objectId: audit.signer.key.label,
            details: { id: audit.signer.key.id.toString("hex"), algorithm: audit.signer.key.algorithm, certificateSha256: audit.signer.sha256 } }]));
        }
        const text = [
          table([["CA", "kind", "result", "serial", "subject"], ...outcomes.map((x) => [x.name, x.kind, x.result, x.serialHex, x.subject])]),
          changed === 0 ? "Nothing changed: every CA in the ceremony file already exists." : `${changed} CA(s) created. PEMs in ${ctx.cfg.repoDir}`,
          `Audit checkpoint key "${audit.signer.key.label}" ${audit.created ? "created" : "present"}; signer certificate SHA-256 ${audit.signer.sha256}`,
        ].join("\n");
        return { text, json: { changed, cas: outcomes, auditSigner: { label: audit.signer.key.label, created: audit.created, certificateSha256: audit.signer.sha256 } } };
      }),
    );

  ca.command("list")
    .description("list the CAs")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withIa(o, async (ctx) => {
        const cas = await listCas(ctx.db);
        const json = cas.map((c) => ({
          name: c.name,
          kind: c.kind,
          purpose: c.purpose,
          parent: cas.find((p) => p.id === c.parentId)?.name ?? null,
          subject: formatName(c.subjectDer),
          serialHex: c.serialHex,
          keyLabel: c.key.label,
          keyAlgorithm: c.key.algorithm,
          notBefore: c.notBefore.toISOString(),
          notAfter: c.notAfter.toISOString(),
          crlUrl: c.crlUrl,
        }));
        const text = cas.length
          ? table([["name", "kind", "purpose", "key", "not after", "subject"], ...json.map((c) => [c.name, c.kind, c.purpose, `${c.keyLabel} (${c.keyAlgorithm})`, c.notAfter.slice(0, 10), c.subject])])
          : "No CAs yet: run `hpki ca init --ceremony policies/ceremony.demo.yaml`.";
        return { text, json: { cas: json } };
      }),
    );

  ca.command("export")
    .description("print (or write) a CA certificate as PEM")
    .requiredOption("--ca <name>", "CA name (see `hpki ca list`)")
    .option("--out <file>", "write to this file instead of stdout")
    .option("--der", "DER instead of PEM (requires --out)")
    .action(async (o: { ca: string; out?: string; der?: boolean }) =>
      withIa({}, async (ctx) => {
        const ca = await findCaByName(ctx.db, o.ca);
        if (!ca) throw new Error(`no CA named "${o.ca}" (see \`hpki ca list\`)`);
        if (o.der && !o.out) throw new Error("--der needs --out");
        if (o.out) {
          fs.writeFileSync(o.out, o.der ? ca.certificate : toPem(ca.certificate));
          return { text: `wrote ${o.out}`, json: null };
        }
        return { text: toPem(ca.certificate), json: null };
      }),
    );
}
