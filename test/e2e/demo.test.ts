/**
 * `hpki demo --exit` as a user runs it (real process, embedded SoftHSM, a fresh Postgres
 * database): 20 applications over HTTP to handover, the three that must stop, certificates that
 * OpenSSL accepts on the cards named, and `hpki audit verify` passing on the demo's log — then
 * reporting a row edited behind its back.
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
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

describe("hpki demo --exit", { timeout: 600_000 }, () => {
  let cli: CliHarness;
  let summary: { applications: number; completed: number; stopped: { applicant: string; reason: string }[]; certificates: string[]; cards: string[]; organizationCertificate: string };

  beforeAll(async () => {
    cli = await openCliHarness("hpki-demo-");
    const r = cli.hpki("demo", "--exit", "--port", "0");
    if (r.code !== 0) throw new Error(`demo failed (${r.code}):\n${r.out.slice(-3000)}\n${r.err.slice(-3000)}`);
    summary = r.json();
  });
  afterAll(async () => cli?.cleanup());

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
    expect(summary.cards).toHaveLength(17);
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
    const pems = new Set(summary.certificates.map((f) => fromPemOrDer(fs.readFileSync(f, "utf8")).toString("hex")));
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
