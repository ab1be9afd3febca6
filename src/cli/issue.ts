/** `hpki issue` (onto a card or from a CSR) and `hpki issue recover` (complete crashed intents). */
import { createHash } from "node:crypto";
import fs from "node:fs";
import type { Command } from "commander";
import { issueOntoCard } from "../ia/cards.ts";
import { csrKeyPolicy } from "../ia/csr-policy.ts";
import { parseCertificationRequest, checkCsrKey } from "../pki/csr.ts";
import { toPem } from "../pki/pem.ts";
import { parseSubscriberSubject, withDnsNames } from "../pki/subject.ts";
import { cliActor, withIa } from "./run.ts";

interface IssueOptions {
  profile: string;
  subject: string;
  card?: string;
  pin?: string;
  pinFile?: string;
  csr?: string;
  out: string;
  ca?: string;
  requestKey?: string;
  json?: boolean;
}

export function registerIssueCommands(program: Command): void {
  const issue = program
    .command("issue")
    .description("issue an end-entity certificate: key pair made on a card (--card) or from a PKCS#10 request (--csr)")
    // Not requiredOption: commander would demand them of `hpki issue recover` too (issue 10 §4).
    .option("--profile <name>", "sign | auth-person | auth-org | enc | enc-org (required)")
    .option("--subject <file>", 'subject JSON: {"hcRole", "subscriberId", "name": {"latin", "kanji"}, "organization": {…}, "dnsNames": [host…] (auth-org)} (required)')
    .option("--card <label>", "card (token) label, e.g. card-0123456789AB")
    .option("--pin <pin>", "card user PIN")
    .option("--pin-file <file>", "read the card user PIN from this file (first line)")
    .option("--csr <file>", "PKCS#10 request (PEM or DER); its signature is checked (proof of possession)")
    .option("--out <file>", "where to write the certificate (PEM) (required)")
    .option("--ca <name>", "issuing CA (default: the one for the profile)")
    .option("--request-key <key>", "idempotency key (default: card:<label>:<profile> or csr:<sha256>:<profile>)")
    .option("--json", "print one JSON object")
    .action(async (o: IssueOptions) =>
      withIa(o, async (ctx) => {
        const missing = (["profile", "subject", "out"] as const).filter((k) => !o[k]).map((k) => `--${k}`);
        if (missing.length) throw new Error(`required option(s) ${missing.join(", ")} not specified / 必須オプション ${missing.join("、")} を指定してください`);
        if (!!o.card === !!o.csr) throw new Error("give exactly one of --card or --csr");
        const profile = ctx.policies.profiles.get(o.profile);
        if (!profile || profile.kind !== "end-entity") {
          throw new Error(`unknown end-entity profile "${o.profile}" (sign, auth-person, auth-org, enc, enc-org)`);
        }
        let json: unknown;
        try {
          json = JSON.parse(fs.readFileSync(o.subject, "utf8"));
        } catch (e) {
          throw new Error(`${o.subject}: not valid JSON (${(e as Error).message})`);
        }
        let subject = parseSubscriberSubject(json, profile, ctx.policies.hcRoles);
        const by = cliActor();
        let cert;
        if (o.card) {
          const pin = o.pin ?? (o.pinFile ? fs.readFileSync(o.pinFile, "utf8").split(/\r?\n/)[0] : undefined);
          if (!pin) throw new Error("--card needs --pin or --pin-file");
          subject = withDnsNames(subject, profile, []);
          cert = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: o.card, pin, profile: o.profile, subject, caName: o.ca, requestKey: o.requestKey }, by);
        } else {
          const csrBytes = fs.readFileSync(o.csr!);
          const csr = await parseCertificationRequest(csrBytes);
          checkCsrKey(csr, csrKeyPolicy(profile));
          // Host names for SAN dNSName: the subject file's and the CSR's requested subjectAltName.
          subject = withDnsNames(subject, profile, csr.dnsNames);
          const requestKey = o.requestKey ?? `csr:${createHash("sha256").update(csrBytes).digest("hex")}:${o.profile}`;
          cert = await ctx.issuance.issue({ profile: o.profile, subject, subjectPublicKeyInfo: csr.subjectPublicKeyInfo, requestKey, caName: o.ca }, by);
        }
        fs.writeFileSync(o.out, toPem(cert.der));
        const result = {
          ca: cert.caName,
          serialHex: cert.serialHex,
          profile: o.profile,
          hcRole: subject.hcRole ?? null,
          subscriberId: subject.subscriberId,
          notBefore: cert.notBefore.toISOString(),
          notAfter: cert.notAfter.toISOString(),
          card: o.card ?? null,
          out: o.out,
          existing: cert.existing,
        };
        const text = `${cert.existing ? "Already issued for this request" : "Issued"}: ${o.profile} certificate ${cert.serialHex} by ${cert.caName}${o.card ? ` onto ${o.card}` : ""} → ${o.out}`;
        return { text, json: result };
      }),
    );

  issue
    .command("recover")
    .description("complete issuance intents left by a crash (re-signs the recorded tbsCertificate)")
    .option("--json", "print one JSON object")
    // --json may land on `issue` (commander gives a parent's option to the parent): read both.
    .action(async (_o: { json?: boolean }, cmd: Command) =>
      withIa(cmd.optsWithGlobals<{ json?: boolean }>(), async (ctx) => {
        const done = await ctx.issuance.resumeIntents(cliActor());
        return {
          text: done.length ? done.map((c) => `completed ${c.caName} ${c.serialHex}`).join("\n") : "No pending intents.",
          json: { completed: done.map((c) => ({ ca: c.caName, serialHex: c.serialHex })) },
        };
      }),
    );
}
