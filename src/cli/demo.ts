/**
 * `hpki demo` (npm run demo): the CA part of hpki-ca end to end on the embedded defaults —
 * key ceremony, blank cards, signature and authentication certificates issued onto cards for a
 * few sample subscribers (keys made on the card), an organisation certificate from a CSR, each
 * printed with `inspect` and checked by OpenSSL. Re-running reuses what $HPKI_HOME already holds.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { POLICIES_DIR } from "../policies.ts";
import { issueOntoCard, provisionCards } from "../ia/cards.ts";
import { readCeremonyFile } from "../ia/ceremony-file.ts";
import { runCeremony } from "../ia/ceremony.ts";
import { csrKeyPolicy } from "../ia/csr-policy.ts";
import { checkCsrKey, parseCertificationRequest } from "../pki/csr.ts";
import { describeCertificate, formatCertificateDescription } from "../pki/inspect.ts";
import { toPem } from "../pki/pem.ts";
import { parseSubscriberSubject } from "../pki/subject.ts";
import { DEMO_ORGANIZATION, DEMO_SUBSCRIBERS } from "./demo-data.ts";
import { cliActor, table, withIa } from "./run.ts";

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run the CA demo on the embedded defaults (PGlite + SoftHSM) under $HPKI_HOME")
    .option("--exit", "exit when done (the demo currently always exits)")
    .option("--json", "print one JSON object")
    .option("--lang <lang>", "ja or en", "ja")
    .action(async (o: { json?: boolean; lang: string }) =>
      withIa(o, async (ctx) => {
        const by = { ...cliActor(), actor: "demo" };
        const log = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`);
        const lang = o.lang === "en" ? "en" : "ja";
        const certDir = path.join(ctx.cfg.home, "certs");
        fs.mkdirSync(certDir, { recursive: true });

        log("== 1. Key ceremony (policies/ceremony.demo.yaml)");
        const ceremonyPath = path.join(POLICIES_DIR, "ceremony.demo.yaml");
        const cas = await runCeremony(
          { db: ctx.db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: ctx.cfg.repoDir },
          readCeremonyFile(ceremonyPath),
          by,
        );
        log(table([["CA", "result", "subject"], ...cas.map((c) => [c.name, c.result, c.subject])]));

        log("\n== 2. Cards and certificates (key pairs generated on the card)");
        const issued: { file: string; der: Buffer; card: string | null; subscriber: string; profile: string; serial: string }[] = [];
        const pending = [];
        for (const s of DEMO_SUBSCRIBERS) {
          const done = await ctx.db("certificates").where({ request_key: `demo:${s.subscriberId}:sign` }).first();
          if (!done) pending.push(s);
        }
        const cards = pending.length ? await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, pending.length, by) : [];
        if (!pending.length) log(`(already issued in ${ctx.cfg.home}; delete it to start over)`);
        for (const [i, s] of pending.entries()) {
          const card = cards[i];
          // The demo plays the subscriber, who reads the PIN from the mailer.
          const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
          for (const profileName of ["sign", "auth-person"]) {
            const profile = ctx.policies.profiles.get(profileName)!;
            const subject = parseSubscriberSubject(s, profile, ctx.policies.hcRoles);
            const cert = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, {
              cardLabel: card.label, pin, profile: profileName, subject, requestKey: `demo:${s.subscriberId}:${profileName}`,
            }, by);
            log(`${card.label}  ${s.name.kanji}（${s.hcRole}）  ${profileName.padEnd(11)} ${cert.serialHex}`);
          }
        }

        const orgKey = `demo:${DEMO_ORGANIZATION.subscriberId}:auth-org`;
        if (!(await ctx.db("certificates").where({ request_key: orgKey }).first())) {
          const tmp = fs.mkdtempSync(path.join(ctx.cfg.home, "csr-"));
          try {
            // The hospital makes its key pair itself; only the CSR reaches the CA.
            execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(tmp, "key.pem"),
              "-subj", `/CN=${DEMO_ORGANIZATION.name.latin}`, "-out", path.join(tmp, "req.pem")], { stdio: "ignore" });
            const csr = await parseCertificationRequest(fs.readFileSync(path.join(tmp, "req.pem")));
            const profile = ctx.policies.profiles.get("auth-org")!;
            checkCsrKey(csr, csrKeyPolicy(profile));
            log(`CSR  ${DEMO_ORGANIZATION.organization.kanji} ${DEMO_ORGANIZATION.name.latin}  auth-org (key pair made by the hospital, proof of possession checked)`);
            await ctx.issuance.issue({
              profile: "auth-org",
              subject: parseSubscriberSubject(DEMO_ORGANIZATION, profile, ctx.policies.hcRoles),
              subjectPublicKeyInfo: csr.subjectPublicKeyInfo,
              requestKey: orgKey,
            }, by);
          } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
          }
        }

        const rows = await ctx.db("certificates as c").join("certificate_authorities as a", "a.id", "c.ca_id")
          .where("c.request_key", "like", "demo:%").orderBy("c.id").select("c.*", "a.name as ca_name");
        for (const r of rows) {
          const file = path.join(certDir, `${r.subscriber_id}-${r.profile}.pem`);
          const der = Buffer.from(r.der);
          fs.writeFileSync(file, toPem(der));
          issued.push({ file, der, card: r.card_label, subscriber: r.subscriber_id, profile: r.profile, serial: r.serial_hex });
        }

        log("\n== 3. Certificates (hpki inspect)");
        for (const c of issued) {
          log(`\n--- ${path.relative(process.cwd(), c.file)}${c.card ? `  (card ${c.card})` : ""}`);
          log(formatCertificateDescription(describeCertificate(c.der), lang, ctx.policies.hcRoles));
        }

        log("\n== 4. Independent check: openssl verify -x509_strict (root → issuing CA → end entity)");
        const root = path.join(ctx.cfg.repoDir, `${cas[0].name}.pem`);
        const verified: Record<string, string> = {};
        for (const c of issued) {
          const caName = rows.find((r) => r.serial_hex === c.serial)!.ca_name;
          let res: string;
          try {
            res = execFileSync("openssl", ["verify", "-x509_strict", "-CAfile", root, "-untrusted", path.join(ctx.cfg.repoDir, `${caName}.pem`), c.file], { encoding: "utf8" }).trim();
          } catch (e) {
            res = `FAILED: ${String((e as { stdout?: string }).stdout ?? e).trim()}`;
            process.exitCode = 1;
          }
          verified[c.file] = res;
          log(res);
        }
        const summary = table([["subscriber", "profile", "serial", "card"], ...issued.map((c) => [c.subscriber, c.profile, c.serial, c.card ?? "(CSR)"])]);
        return {
          text: `\n== Summary\n${summary}\nState: ${ctx.cfg.home} (CA PEMs in ${ctx.cfg.repoDir}, PIN mailers in ${ctx.cfg.mailDir})`,
          json: { cas, certificates: issued.map((c) => c.file), cards: [...new Set(issued.map((c) => c.card).filter(Boolean))], verified },
        };
      }),
    );
}
