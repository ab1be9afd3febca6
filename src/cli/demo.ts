/**
 * `hpki demo` (npm run demo): hpki-ca end to end on the defaults (managed PostgreSQL + SoftHSM)
 * under $HPKI_HOME —
 *   1. the key ceremony (demo root + issuing CAs split by purpose), an organisation certificate
 *      from a CSR;
 *   2. two regional associations (地域受付審査局) with their operators, the RA and IA operators, and
 *      the demo licence register;
 *   3. every role served over HTTP (`serve --role all`), and 20 applications driven through the
 *      consoles' HTTP interface: LRA intake with scanned documents, identity and licence checks,
 *      batches forwarded, RA review, two-person issuance approval, cards personalised at the IA
 *      (keys made on the card), delivery with receipt forms, handover and receipt review — three
 *      of them stop with a clear reason (licence number mismatch, missing document, duplicate);
 *      then, after handover (issue 13), one of each card workflow: a PIN unblock, a lost card
 *      reissued, a renewal, a name change and a new director (demo-after-handover.ts), the
 *      replaced cards' certificates on the CRLs with their reasons;
 *   4. the certificates checked by OpenSSL and the audit chain verified;
 * then keeps serving the consoles until Ctrl-C (`--exit`: exits, last line one JSON object).
 * Re-running reuses what $HPKI_HOME holds and goes straight to serving.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { verifyAuditChain } from "../audit/verify.ts";
import { certificateUrls, loadConfig } from "../config.ts";
import { readCeremonyFile } from "../ia/ceremony-file.ts";
import { runCeremony } from "../ia/ceremony.ts";
import { openIaContext, type IaContext } from "../ia/context.ts";
import { csrKeyPolicy } from "../ia/csr-policy.ts";
import { applicationMachine } from "../pipeline/application.ts";
import { checkCsrKey, parseCertificationRequest } from "../pki/csr.ts";
import { toPem } from "../pki/pem.ts";
import { parseSubscriberSubject, withDnsNames } from "../pki/subject.ts";
import { openDatabase } from "../store/db.ts";
import { totpCodeAt } from "../operators/operators.ts";
import { ROLE_NAMES } from "../web/role.ts";
import { ROLE_FACTORIES, startServer } from "./role-factories.ts";
import { withOperatorSecrets } from "../operators/operator-secrets.ts";
import { DEMO_ORGANIZATION, DEMO_ORGANIZATION_HOST } from "./demo-data.ts";
import { driveAfterHandover, type AfterHandoverResult } from "./demo-after-handover.ts";
import { DemoConsoles } from "./demo-consoles.ts";
import { DEMO_REGISTER_UPDATE_CSV, driveDemoApplications, setUpDemoRegistration, type DemoLogin, type DemoRunResult } from "./demo-pipeline.ts";
import { importLicenceRegister } from "../pipeline/licence-register.ts";
import { printJson, table } from "./run.ts";

interface DemoOptions {
  exit?: boolean;
  port: number;
  host: string;
  totp?: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run hpki-ca end to end on the defaults (managed PostgreSQL + SoftHSM) under $HPKI_HOME and serve the consoles")
    .option("--exit", "exit when done instead of serving; the last line is one JSON object")
    .option("--port <port>", "TCP port of the consoles and repository (the demo CAs' URLs say 8080)", (v) => Number.parseInt(v, 10), 8080)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--totp <username>", "print the current TOTP code of a demo login (from $HPKI_HOME/demo-logins.json) and exit")
    .action(async (o: DemoOptions) => {
      try {
        await runDemo(o);
      } catch (e) {
        process.stderr.write(`hpki demo: ${(e as Error).stack ?? e}\n`);
        process.exitCode = 1;
      }
    });
}

async function runDemo(o: DemoOptions): Promise<void> {
  const cfg = loadConfig();
  if (o.totp) {
    const logins = JSON.parse(fs.readFileSync(path.join(cfg.home, "demo-logins.json"), "utf8")) as DemoLogin[];
    const l = logins.find((x) => x.username === o.totp);
    if (!l) throw new Error(`no demo login "${o.totp}" (have: ${logins.map((x) => x.username).join(", ")})`);
    process.stdout.write(`${await totpCodeAt(l.totpSecret)}\n`);
    return;
  }
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const db = await openDatabase(cfg);
  const ctx = await openIaContext(cfg, { db });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const by = { actor: "demo", role: "ia" };
    log("== 1. Key ceremony (policies/ceremony.demo.yaml)");
    const cas = await runCeremony(
      { db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: cfg.repoDir, urls: certificateUrls(cfg) },
      readCeremonyFile(path.join(cfg.policiesDir, "ceremony.demo.yaml")),
      by,
    );
    log(table([["CA", "result", "subject"], ...cas.map((c) => [c.name, c.result, c.subject])]));
    await issueOrganizationCertificate(ctx, by, log);

    log("\n== 2. Regional associations, operators and the licence register");
    const { logins, created } = await withOperatorSecrets(cfg, db, () => setUpDemoRegistration(db, cfg.home));
    log(created ? `created ${logins.length} operators; imported policies/demo/licence-register.csv` : `(already set up in ${cfg.home})`);

    // The roles' own log lines go to a file, not between the report's lines.
    const serverLog = path.join(cfg.home, "demo", "server.log");
    server = await startServer({ cfg, db, roles: ROLE_NAMES.filter((r) => ROLE_FACTORIES[r]), port: o.port, host: o.host, logFile: serverLog });
    log(`\n== 3. Consoles served at ${server.url} — applications through HTTP (the server's log: ${serverLog})`);
    const resultFile = path.join(cfg.home, "demo-result.json");
    let result: DemoRunResult & { afterHandover?: AfterHandoverResult };
    if (created || !fs.existsSync(resultFile)) {
      const consoles = new DemoConsoles(server.url, logins);
      try {
        result = await driveDemoApplications(consoles, log);
        log("\n== 3b. After handover (issue 13): PIN unblock, lost card reissued, renewal, name change, new director");
        result.afterHandover = await driveAfterHandover(consoles, result.handedOver ?? [], {
          log, outDir: path.join(cfg.home, "demo", "pin-mailers"),
          updateRegister: async () => {
            await importLicenceRegister(db, fs.readFileSync(DEMO_REGISTER_UPDATE_CSV), { actor: "demo", role: "ra" });
          },
        });
      } finally {
        await consoles.signOutAll();
      }
      fs.writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
    } else {
      result = JSON.parse(fs.readFileSync(resultFile, "utf8")) as DemoRunResult;
      log(`(applications already driven in ${cfg.home}; delete it to start over)`);
    }

    log("\n== 4. Every certificate issued, exported to $HPKI_HOME/demo/certs and checked by OpenSSL (openssl verify -x509_strict)");
    const { certificates, cards, failures } = await exportAndVerify(ctx, log);
    const organization = await exportOrganizationCertificate(ctx, log);
    const audit = await verifyAuditChain(db);
    log(`audit log: ${audit.records} records, ${audit.ok ? "chain intact" : `BROKEN at ${audit.firstBroken?.seq}`} (hpki audit verify)`);
    if (failures || !organization.ok || !audit.ok) process.exitCode = 1;

    log("\n== Summary");
    const apps = await db("applications as a").leftJoin("lras as l", "l.id", "a.lra_id").leftJoin("issuance_requests as r", "r.application_id", "a.id")
      .orderBy("a.id").select("a.application_no", "a.name_kanji", "a.qualification", "a.manager_role", "a.state", "l.code", "r.card_label");
    log(table([["application", "applicant", "hcRole", "desk", "state", "card"], ...apps.map((a) => [
      a.application_no, a.name_kanji, a.manager_role ?? a.qualification, a.code ?? "RA", applicationMachine.stateJa[a.state as keyof typeof applicationMachine.stateJa] ?? a.state, a.card_label ?? "",
    ])]));
    for (const s of result.stopped) log(`stopped: ${s.applicant} — ${s.reason}`);
    const after = result.afterHandover;
    if (after) {
      log(`after handover: PIN unblocked ${after.pinUnblocked} (mailer ${after.pinMailer})`);
      for (const r of after.replacements) log(`after handover: ${r.workflow} ${r.applicationNo} — ${r.oldCard} (revoked ${r.oldCertificatesRevoked}) → ${r.newCard}`);
    }
    log(`\nConsoles: ${server.url}/lra/  ${server.url}/ra/  ${server.url}/ia/  SSO administration: ${server.url}/sso/admin/`);
    log(`Repository: ${server.url}/crl/demo-sign-ca.crl  ${server.url}/certs/demo-root.cer  OCSP ${server.url}/ocsp   SSO portal: ${server.url}/sso/`);
    log(table([["login", "role", "console", "password"], ...logins.map((l) => [l.username, l.role, `${server!.url}/${l.console}/`, l.password])]));
    log(`One-time codes (TOTP): add the secret in $HPKI_HOME/demo-logins.json to an authenticator app, or run: hpki demo --totp <login>`);
    const summary = {
      applications: result.applications, completed: result.completed, stopped: result.stopped, certificates, cards, organizationCertificate: organization.file,
      afterHandover: result.afterHandover ?? null,
    };
    if (o.exit) {
      printJson(summary);
      return;
    }
    log("\nServing until Ctrl-C.");
    const s = server;
    server = undefined;
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await s.close();
  } finally {
    await server?.close();
    await ctx.close();
    await db.destroy();
  }
}

/**
 * The organisation (server) certificate from a CSR: the hospital makes its own key pair and asks
 * for its host name in the CSR's subjectAltName, which becomes the certificate's SAN dNSName.
 */
async function issueOrganizationCertificate(ctx: IaContext, by: { actor: string; role: string }, log: (s: string) => void): Promise<void> {
  const orgKey = `demo:${DEMO_ORGANIZATION.subscriberId}:auth-org`;
  if (await ctx.db("certificates").where({ request_key: orgKey }).first()) return;
  const tmp = fs.mkdtempSync(path.join(ctx.cfg.home, "csr-"));
  try {
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(tmp, "key.pem"),
      "-subj", `/CN=${DEMO_ORGANIZATION.name.latin}`, "-addext", `subjectAltName=DNS:${DEMO_ORGANIZATION_HOST}`, "-out", path.join(tmp, "req.pem")], { stdio: "ignore" });
    const csr = await parseCertificationRequest(fs.readFileSync(path.join(tmp, "req.pem")));
    const profile = ctx.policies.profiles.get("auth-org")!;
    checkCsrKey(csr, csrKeyPolicy(profile));
    await ctx.issuance.issue({
      profile: "auth-org", subject: withDnsNames(parseSubscriberSubject(DEMO_ORGANIZATION, profile, ctx.policies.hcRoles), profile, csr.dnsNames),
      subjectPublicKeyInfo: csr.subjectPublicKeyInfo, requestKey: orgKey,
    }, by);
    log(`CSR  ${DEMO_ORGANIZATION.organization.kanji}  auth-org certificate (key pair made by the hospital, proof of possession checked)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Where the demo exports every certificate it issued: $HPKI_HOME/demo/certs. */
export function demoCertDir(home: string): string {
  return path.join(home, "demo", "certs");
}

/**
 * Writes the CA certificates (<ca>.pem) and every card certificate (<application>-<profile>.pem) to
 * demoCertDir and has OpenSSL verify each card certificate against its chain.
 */
async function exportAndVerify(ctx: IaContext, log: (s: string) => void): Promise<{ certificates: string[]; cards: string[]; failures: number }> {
  const certDir = demoCertDir(ctx.cfg.home);
  fs.mkdirSync(certDir, { recursive: true });
  for (const ca of await ctx.db("certificate_authorities").select("name", "certificate")) {
    fs.writeFileSync(path.join(certDir, `${ca.name}.pem`), toPem(Buffer.from(ca.certificate)));
  }
  const rows = await ctx.db("certificates as c")
    .join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .join("issuance_requests as r", ctx.db.raw("c.request_key like 'ir:' || r.id || ':%'"))
    .join("applications as a", "a.id", "r.application_id")
    .where("c.status", "issued").orderBy("c.id")
    .select("c.der", "c.profile", "c.serial_hex", "c.card_label", "c.lifecycle_state", "ca.name as ca_name", "a.application_no");
  const root = path.join(ctx.cfg.repoDir, "demo-root.pem");
  const certificates: string[] = [];
  let failures = 0;
  for (const r of rows) {
    const file = path.join(certDir, `${r.application_no}-${r.profile}.pem`);
    fs.writeFileSync(file, toPem(Buffer.from(r.der)));
    certificates.push(file);
    try {
      execFileSync("openssl", ["verify", "-x509_strict", "-CAfile", root, "-untrusted", path.join(ctx.cfg.repoDir, `${r.ca_name}.pem`), file], { encoding: "utf8" });
    } catch (e) {
      failures++;
      log(`FAILED ${file}: ${String((e as { stdout?: string }).stdout ?? e).trim()}`);
    }
  }
  const cards = [...new Set(rows.map((r) => r.card_label as string).filter(Boolean))];
  const revoked = rows.filter((r) => r.lifecycle_state !== "issued").length;
  log(`${certificates.length - failures}/${certificates.length} certificates OK on ${cards.length} cards (PEMs in ${certDir})${revoked ? `; ${revoked} of them revoked after handover, on the CRLs` : ""}`);
  return { certificates, cards, failures };
}

/**
 * Writes the organisation certificate to demoCertDir as org-<subscriber>-auth-org.pem and has OpenSSL
 * verify it as a TLS server certificate for its host name (-purpose sslserver -verify_hostname;
 * its CN is not a host name, so only SAN dNSName can make that pass).
 */
async function exportOrganizationCertificate(ctx: IaContext, log: (s: string) => void): Promise<{ file: string; ok: boolean }> {
  const row = await ctx.db("certificates as c").join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .where("c.request_key", `demo:${DEMO_ORGANIZATION.subscriberId}:auth-org`).where("c.status", "issued").first("c.der", "ca.name as ca_name");
  const file = path.join(demoCertDir(ctx.cfg.home), `org-${DEMO_ORGANIZATION.subscriberId}-auth-org.pem`);
  if (!row) {
    log(`FAILED: no organisation certificate issued`);
    return { file, ok: false };
  }
  fs.writeFileSync(file, toPem(Buffer.from(row.der)));
  try {
    execFileSync("openssl", ["verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname", DEMO_ORGANIZATION_HOST,
      "-CAfile", path.join(ctx.cfg.repoDir, "demo-root.pem"), "-untrusted", path.join(ctx.cfg.repoDir, `${row.ca_name}.pem`), file], { encoding: "utf8" });
    log(`organisation certificate OK for TLS server ${DEMO_ORGANIZATION_HOST} (SAN dNSName): ${file}`);
    return { file, ok: true };
  } catch (e) {
    log(`FAILED ${file}: ${String((e as { stdout?: string }).stdout ?? e).trim()}`);
    return { file, ok: false };
  }
}
