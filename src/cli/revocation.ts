/** `hpki revoke` and `hpki crl generate`: revocation and CRL/ARL issuance for operators and tests. */
import fs from "node:fs";
import type { Command } from "commander";
import { generateCrl, loadCrlPolicy } from "../ia/crl-generation.ts";
import { REVOCATION_REASONS, RevocationError, revokeCertificate } from "../ia/revocation.ts";
import type { IaContext } from "../ia/context.ts";
import { describeStatusRefresh, refreshStatusAfterRevocation, type StatusRefreshDeps } from "../ia/status-after-revocation.ts";
import { loadOcspPolicy } from "../ocsp/responders.ts";
import { registerCrlScheduleCommand } from "./ocsp.ts";
import { cliActor, table, withIa } from "./run.ts";

export function registerRevocationCommands(program: Command): void {
  program.command("revoke")
    .description("revoke, hold (certificateHold) or release (removeFromCRL) a certificate")
    .requiredOption("--ca <name>", "issuing CA name (see `hpki ca list`); the root for an issuing-CA certificate")
    .requiredOption("--serial <hex>", "certificate serial number in hex")
    .requiredOption("--reason <reason>", `RFC 5280 reason: ${REVOCATION_REASONS.join(" | ")}`)
    .option("--invalidity-date <iso>", "when the key was known or suspected compromised (ISO 8601)")
    .option("--json", "print one JSON object")
    .action(async (o: { ca: string; serial: string; reason: string; invalidityDate?: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const invalidityDate = o.invalidityDate === undefined ? undefined : parseIsoDate(o.invalidityDate);
        const r = await revokeCertificate(ctx.db, { caName: o.ca, serialHex: o.serial, reason: o.reason, invalidityDate }, cliActor());
        // Committed. Now make the status current without waiting for a scheduler (issue 11 §2).
        const [status] = await refreshStatusAfterRevocation(statusRefreshDeps(ctx), new Map([[r.caName, r.subject === "end-entity" ? [r.serialHex] : []]]), cliActor());
        const json = { ...r, revokedAt: r.revokedAt.toISOString(), invalidityDate: r.invalidityDate?.toISOString() ?? null, status };
        const text = table([["CA", "serial", "action", "reason", "revoked at", "invalidity date"],
          [r.caName, r.serialHex, r.action, r.reason, json.revokedAt, json.invalidityDate ?? "-"]]);
        return { text: `${text}\n${describeStatusRefresh(status).join("\n")}`, json };
      }),
    );

  const crl = program.command("crl").description("certificate revocation lists");
  crl.command("generate")
    .description("generate, sign and store the next CRL of an issuing CA (the ARL for the root) and write it as DER")
    .requiredOption("--ca <name>", "CA name (see `hpki ca list`)")
    .requiredOption("--out <file>", "write the DER CRL here")
    .option("--json", "print one JSON object")
    .action(async (o: { ca: string; out: string; json?: boolean }) =>
      withIa(o, async (ctx) => {
        const r = await generateCrl({ db: ctx.db, keys: ctx.keys, policy: loadCrlPolicy() }, o.ca, cliActor());
        fs.writeFileSync(o.out, r.der);
        const json = {
          caName: r.caName, kind: r.kind, crlNumber: r.crlNumber, thisUpdate: r.thisUpdate.toISOString(),
          nextUpdate: r.nextUpdate.toISOString(), entries: r.entries, bytes: r.der.length, sha256: r.sha256, out: o.out,
        };
        const text = table([["CA", "kind", "crlNumber", "thisUpdate", "nextUpdate", "entries", "bytes"],
          [r.caName, r.kind, String(r.crlNumber), json.thisUpdate, json.nextUpdate, String(r.entries), String(json.bytes)]]);
        return { text: `${text}\nwrote ${o.out}`, json };
      }),
    );
  registerCrlScheduleCommand(crl);
}

/** What refreshStatusAfterRevocation needs, from a CLI IA context (the OCSP token opened only if used). */
export function statusRefreshDeps(ctx: IaContext): StatusRefreshDeps {
  return { db: ctx.db, keys: ctx.keys, crlPolicy: loadCrlPolicy(), ocsp: () => ({ keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() }) };
}

/** An ISO 8601 date-time; a bare date or a time without offset is refused as ambiguous. */
function parseIsoDate(s: string): Date {
  const d = new Date(s);
  if (!/T.*(Z|[+-]\d\d:?\d\d)$/.test(s) || Number.isNaN(d.getTime())) {
    throw new RevocationError("BAD_DATE", `--invalidity-date "${s}" is not an ISO 8601 date-time with a zone (e.g. 2026-11-20T08:00:00Z)`,
      `--invalidity-date「${s}」はタイムゾーン付きの ISO 8601 日時ではありません`);
  }
  return d;
}
