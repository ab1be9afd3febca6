/**
 * Revocation and CRL/ARL generation on a real SoftHSM2 token and database (a fresh PostgreSQL
 * database), judged by OpenSSL: `openssl crl -verify`, `openssl verify
 * -crl_check`, reason codes and invalidityDate in `openssl crl -text`, crlNumber monotonic under
 * concurrency, and refused revocations that leave no trace.
 */
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IaContext } from "../../src/ia/context.ts";
import { generateCrl, loadCrlPolicy } from "../../src/ia/crl-generation.ts";
import { revokeCertificate, type RevocationRequest } from "../../src/ia/revocation.ts";
import { toPem } from "../../src/pki/pem.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { parseCrl } from "../unit/helpers/crl-asn1.ts";

const by = { actor: "test", role: "ia" };
const repo = path.resolve(import.meta.dirname, "../..");

describe("revocation and CRLs on SoftHSM2 + database", () => {
  let ia: TestIa;
  let ctx: IaContext;
  let work: string;
  const certs: Record<string, { serialHex: string; file: string }> = {};
  const pem = (name: string) => ia.pem(name);
  const count = (table: string) => ia.count(table);
  const maxCrlNumber = async (caName: string) =>
    Number((await ctx.db("crls").join("certificate_authorities as a", "a.id", "crls.ca_id").where("a.name", caName).max({ n: "crl_number" }).first())?.n ?? 0);
  const deps = () => ({ db: ctx.db, keys: ctx.keys, policy: loadCrlPolicy() });
  const openssl = (...args: string[]) => {
    const r = spawnSync("openssl", args, { encoding: "utf8" });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };
  const writeCrl = (name: string, der: Buffer) => {
    const file = path.join(work, `${name}.crl.pem`);
    fs.writeFileSync(file, toPem(der, "X509 CRL"));
    return file;
  };
  const revoke = (req: Partial<RevocationRequest> & { serialHex: string }) =>
    revokeCertificate(ctx.db, { caName: "demo-sign-ca", reason: "keyCompromise", ...req }, by);

  beforeAll(async () => {
    ia = await openTestIa("hpki-crl");
    ({ ctx, work } = ia);
    await runDemoCeremony(ctx, by);
    fs.writeFileSync(path.join(work, "chain.pem"), fs.readFileSync(pem("demo-root"), "utf8") + fs.readFileSync(pem("demo-sign-ca"), "utf8"));
    const profile = ctx.policies.profiles.get("sign")!;
    for (const name of ["compromised", "held", "good"]) {
      const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
      const subject = parseSubscriberSubject({
        hcRole: "Medical Doctor",
        subscriberId: `CRL-${name.toUpperCase()}`,
        name: { latin: `Taro ${name}`, kanji: "山田　太郎" },
        organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
      }, profile, ctx.policies.hcRoles);
      const c = await ctx.issuance.issue({ profile: "sign", subject, subjectPublicKeyInfo: spki }, by);
      const f = path.join(work, `${name}.pem`);
      fs.writeFileSync(f, toPem(c.der));
      certs[name] = { serialHex: c.serialHex, file: f };
    }
  });
  afterAll(async () => ia?.cleanup());

  it("revokes and holds, audited; the CRL verifies and OpenSSL shows reasons and invalidityDate", async () => {
    const audit = await count("audit_log");
    const r1 = await revoke({ serialHex: certs.compromised.serialHex.toLowerCase(), invalidityDate: new Date("2026-01-02T03:04:05Z") });
    expect(r1).toMatchObject({ action: "revoked", reason: "keyCompromise", serialHex: certs.compromised.serialHex, subject: "end-entity" });
    const r2 = await revoke({ serialHex: certs.held.serialHex, reason: "certificateHold" });
    expect(r2.action).toBe("held");
    expect(await count("audit_log")).toBe(audit + 2);
    const actions = (await ctx.db("audit_log").orderBy("seq", "desc").limit(2).select("action")).map((r) => r.action);
    expect(actions.sort()).toEqual(["certificate.held", "certificate.revoked"]);

    const crl = await generateCrl(deps(), "demo-sign-ca", by);
    expect(crl).toMatchObject({ kind: "crl", entries: 2 });
    const file = writeCrl("sign-1", crl.der);
    const v = openssl("crl", "-in", file, "-noout", "-verify", "-CAfile", path.join(work, "chain.pem"));
    expect(v.out).toContain("verify OK");
    const text = openssl("crl", "-in", file, "-noout", "-text").out;
    expect(text).toContain("Version 2 (0x1)");
    expect(text).toMatch(new RegExp(`Serial Number: ${certs.compromised.serialHex}\\s+Revocation Date: [^\\n]+\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code: \\n\\s+Key Compromise\\s+Invalidity Date: \\n\\s+Jan  2 03:04:05 2026 GMT`));
    expect(text).toMatch(new RegExp(`Serial Number: ${certs.held.serialHex}[\\s\\S]+?Certificate Hold`));
    expect(text).toMatch(/Authority Key Identifier: \s+keyid:[0-9A-F:]+\s+DirName:[^\n]*DEMO HPKI Root CA V2[^\n]*\s+serial:/);
    // Sorted by serial, as our CRLs always are.
    const serials = parseCrl(crl.der).entries.map((e) => e.serial.toString("hex"));
    expect(serials).toEqual([...serials].sort());
    const stored = async (n: number) => Buffer.from((await ctx.db("crls").join("certificate_authorities as a", "a.id", "crls.ca_id")
      .where({ "a.name": "demo-sign-ca", crl_number: n }).first("der")).der);
    expect((await stored(crl.crlNumber)).equals(crl.der)).toBe(true);
    // Stored in pieces joined by the database (the path of large CRLs): the same bytes.
    const chunked = await generateCrl(deps(), "demo-sign-ca", by, { storeChunkBytes: 100 });
    expect(chunked.der.length).toBeGreaterThan(700);
    expect((await stored(chunked.crlNumber)).equals(chunked.der)).toBe(true);
  });

  it("openssl verify -crl_check: the revoked certificate is revoked, the good one OK", async () => {
    const crl = writeCrl("sign-check", (await generateCrl(deps(), "demo-sign-ca", by)).der);
    const check = (cert: string) =>
      openssl("verify", "-crl_check", "-CAfile", pem("demo-root"), "-untrusted", pem("demo-sign-ca"), "-CRLfile", crl, cert);
    const revoked = check(certs.compromised.file);
    expect(revoked.ok).toBe(false);
    expect(revoked.out).toContain("certificate revoked");
    expect(check(certs.held.file).out).toContain("certificate revoked");
    expect(check(certs.good.file)).toMatchObject({ ok: true });
    expect(check(certs.good.file).out).toMatch(/: OK/);
  });

  it("removeFromCRL releases a hold: the next CRL omits it and has a higher crlNumber", async () => {
    const before = await generateCrl(deps(), "demo-sign-ca", by);
    expect((await revoke({ serialHex: certs.held.serialHex, reason: "removeFromCRL" })).action).toBe("hold-released");
    const after = await generateCrl(deps(), "demo-sign-ca", by);
    expect(after.crlNumber).toBe(before.crlNumber + 1);
    expect(after.entries).toBe(before.entries - 1);
    expect(parseCrl(after.der).entries.map((e) => e.serial.toString("hex").toUpperCase())).not.toContain(certs.held.serialHex);
    const crl = writeCrl("sign-released", after.der);
    expect(openssl("verify", "-crl_check", "-CAfile", pem("demo-root"), "-untrusted", pem("demo-sign-ca"), "-CRLfile", crl, certs.held.file).ok).toBe(true);
    // A hold can be put again and then made permanent; the revocationDate of the hold stays.
    const held = await revoke({ serialHex: certs.held.serialHex, reason: "certificateHold" });
    const permanent = await revoke({ serialHex: certs.held.serialHex, reason: "privilegeWithdrawn" });
    expect(permanent).toMatchObject({ action: "hold-converted", revokedAt: held.revokedAt });
  });

  it("refuses unknown CA, unknown serial, double revocation, bad reason, bad dates and stray releases — no rows, no audit", async () => {
    const rows = await count("revocations");
    const audit = await count("audit_log");
    const cases: [Partial<RevocationRequest> & { serialHex: string }, string, RegExp][] = [
      [{ serialHex: "0123456789" }, "UNKNOWN_SERIAL", /no certificate with serial 0123456789 .*シリアル番号/],
      [{ serialHex: certs.good.serialHex, caName: "demo-auth-ca" }, "UNKNOWN_SERIAL", /demo-auth-ca/],
      [{ serialHex: certs.good.serialHex, caName: "no-such-ca" }, "UNKNOWN_CA", /no CA named "no-such-ca".*存在しません/],
      [{ serialHex: certs.compromised.serialHex }, "ALREADY_REVOKED", /already revoked \(keyCompromise\).*既に失効/],
      [{ serialHex: certs.good.serialHex, reason: "fellInRiver" }, "BAD_REASON", /unknown revocation reason "fellInRiver".*失効理由/],
      [{ serialHex: certs.good.serialHex, reason: "cACompromise" }, "BAD_REASON", /cACompromise/],
      [{ serialHex: certs.good.serialHex, reason: "removeFromCRL" }, "NOT_ON_HOLD", /not on hold/],
      [{ serialHex: certs.good.serialHex, invalidityDate: new Date(Date.now() + 86_400_000) }, "BAD_DATE", /future/],
      [{ serialHex: "xyz" }, "BAD_SERIAL", /not a serial number/],
    ];
    for (const [req, code, message] of cases) {
      const err = await revoke(req).then(() => null, (e: Error & { code?: string }) => e);
      expect(err, JSON.stringify(req)).not.toBeNull();
      expect(err!.code).toBe(code);
      expect(err!.message).toMatch(message);
    }
    expect(await count("revocations")).toBe(rows);
    expect(await count("audit_log")).toBe(audit);
  });

  it("the root's ARL lists a revoked issuing CA under a critical IDP onlyContainsCACerts, and verifies", async () => {
    const orgCa = await ctx.db("certificate_authorities").where({ name: "demo-org-auth-ca" }).first("serial_hex");
    const r = await revokeCertificate(ctx.db, { caName: "demo-root", serialHex: orgCa.serial_hex, reason: "cACompromise" }, by);
    expect(r).toMatchObject({ subject: "ca", action: "revoked" });
    const arl = await generateCrl(deps(), "demo-root", by);
    expect(arl).toMatchObject({ kind: "arl", entries: 1, crlNumber: 1 });
    const file = writeCrl("arl", arl.der);
    expect(openssl("crl", "-in", file, "-noout", "-verify", "-CAfile", pem("demo-root")).out).toContain("verify OK");
    const text = openssl("crl", "-in", file, "-noout", "-text").out;
    expect(text).toMatch(/Issuing Distribution Point: critical\s+Full Name:\s+URI:http:\/\/localhost:8080\/crl\/demo-root.crl\s+Only CA Certificates/);
    expect(text).toMatch(new RegExp(`Serial Number: ${orgCa.serial_hex}[\\s\\S]+?CA Compromise`));
    // -crl_check_all with the ARL: a sign certificate under the (unrevoked) sign CA still verifies.
    const signCrl = writeCrl("sign-all", (await generateCrl(deps(), "demo-sign-ca", by)).der);
    const all = openssl("verify", "-crl_check_all", "-CAfile", pem("demo-root"), "-untrusted", pem("demo-sign-ca"), "-CRLfile", file, "-CRLfile", signCrl, certs.good.file);
    expect(all.out).toMatch(/: OK/);
  });

  it("drops entries whose certificate expired before thisUpdate − keepExpiredHours (policies/crl.yaml)", async () => {
    const policy = loadCrlPolicy();
    const row = await ctx.db("revocations").where({ serial_hex: certs.compromised.serialHex }).first("not_after");
    const notAfter = new Date(row.not_after).getTime();
    const keep = policy.issuing.keepExpiredHours * 3_600_000;
    const onTime = await generateCrl(deps(), "demo-sign-ca", by, { now: () => new Date(notAfter + keep - 1000) });
    const late = await generateCrl(deps(), "demo-sign-ca", by, { now: () => new Date(notAfter + keep + 1000) });
    const listed = (der: Buffer) => parseCrl(der).entries.map((e) => e.serial.toString("hex").toUpperCase());
    expect(listed(onTime.der)).toContain(certs.compromised.serialHex);
    expect(listed(late.der)).not.toContain(certs.compromised.serialHex);
    expect(late.nextUpdate.getTime() - late.thisUpdate.getTime()).toBe(policy.issuing.validityHours * 3_600_000);
  });

  it("crlNumber is strictly increasing under in-process concurrency, with small keyset pages", async () => {
    const start = await maxCrlNumber("demo-sign-ca");
    const results = await Promise.all(Array.from({ length: 4 }, () => generateCrl(deps(), "demo-sign-ca", by, { pageSize: 1 })));
    expect(results.map((r) => r.crlNumber).sort((a, b) => a - b)).toEqual([1, 2, 3, 4].map((i) => start + i));
    for (const r of results) expect(parseCrl(r.der).crlNumber).toBe(BigInt(r.crlNumber));
  });

  it.runIf(!!process.env.DATABASE_URL)("crlNumber never goes backwards with two generator processes racing (Postgres)", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: ia.home, DATABASE_URL: ia.databaseUrl };
    delete env.PKCS11_MODULE;
    delete env.HPKI_HSM_PIN;
    const runOne = (i: number) => new Promise<{ crlNumber: number }>((resolve, reject) => {
      const out = path.join(work, `race-${i}.crl`);
      const p = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "crl", "generate", "--ca", "demo-sign-ca", "--out", out, "--json"], { cwd: repo, env });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      p.on("close", (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split("\n").at(-1)!)) : reject(new Error(stderr))));
    });
    const before = await maxCrlNumber("demo-sign-ca");
    const [a, b] = await Promise.all([runOne(1), runOne(2)]);
    expect([a.crlNumber, b.crlNumber].sort((x, y) => x - y)).toEqual([before + 1, before + 2]);
    // A restart (new process) continues from the stored maximum.
    const c = await runOne(3);
    expect(c.crlNumber).toBe(before + 3);
  }, 60_000);
});
