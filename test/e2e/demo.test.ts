/**
 * `hpki demo --exit` as a user runs it (real process, embedded SoftHSM, a fresh Postgres
 * database): 20 applications over HTTP to handover, the three that must stop, certificates that
 * OpenSSL accepts on the cards named; after handover one of each card workflow (issue 13 §10) —
 * the unblocked card opened with the PIN of its printed mailer, the reissued, renewed and changed
 * cards' certificates verified by OpenSSL against the CRLs on which the old ones stand revoked
 * with their reasons; and `hpki audit verify` passing on the demo's log — then reporting a row
 * edited behind its back.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { readPinMailer } from "../../src/ia/card-personalisation.ts";
import { pinMailerPath } from "../../src/ia/cards.ts";
import { CardStation } from "../../src/hsm/cards.ts";
import { Pkcs11Module } from "../../src/hsm/module.ts";
import { ensureSoftHsmConfig } from "../../src/hsm/softhsm.ts";
import { fromPemOrDer } from "../../src/pki/pem.ts";
import { openDatabase } from "../../src/store/db.ts";
import { toPem } from "../../src/pki/pem.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

interface AfterHandover {
  pinUnblocked: number;
  reissued: number;
  renewed: number;
  nameChanged: number;
  newDirector: number;
  replacements: { workflow: string; applicationNo: string; oldCard: string; newCard: string; oldCertificatesRevoked: string }[];
  pinMailer: string;
}

describe("hpki demo --exit", { timeout: 600_000 }, () => {
  let cli: CliHarness;
  let demoOut = "";
  let summary: { applications: number; completed: number; stopped: { applicant: string; reason: string }[]; certificates: string[]; cards: string[]; organizationCertificate: string; afterHandover: AfterHandover };

  beforeAll(async () => {
    cli = await openCliHarness("hpki-demo-");
    const r = cli.hpki("demo", "--exit", "--port", "0");
    if (r.code !== 0) throw new Error(`demo failed (${r.code}):\n${r.out.slice(-3000)}\n${r.err.slice(-3000)}`);
    summary = r.json();
    demoOut = r.out;
  });
  afterAll(async () => cli?.cleanup());

  it("prints its report without the server's log lines, which go to $HPKI_HOME/demo/server.log", () => {
    const logFile = path.join(cli.home, "demo", "server.log");
    expect(demoOut).toContain(`the server's log: ${logFile}`);
    expect(demoOut.split("\n").filter((l) => l.startsWith('{"level"'))).toEqual([]);
    // The IA's revocation worker ran during the after-handover part, and said so in the log.
    expect(fs.readFileSync(logFile, "utf8")).toContain('"name":"hpki-ia"');
  });

  it("completes the applications that should complete and stops three with their reasons", () => {
    expect(summary.applications).toBe(20);
    expect(summary.completed).toBe(17);
    const reasons = summary.stopped.map((s) => s.reason).join("\n");
    expect(summary.stopped).toHaveLength(3);
    expect(reasons).toContain("資格確認台帳と一致しません"); // licence number mismatch
    expect(reasons).toContain("免許証の写し"); // missing document
    expect(reasons).toContain("重複申込"); // duplicate application
  });

  it("leaves certificates that openssl verify -x509_strict accepts, on the cards it names", () => {
    expect(summary.cards).toHaveLength(21); // 17 handed over, then 4 replacement cards after handover
    expect(summary.certificates.length).toBeGreaterThanOrEqual(30);
    const repo = path.join(cli.home, "repo");
    for (const file of summary.certificates) {
      const ca = file.endsWith("-sign.pem") ? "demo-sign-ca" : "demo-auth-ca";
      const v = spawnSync("openssl", ["verify", "-x509_strict", "-CAfile", path.join(repo, "demo-root.pem"), "-untrusted", path.join(repo, `${ca}.pem`), file], { encoding: "utf8" });
      expect(v.stdout.trim()).toBe(`${file}: OK`);
    }
  });

  it("exports the organisation certificate to $HPKI_HOME/demo/certs: a TLS server certificate by SAN dNSName, not by CN", () => {
    const certs = path.join(cli.home, "demo", "certs");
    expect(path.dirname(summary.organizationCertificate)).toBe(certs);
    for (const f of [...summary.certificates, "demo-root.pem", "demo-org-auth-ca.pem"]) expect(fs.existsSync(path.resolve(certs, f)), f).toBe(true);
    const repo = path.join(cli.home, "repo");
    const asServer = (host: string) => spawnSync("openssl", ["verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname", host,
      "-CAfile", path.join(repo, "demo-root.pem"), "-untrusted", path.join(repo, "demo-org-auth-ca.pem"), summary.organizationCertificate], { encoding: "utf8" });
    expect(asServer("ehr.tokyo-chuo-hospital.example").stdout.trim()).toBe(`${summary.organizationCertificate}: OK`);
    expect(asServer("tokyo-chuo-hospital.example").status).not.toBe(0);
  });

  it("the cards hold their certificates (read back over PKCS#11 with the PIN from the mailer)", async () => {
    const cfg = loadConfig({ HPKI_HOME: cli.home, PKCS11_MODULE: "" });
    ensureSoftHsmConfig(cfg);
    const station = new CardStation(Pkcs11Module.open(cfg.pkcs11Module));
    // The subscriber's certificates, and the issuing CA and root certificates the card also holds (JAHIS labels, issue 13 §7).
    const certDir = path.join(cli.home, "demo", "certs");
    const caPems = fs.readdirSync(certDir).filter((f) => /^demo-.*\.pem$/.test(f)).map((f) => path.join(certDir, f));
    const pems = new Set([...summary.certificates, ...caPems].map((f) => fromPemOrDer(fs.readFileSync(f, "utf8")).toString("hex")));
    let found = 0;
    for (const label of summary.cards.slice(0, 3)) {
      const card = await station.openCard(label, readPinMailer(pinMailerPath(cfg.mailDir, label)));
      try {
        for (const c of await card.listCertificates()) {
          expect(pems.has(c.der.toString("hex"))).toBe(true);
          found++;
        }
      } finally {
        card.close();
      }
    }
    expect(found).toBeGreaterThanOrEqual(3);
  });

  it("after handover: one PIN unblock, lost card reissued, renewal, name change and new director, each old card revoked with its reason", () => {
    const a = summary.afterHandover;
    expect(a).toMatchObject({ pinUnblocked: 1, reissued: 1, renewed: 1, nameChanged: 1, newDirector: 1 });
    expect(a.replacements.map((r) => [r.workflow, r.oldCertificatesRevoked])).toEqual([
      ["reissue", "keyCompromise"], ["renewal", "superseded"], ["name_change", "affiliationChanged"], ["role_gained", "superseded"],
    ]);
    for (const r of a.replacements) {
      expect(summary.cards).toContain(r.newCard);
      expect(r.newCard).not.toBe(r.oldCard);
    }
  });

  it("the reissued, renewed and changed cards' certificates verify against the CRLs; the old ones are on them, revoked with the right reason", async () => {
    const repo = path.join(cli.home, "repo");
    const work = fs.mkdtempSync(path.join(cli.home, "crl-check-"));
    const crlFiles = new Map<string, string>();
    const oldCerts: { card: string; caName: string; serialHex: string; file: string }[] = [];
    await cli.withDb(async (db) => {
      for (const ca of ["demo-sign-ca", "demo-auth-ca"]) {
        const crl = await db("crls as l").join("certificate_authorities as ca", "ca.id", "l.ca_id").where("ca.name", ca).orderBy("l.crl_number", "desc").first("l.der");
        const f = path.join(work, `${ca}.crl.pem`);
        fs.writeFileSync(f, toPem(Buffer.from(crl.der), "X509 CRL"));
        crlFiles.set(ca, f);
      }
      for (const r of summary.afterHandover.replacements) {
        const rows = await db("certificates as c").join("certificate_authorities as ca", "ca.id", "c.ca_id").where("c.card_label", r.oldCard).select("c.der", "c.serial_hex", "ca.name as ca_name");
        expect(rows.length).toBeGreaterThan(0);
        for (const row of rows) {
          const file = path.join(work, `${r.oldCard}-${row.serial_hex}.pem`);
          fs.writeFileSync(file, toPem(Buffer.from(row.der)));
          oldCerts.push({ card: r.oldCard, caName: row.ca_name, serialHex: row.serial_hex, file });
        }
      }
    });
    const verify = (file: string, ca: string) => spawnSync("openssl", ["verify", "-x509_strict", "-crl_check", "-CRLfile", crlFiles.get(ca)!,
      "-CAfile", path.join(repo, "demo-root.pem"), "-untrusted", path.join(repo, `${ca}.pem`), file], { encoding: "utf8" });
    const reasonText = { keyCompromise: "Key Compromise", superseded: "Superseded", affiliationChanged: "Affiliation Changed" } as Record<string, string>;
    const crlText = new Map([...crlFiles].map(([ca, f]) => [ca, spawnSync("openssl", ["crl", "-in", f, "-noout", "-text"], { encoding: "utf8" }).stdout]));

    for (const r of summary.afterHandover.replacements) {
      const fresh = summary.certificates.filter((f) => path.basename(f).startsWith(`${r.applicationNo}-`));
      expect(fresh.length, r.applicationNo).toBeGreaterThan(0);
      for (const f of fresh) {
        const v = verify(f, f.endsWith("-sign.pem") ? "demo-sign-ca" : "demo-auth-ca");
        expect(`${v.stdout}${v.stderr}`.trim()).toBe(`${f}: OK`);
      }
      for (const old of oldCerts.filter((o) => o.card === r.oldCard)) {
        const v = verify(old.file, old.caName);
        expect(v.status).not.toBe(0);
        expect(`${v.stdout}${v.stderr}`).toContain("certificate revoked");
        const text = crlText.get(old.caName)!;
        const at = text.indexOf(`Serial Number: ${old.serialHex.toUpperCase()}`);
        expect(at, `${old.serialHex} on ${old.caName}'s CRL`).toBeGreaterThan(0);
        expect(text.slice(at, at + 300)).toContain(reasonText[r.oldCertificatesRevoked]);
      }
    }
    const subject = (f: string) => spawnSync("openssl", ["x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253"], { encoding: "utf8" }).stdout;
    const of = (workflow: string) => path.join(cli.home, "demo", "certs", `${summary.afterHandover.replacements.find((r) => r.workflow === workflow)!.applicationNo}-sign.pem`);
    expect(subject(of("name_change"))).toContain("CN=Misaki Nakajima");
    expect(subject(of("role_gained"))).toMatch(/OU=Director,O=Minato Dental Clinic|O=Minato Dental Clinic.*OU=Director/);
  });

  it("the unblocked card opens with the PIN of its printed mailer (only there), not with its first PIN", async () => {
    const file = summary.afterHandover.pinMailer;
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe("600");
    const text = spawnSync("pdftotext", ["-layout", "-enc", "UTF-8", file, "-"], { encoding: "utf8" }).stdout;
    const pin = /PIN:\s+(\d{8})/.exec(text)?.[1];
    expect(pin, text).toBeDefined();
    const serial = /card serial:\s+([0-9A-F]{12})/.exec(text)![1];
    const label = `card-${serial}`;
    const cfg = loadConfig({ HPKI_HOME: cli.home, PKCS11_MODULE: "" });
    ensureSoftHsmConfig(cfg);
    const station = new CardStation(Pkcs11Module.open(cfg.pkcs11Module));
    // The first PIN first: a PKCS#11 login holds for the whole token while a session is open.
    const first = pinMailerPath(cfg.mailDir, label);
    if (fs.existsSync(first)) await expect(station.openCard(label, readPinMailer(first))).rejects.toMatchObject({ code: "CKR_PIN_INCORRECT" });
    const card = await station.openCard(label, pin!);
    try {
      expect((await card.listCertificates()).length).toBeGreaterThanOrEqual(2);
    } finally {
      card.close();
    }
  });

  it("hpki audit verify passes on the demo's log and reports a row edited behind its back", async () => {
    const ok = cli.hpki("audit", "verify", "--json");
    expect(ok.code).toBe(0);
    expect(ok.json()).toMatchObject({ ok: true });
    const records = ok.json().records as number;
    expect(records).toBeGreaterThan(300);

    const cfg = loadConfig({ HPKI_HOME: cli.home });
    const db = await openDatabase(cfg, cli.dbUrl ? { databaseUrl: cli.dbUrl } : {});
    let seq: number;
    try {
      seq = Number((await db("audit_log").where({ action: "application.ra_approved" }).orderBy("seq").first("seq")).seq);
      await db.transaction(async (trx) => {
        await trx.raw("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
        await trx.raw("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?", [seq]);
        await trx.raw("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update");
      });
    } finally {
      await db.destroy();
    }
    const broken = cli.hpki("audit", "verify", "--json");
    expect(broken.code).toBe(1);
    expect(broken.json()).toMatchObject({ ok: false, firstBroken: { seq } });
  });
});
