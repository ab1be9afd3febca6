/**
 * Deployment URLs (issue 11 §4) on a real SoftHSM token and database: certificates take their CRL
 * and CPS URLs from HPKI_REPO_URL; production mode (NODE_ENV=production) refuses localhost, loopback
 * and IP addresses at the ceremony, at the IA's start and (lint) at issuance; the demo keeps
 * localhost. Every certificate judged by OpenSSL.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificateUrls, loadConfig } from "../../src/config.ts";
import { parseCeremonyFile } from "../../src/ia/ceremony-file.ts";
import { runCeremony } from "../../src/ia/ceremony.ts";
import { openIaContext, type IaContext } from "../../src/ia/context.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { DEMO_CEREMONY, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { opensslText, opensslVerify, tempDir, writePems } from "../helpers/openssl.ts";

const by = { actor: "test", role: "ia" };
const REPO = "https://repo.hpki.example.jp";
const ceremonyText = fs.readFileSync(DEMO_CEREMONY, "utf8");

describe("certificate URLs from the configuration", () => {
  let demo: TestIa;
  let prodDb: TestDb;
  let prod: IaContext;
  // The same home (one embedded SoftHSM per process: the demo's tokens, keys reused by label) on a
  // second, fresh database: a production deployment's CA table.
  const prodEnv = () => ({ HPKI_HOME: demo.home, NODE_ENV: "production", HPKI_REPO_URL: REPO });

  beforeAll(async () => {
    demo = await openTestIa("urls-demo");
    prodDb = await openTestDatabase();
  });
  afterAll(async () => {
    await prod?.close();
    await prodDb?.cleanup();
    await demo?.cleanup();
  });

  it("the demo keeps localhost: the default {repoUrl} outside production", async () => {
    await runDemoCeremony(demo.ctx, by);
    const text = opensslText(demo.pem("demo-sign-ca"));
    expect(text).toContain("URI:http://localhost:8080/crl/demo-root.crl");
    expect(text).toContain("CPS: http://localhost:8080/repository/");
  });

  it("production refuses, at the IA's start, a home whose CAs publish at localhost — in both languages", async () => {
    const cfg = loadConfig(prodEnv());
    const err = await openIaContext(cfg, { db: demo.ctx.db, poolSize: 1 }).then(() => undefined, (e) => e);
    expect(err).toMatchObject({ code: "url_not_public" });
    expect(err.message).toContain("CA demo-root CRL URL: http://localhost:8080/crl/demo-root.crl names localhost");
    expect(err.messageJa).toContain("本番モードでは次の証明書 URL は使用できません");
  });

  it("production refuses a ceremony file naming localhost before anything is written", async () => {
    prod = await openIaContext(loadConfig(prodEnv()), { db: prodDb.db, poolSize: 2 });
    const file = parseCeremonyFile(ceremonyText.replace("    key: { label: demo-sign-ca-1, algorithm: RSA-2048 }\n", "    key: { label: demo-sign-ca-1, algorithm: RSA-2048 }\n    crlUrl: http://127.0.0.1:8080/crl/demo-sign-ca.crl\n"), "test");
    await expect(runCeremony({ db: prod.db, keys: prod.keys, profiles: prod.policies.profiles, repoDir: prod.cfg.repoDir, urls: certificateUrls(prod.cfg) }, file, by))
      .rejects.toMatchObject({ code: "url_not_public", message: expect.stringContaining("CA demo-sign-ca: http://127.0.0.1:8080/crl/demo-sign-ca.crl names an IP address") });
    expect(Number((await prod.db("certificate_authorities").count({ n: "*" }).first())?.n)).toBe(0);
  });

  it("production certificates carry HPKI_REPO_URL in their CRL distribution point and CPS, and verify", async () => {
    const deps = { db: prod.db, keys: prod.keys, profiles: prod.policies.profiles, repoDir: prod.cfg.repoDir, urls: certificateUrls(prod.cfg) };
    await runCeremony(deps, parseCeremonyFile(ceremonyText, "demo"), by);
    // The ceremony writes PEMs to the (shared) repo dir: read this hierarchy's from the database.
    const repo = tempDir("urls-prod-repo-");
    for (const ca of await prod.db("certificate_authorities").select("name", "certificate")) writePems(repo, { [ca.name]: ca.certificate });
    const pem = (n: string) => path.join(repo, `${n}.pem`);
    const caText = opensslText(pem("demo-sign-ca"));
    expect(caText).toContain(`URI:${REPO}/crl/demo-root.crl`);
    expect(caText).toContain(`CPS: ${REPO}/repository/`);
    expect(caText).not.toContain("localhost");

    const work = tempDir("urls-prod-work-");
    try {
      const key = path.join(work, "org.key");
      const csrFile = path.join(work, "org.csr");
      execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", "/CN=x", "-out", csrFile], { stdio: "ignore" });
      const spki = execFileSync("openssl", ["req", "-in", csrFile, "-noout", "-pubkey"]).toString();
      const der = Buffer.from(spki.replace(/-----[^-]+-----|\s/g, ""), "base64");
      const profile = prod.policies.profiles.get("auth-org")!;
      const subject = parseSubscriberSubject({ subscriberId: "ORG0009", name: { latin: "Example EMR" }, organization: { latin: "Example Hospital" }, dnsNames: ["emr.example-hospital.jp"] }, profile, prod.policies.hcRoles);
      const cert = await prod.issuance.issue({ profile: "auth-org", subject, subjectPublicKeyInfo: der }, by);
      const files = writePems(work, { org: cert.der });
      const text = opensslText(files.org);
      expect(text).toContain(`URI:${REPO}/crl/demo-org-auth-ca.crl`);
      expect(text).toContain(`CPS: ${REPO}/cps/`);
      expect(opensslVerify(pem("demo-root"), pem("demo-org-auth-ca"), files.org).output).toMatch(/: OK$/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
      fs.rmSync(repo, { recursive: true, force: true });
    }
  });
});
