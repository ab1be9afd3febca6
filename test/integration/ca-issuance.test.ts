/**
 * The CA core end to end on a real SoftHSM2 token and a real PostgreSQL database: key ceremony, card issuance, CSR issuance, lint refusal,
 * bad input, idempotency and crash recovery — every certificate judged by OpenSSL.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueOntoCard, provisionCards } from "../../src/ia/cards.ts";
import { parseCeremonyFile } from "../../src/ia/ceremony-file.ts";
import { runCeremony } from "../../src/ia/ceremony.ts";
import type { IaContext } from "../../src/ia/context.ts";
import { IssuanceService } from "../../src/ia/issuance.ts";
import { csrKeyPolicy } from "../../src/ia/csr-policy.ts";
import { checkCsrKey, parseCertificationRequest } from "../../src/pki/csr.ts";
import { extractHcRoles } from "../../src/pki/hcrole.ts";
import { SubjectError, parseSubscriberSubject, withDnsNames } from "../../src/pki/subject.ts";
import { DEMO_CEREMONY, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { opensslText, opensslVerify, writePems } from "../helpers/openssl.ts";

const by = { actor: "test", role: "ia" };
const doctor = {
  hcRole: "Medical Doctor",
  subscriberId: "TEST000001",
  name: { latin: "Taro Yamada", kanji: "山田　太郎" },
  organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
};

describe("CA core on SoftHSM2 + database", () => {
  let ia: TestIa;
  let ctx: IaContext;
  let work: string;
  // Variants of the demo file (a changed entry, a second hierarchy) are made from its text.
  const ceremonyText = fs.readFileSync(DEMO_CEREMONY, "utf8");
  const count = (table: string) => ia.count(table);
  const pem = (name: string) => ia.pem(name);

  beforeAll(async () => {
    ia = await openTestIa("hpki");
    ({ ctx, work } = ia);
  });
  afterAll(async () => ia?.cleanup());

  it("runs the key ceremony: root + four issuing CAs (three HPKI, one encryption CA of ours) that OpenSSL accepts", async () => {
    const out = await runDemoCeremony(ctx, by);
    expect(out.map((o) => [o.name, o.result])).toEqual([
      ["demo-root", "created"], ["demo-sign-ca", "created"], ["demo-auth-ca", "created"], ["demo-org-auth-ca", "created"], ["demo-enc-ca", "created"],
    ]);
    for (const ca of ["demo-sign-ca", "demo-auth-ca", "demo-org-auth-ca", "demo-enc-ca"]) {
      const v = opensslVerify(pem("demo-root"), null, pem(ca));
      expect(v.output).toMatch(/: OK$/);
      const text = opensslText(pem(ca));
      expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
      expect(text).toContain("URI:http://localhost:8080/crl/demo-root.crl");
    }
    expect(opensslText(pem("demo-sign-ca"))).toContain("Policy: 1.2.392.100495.1.5.1.1.3.1");
    expect(opensslText(pem("demo-auth-ca"))).toContain("Policy: 1.2.392.100495.1.5.1.2.3.1");
    expect(opensslText(pem("demo-enc-ca"))).toContain("Policy: 2.25.57087179820280253529867260599402626756.1.3");
    expect(opensslText(pem("demo-root"))).toMatch(/Subject: .*NOT THE REAL MHLW ROOT/);
    // The CA private keys are in the HSM, sensitive and never extractable.
    const key = await ctx.keys.findKey("demo-root-ca-v2");
    expect(await ctx.keys.keyAttributes(key!)).toMatchObject({ sensitive: true, extractable: false });
  });

  it("re-running the ceremony changes nothing and says so", async () => {
    const pemBefore = fs.readFileSync(pem("demo-sign-ca"), "utf8");
    const audit = await count("audit_log");
    const out = await runDemoCeremony(ctx, by);
    expect(out.every((o) => o.result === "unchanged")).toBe(true);
    expect(fs.readFileSync(pem("demo-sign-ca"), "utf8")).toBe(pemBefore);
    expect(await count("certificate_authorities")).toBe(5);
    expect(await count("audit_log")).toBe(audit);
  });

  it("refuses a ceremony file that changes an existing CA, touching nothing", async () => {
    const changed = parseCeremonyFile(ceremonyText.replace("HPKI-01-DemoAuthCA-forAuthentication-forIndividual", "Another Name"), "changed.yaml");
    await expect(runCeremony({ db: ctx.db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: ctx.cfg.repoDir }, changed, by))
      .rejects.toThrow(/demo-auth-ca.*differs/);
    expect(await count("certificate_authorities")).toBe(5);
  });

  it("issues sign and auth-person certificates onto a card: key made on the card, certificate written back", async () => {
    const [card] = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, 1, by);
    expect(card.label).toMatch(/^card-/);
    const mailer = fs.readFileSync(card.pinMailer, "utf8");
    expect(fs.statSync(card.pinMailer).mode & 0o777).toBe(0o600);
    const pin = /PIN: (\d+)/.exec(mailer)![1];
    // The PIN is in the mailer only: not in the database or the audit log.
    const dbDump = JSON.stringify([await ctx.db("cards"), await ctx.db("audit_log").select("details")]);
    expect(dbDump).not.toContain(pin);

    const certs: Record<string, Buffer> = {};
    for (const profileName of ["sign", "auth-person"]) {
      const profile = ctx.policies.profiles.get(profileName)!;
      const subject = parseSubscriberSubject(doctor, profile, ctx.policies.hcRoles);
      const c = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: card.label, pin, profile: profileName, subject }, by);
      certs[profileName] = c.der;
      expect(extractHcRoles(c.der).map((r) => r.codeDataFreeText)).toEqual(["Medical Doctor"]);
    }
    const files = writePems(work, certs);
    expect(opensslVerify(pem("demo-root"), pem("demo-sign-ca"), files.sign).output).toMatch(/: OK$/);
    expect(opensslVerify(pem("demo-root"), pem("demo-auth-ca"), files["auth-person"]).output).toMatch(/: OK$/);
    const text = opensslText(files.sign);
    expect(text).toMatch(/Key Usage: critical\s+Non Repudiation\s/);
    expect(text).toMatch(/Certificate Policies: critical\s+Policy: 1\.2\.392\.100495\.1\.5\.1\.1\.0\.1/);
    expect(text).toContain("URI:http://localhost:8080/crl/demo-sign-ca.crl");
    expect(text).toMatch(/Subject: C = JP, O = Tokyo Chuo Hospital, CN = Taro Yamada, serialNumber = TEST000001/);
    // Extensions in the order the real HPKI certificates carry them (HPKI-PROFILE §3.2).
    const order = ["Authority Key Identifier", "Subject Key Identifier", "Key Usage", "Subject Alternative Name",
      "CRL Distribution Points", "Subject Directory Attributes", "Certificate Policies"].map((e) => text.indexOf(`X509v3 ${e}`));
    expect(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]))).toBe(true);
    expect(text).toMatch(/Authority Key Identifier: \s+keyid:[0-9A-F:]+\s+DirName:\/C=JP\/O=hpki-ca DEMO - not MHLW\/.*\s+serial:[0-9A-F:]+/);
    expect(text).toMatch(/DirName:\/C=JP\/O=.*\/CN=.*\/serialNumber=TEST000001/); // kanji name in the SAN
    expect(text).toMatch(/Subject Directory Attributes: \s+[\s\S]*Medical Doctor/);
    expect(text).not.toContain("Basic Constraints");
    expect(text).toMatch(/Not Before: .* 15:00:00 \d{4} GMT/);
    expect(text).toMatch(/Not After : .* 14:59:59 \d{4} GMT/);

    // On the card: both certificates, each with its key's CKA_ID; the keys are sensitive and never extractable.
    const session = await ctx.cards.openCard(card.label, pin);
    try {
      const onCard = await session.listCertificates();
      expect(onCard.map((c) => c.der.toString("hex")).sort()).toEqual([certs.sign, certs["auth-person"]].map((d) => d.toString("hex")).sort());
      for (const c of onCard) {
        expect(await session.keyAttributes(c.id)).toMatchObject({ sensitive: true, extractable: false, neverExtractable: true, local: true });
      }
    } finally {
      session.close();
    }
    expect((await ctx.db("cards").where({ label: card.label }).first()).status).toBe("personalized");

    // Retrying the same card issuance returns the same certificate, and writes nothing twice.
    const profile = ctx.policies.profiles.get("sign")!;
    const again = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: card.label, pin, profile: "sign", subject: parseSubscriberSubject(doctor, profile, ctx.policies.hcRoles) }, by);
    expect(again.existing).toBe(true);
    expect(again.der.equals(certs.sign)).toBe(true);
  });

  it("refuses a wrong card PIN clearly and changes nothing", async () => {
    const [card] = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, 1, by);
    const before = await count("certificates");
    const profile = ctx.policies.profiles.get("sign")!;
    await expect(issueOntoCard(ctx.db, ctx.cards, ctx.issuance, {
      cardLabel: card.label, pin: "00000000x", profile: "sign", subject: parseSubscriberSubject(doctor, profile, ctx.policies.hcRoles),
    }, by)).rejects.toThrow(/PIN/);
    expect(await count("certificates")).toBe(before);
  });

  it("issues from a CSR with proof of possession; a replayed request returns the same certificate", async () => {
    const key = path.join(work, "org.key");
    const csrFile = path.join(work, "org.csr");
    // The CN is a host name too, but not one the SAN carries: TLS must match the SAN only.
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", "/CN=cn.tokyo-chuo.example",
      "-addext", "subjectAltName=DNS:ehr.tokyo-chuo.example,DNS:EHR2.Tokyo-Chuo.example", "-out", csrFile], { stdio: "ignore" });
    const csr = await parseCertificationRequest(fs.readFileSync(csrFile));
    expect(csr.dnsNames).toEqual(["ehr.tokyo-chuo.example", "EHR2.Tokyo-Chuo.example"]);
    const profile = ctx.policies.profiles.get("auth-org")!;
    checkCsrKey(csr, csrKeyPolicy(profile));
    const fromFile = parseSubscriberSubject({ subscriberId: "ORG0001", name: { latin: "cn.tokyo-chuo.example" }, organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" } }, profile, ctx.policies.hcRoles);
    // Without a host name from the subject file or the CSR, auth-org is refused before anything is written.
    expect(() => withDnsNames(fromFile, profile, [])).toThrow(SubjectError);
    const subject = withDnsNames(fromFile, profile, csr.dnsNames);
    const req = { profile: "auth-org", subject, subjectPublicKeyInfo: csr.subjectPublicKeyInfo, requestKey: "csr:test-1" };
    const first = await ctx.issuance.issue(req, by);
    const files = writePems(work, { org: first.der });
    expect(opensslVerify(pem("demo-root"), pem("demo-org-auth-ca"), files.org).output).toMatch(/: OK$/);
    expect(opensslText(files.org)).toMatch(/X509v3 Subject Alternative Name: \n\s+DNS:ehr\.tokyo-chuo\.example, DNS:ehr2\.tokyo-chuo\.example\n/);
    // A TLS server certificate for both SAN names (RFC 6125 §6.4.4), checked strictly by OpenSSL;
    // the CN's name fails: OpenSSL does not fall back to the CN when SAN dNSNames are present.
    const asServer = (host: string) => opensslVerify(pem("demo-root"), pem("demo-org-auth-ca"), files.org, ["-purpose", "sslserver", "-verify_hostname", host]);
    expect(asServer("ehr.tokyo-chuo.example").output).toMatch(/: OK$/);
    expect(asServer("ehr2.tokyo-chuo.example").output).toMatch(/: OK$/);
    const byCn = asServer("cn.tokyo-chuo.example");
    expect(byCn.ok).toBe(false);
    expect(byCn.output).toContain("hostname mismatch");
    // The certificate certifies the CSR's key: OpenSSL's view of both public keys matches.
    const certKey = execFileSync("openssl", ["x509", "-in", files.org, "-noout", "-pubkey"], { encoding: "utf8" });
    const csrKey = execFileSync("openssl", ["req", "-in", csrFile, "-noout", "-pubkey"], { encoding: "utf8" });
    expect(certKey).toBe(csrKey);
    const before = await count("certificates");
    const replay = await ctx.issuance.issue(req, by);
    expect(replay).toMatchObject({ existing: true, serialHex: first.serialHex });
    expect(await count("certificates")).toBe(before);
  });

  it("refuses bad CSRs with clear errors", async () => {
    const gen = (args: string[]) => {
      const f = path.join(work, `bad-${Math.random().toString(36).slice(2)}.csr`);
      execFileSync("openssl", ["req", "-new", "-nodes", "-keyout", `${f}.key`, "-subj", "/CN=x", "-out", f, ...args], { stdio: "ignore" });
      return fs.readFileSync(f);
    };
    const policy = csrKeyPolicy(ctx.policies.profiles.get("sign")!);
    const rowsBefore = await count("certificates");
    const weak = await parseCertificationRequest(gen(["-newkey", "rsa:1024"]));
    expect(() => checkCsrKey(weak, policy)).toThrow(/1024|weak/i);
    const ec = await parseCertificationRequest(gen(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]));
    expect(() => checkCsrKey(ec, policy)).toThrow();
    const good = gen(["-newkey", "rsa:2048"]);
    const tampered = Buffer.from(good.toString("utf8").replace(/-----BEGIN[^\n]*\n|-----END[^\n]*\n?|\n/g, ""), "base64");
    tampered[tampered.length - 5] ^= 0x01;
    await expect(parseCertificationRequest(tampered)).rejects.toMatchObject({ code: "bad-signature" });
    await expect(parseCertificationRequest(Buffer.from("not a certification request at all"))).rejects.toMatchObject({ code: "malformed" });
    await expect(parseCertificationRequest(gen(["-newkey", "ed25519"]))).rejects.toMatchObject({ code: "unsupported-algorithm" });
    expect(await count("certificates")).toBe(rowsBefore);
  });

  it("refuses bad subject files before anything is written", async () => {
    const profile = ctx.policies.profiles.get("sign")!;
    const bad = [
      { ...doctor, hcRole: "Wizard" },
      { ...doctor, hcRole: "Director of Hospital", organization: undefined },
      { ...doctor, name: { latin: "", kanji: "山田　太郎" } },
      { ...doctor, name: { latin: "Taro\u0007Yamada", kanji: "山田　太郎" } },
      { ...doctor, name: { latin: "x".repeat(65), kanji: "山田　太郎" } },
    ];
    for (const s of bad) expect(() => parseSubscriberSubject(s, profile, ctx.policies.hcRoles)).toThrow();
  });

  it("lint refuses a tbsCertificate that breaks the profile: nothing signed, no row", async () => {
    const signs: number[] = [];
    const countingKeys = Object.create(ctx.keys, {
      sign: { value: (k: unknown, tbs: Uint8Array) => (signs.push(1), ctx.keys.sign(k as never, tbs)) },
    });
    const svc = new IssuanceService(ctx.db, countingKeys, ctx.policies.profiles);
    const profile = ctx.policies.profiles.get("sign")!;
    // A P-256 key where the sign profile allows only RSA-2048 (the CSR check is bypassed on purpose).
    const ecSpki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" });
    const before = await count("certificates");
    await expect(svc.issue({ profile: "sign", subject: parseSubscriberSubject(doctor, profile, ctx.policies.hcRoles), subjectPublicKeyInfo: ecSpki }, by))
      .rejects.toMatchObject({ name: "LintError" });
    expect(signs).toHaveLength(0);
    expect(await count("certificates")).toBe(before);
  });

  it("a crash between intent and signature is recovered without a lost or duplicate certificate", async () => {
    let fail = true;
    const flakyKeys = Object.create(ctx.keys, {
      sign: { value: (k: unknown, tbs: Uint8Array) => (fail ? Promise.reject(new Error("HSM gone")) : ctx.keys.sign(k as never, tbs)) },
    });
    const svc = new IssuanceService(ctx.db, flakyKeys, ctx.policies.profiles);
    const profile = ctx.policies.profiles.get("sign")!;
    const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const req = { profile: "sign", subject: parseSubscriberSubject(doctor, profile, ctx.policies.hcRoles), subjectPublicKeyInfo: spki, requestKey: "crash-1" };
    await expect(svc.issue(req, by)).rejects.toThrow("HSM gone");
    const intent = await ctx.db("certificates").where({ request_key: "crash-1" }).first();
    expect(intent.status).toBe("intent");
    fail = false;
    const done = await svc.resumeIntents(by);
    expect(done.map((d) => d.serialHex)).toEqual([intent.serial_hex]);
    const retry = await svc.issue(req, by);
    expect(retry).toMatchObject({ existing: true, serialHex: intent.serial_hex });
    expect(await ctx.db("certificates").where({ request_key: "crash-1" })).toHaveLength(1);
    const files = writePems(work, { recovered: retry.der });
    expect(opensslVerify(pem("demo-root"), pem("demo-sign-ca"), files.recovered).output).toMatch(/: OK$/);
  });

  it("records every CA and certificate in the audit log", async () => {
    const actions = (await ctx.db("audit_log").select("action")).map((r) => r.action);
    expect(actions.filter((a) => a === "ca.created")).toHaveLength(5);
    const issued = await count("certificates");
    expect(actions.filter((a) => a === "certificate.issued")).toHaveLength(issued);
  });

  // Last: it adds a second hierarchy, after which each profile has two issuing CAs.
  it("two ceremonies racing create each key exactly once", async () => {
    const race = parseCeremonyFile(ceremonyText.replaceAll("demo-", "race-"), "race.yaml");
    const deps = { db: ctx.db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: ctx.cfg.repoDir };
    const [a, b] = await Promise.all([runCeremony(deps, race, by), runCeremony(deps, race, by)]);
    const results = [a, b].map((r) => r.map((o) => o.result).join(",")).sort();
    expect(results).toEqual(["created,created,created,created,created", "unchanged,unchanged,unchanged,unchanged,unchanged"]);
    // findKey refuses (KEY_AMBIGUOUS) when a label names more than one key.
    for (const e of [race.root, ...race.issuingCAs]) expect(await ctx.keys.findKey(e.key.label)).not.toBeNull();
    await ctx.db("certificate_authorities").where("name", "like", "race-%").select("name").then((rows) => expect(rows).toHaveLength(5));
  });
});
