/**
 * The repository role over real HTTP (startServer on port 0) on a real SoftHSM2 and database
 * (a fresh PostgreSQL database): CRLs and CA certificates at the URLs the
 * certificates carry, with ETag / Last-Modified / 304; `openssl verify -crl_check` on CRLs fetched
 * over HTTP; `openssl ocsp` as the client of our responder (POST, with and without nonce, SHA-1
 * and SHA-256 CertIDs, -CAfile and -VAfile), GET requests, malformedRequest, unauthorized; and the
 * status scheduler carrying a revocation into the CRL and OCSP.
 */
import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IaContext } from "../../src/ia/context.ts";
import { loadCrlPolicy } from "../../src/ia/crl-generation.ts";
import { CrlScheduler } from "../../src/ia/crl-scheduler.ts";
import { IssuanceService } from "../../src/ia/issuance.ts";
import { ensureOcspResponders, type OcspResponderOutcome } from "../../src/ia/ocsp-responders.ts";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { exportOcspResponses } from "../../src/ocsp/export.ts";
import { OcspPresigner } from "../../src/ocsp/presigner.ts";
import { loadOcspPolicy } from "../../src/ocsp/responders.ts";
import { toPem } from "../../src/pki/pem.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { OcspResponderService } from "../../src/repo/ocsp-responder.ts";
import { startServer, type StartedServer } from "../../src/web/server.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { startNginx } from "../helpers/nginx.ts";
import { runAsync } from "../helpers/openssl.ts";

const by = { actor: "test", role: "ia" };

describe("repository role: CRLs, CA certificates and OCSP over HTTP", () => {
  let ia: TestIa;
  let ctx: IaContext;
  let work: string;
  let server: StartedServer;
  let scheduler: CrlScheduler;
  let responders: OcspResponderOutcome[];
  const certs: Record<string, { serialHex: string; file: string }> = {};
  const file = (name: string) => path.join(work, name);
  const run = runAsync;
  const issue = async (name: string) => {
    const profile = ctx.policies.profiles.get("sign")!;
    const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const subject = parseSubscriberSubject({
      hcRole: "Medical Doctor",
      subscriberId: `REPO-${name.toUpperCase()}`,
      name: { latin: `Taro ${name}`, kanji: "山田　太郎" },
    }, profile, ctx.policies.hcRoles);
    const c = await ctx.issuance.issue({ profile: "sign", subject, subjectPublicKeyInfo: spki }, by);
    fs.writeFileSync(file(`${name}.pem`), toPem(c.der));
    certs[name] = { serialHex: c.serialHex, file: file(`${name}.pem`) };
  };
  /** `openssl ocsp` against our responder for `cert`; extra args before -cert (e.g. -sha256, -no_nonce). */
  const ocsp = (target: string[], ...extra: string[]) =>
    run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), ...extra, ...target, "-url", `${server.url}/ocsp`, "-CAfile", file("chain.pem"));
  const crlUrl = (ca: string) => `${server.url}/crl/${ca}.crl`;
  const fetchCrlPem = async (ca: string) => {
    const res = await fetch(crlUrl(ca));
    expect(res.status).toBe(200);
    const f = file(`${ca}-http.crl.pem`);
    fs.writeFileSync(f, toPem(Buffer.from(await res.arrayBuffer()), "X509 CRL"));
    return f;
  };

  beforeAll(async () => {
    ia = await openTestIa("hpki-repo");
    ({ ctx, work } = ia);
    await runDemoCeremony(ctx, by);
    fs.writeFileSync(file("chain.pem"), fs.readFileSync(ia.pem("demo-root"), "utf8") + fs.readFileSync(ia.pem("demo-sign-ca"), "utf8"));
    for (const name of ["good", "compromised", "later", "instant", "exported"]) await issue(name);
    await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.compromised.serialHex, reason: "keyCompromise" }, by);
    scheduler = new CrlScheduler({
      db: ctx.db,
      keys: ctx.keys,
      crlPolicy: loadCrlPolicy(),
      ocsp: { keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() },
      by,
      pollMs: 200,
      onError: (e) => {
        throw e;
      },
    });
    const first = await scheduler.tick();
    expect(first.crls.map((c) => c.caName).sort()).toEqual(["demo-auth-ca", "demo-enc-ca", "demo-org-auth-ca", "demo-root", "demo-sign-ca"]);
    expect(first.responders.sort()).toEqual(["demo-auth-ca", "demo-enc-ca", "demo-org-auth-ca", "demo-sign-ca"]);
    expect(first.ocsp?.signed["demo-sign-ca"]).toBe(5);
    // Nothing changed since: the next tick generates no CRL and signs nothing.
    const idle = await scheduler.tick();
    expect(idle.crls).toEqual([]);
    expect(idle.ocsp?.total).toBe(0);
    responders = await ensureOcspResponders({ db: ctx.db, caKeys: ctx.keys, ocspKeys: ctx.ocspKeys().keys, policy: loadOcspPolicy() }, by);
    const sign = responders.find((r) => r.caName === "demo-sign-ca")!;
    fs.writeFileSync(file("responder.pem"), toPem(sign.certificate));
    server = await startServer({ cfg: ctx.cfg, db: ctx.db, roles: ["repo"], port: 0 });
  });
  afterAll(async () => {
    await scheduler?.stop();
    await server?.close();
    await ia?.cleanup();
  });

  it("responder certificates: issued by the CA, OCSPSigning + ocsp-nocheck, key sensitive and non-extractable on the OCSP token; init is idempotent", async () => {
    expect(responders.every((r) => r.result === "unchanged")).toBe(true);
    const text = (await run("openssl", "x509", "-in", file("responder.pem"), "-noout", "-text")).out;
    expect(text).toMatch(/X509v3 Extended Key Usage: \s+OCSP Signing/);
    expect(text).toContain("OCSP No Check");
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(text).toContain("CN = demo-sign-ca OCSP Responder");
    expect((await run("openssl", "verify", "-x509_strict", "-purpose", "ocsphelper", "-CAfile", ia.pem("demo-root"), "-untrusted", ia.pem("demo-sign-ca"), file("responder.pem"))).out).toMatch(/: OK/);
    const keys = ctx.ocspKeys();
    expect(keys.pool.tokenLabel).not.toBe(ctx.pool.tokenLabel);
    const key = (await keys.keys.findKey(responders[0].keyLabel))!;
    expect(await keys.keys.keyAttributes(key)).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
    // The CA token holds no responder key.
    expect(await ctx.keys.findKey(responders[0].keyLabel)).toBeNull();
  });

  it("serves each CRL at the path of its CRLDP URL with ETag, Last-Modified, max-age ≤ nextUpdate, and 304s", async () => {
    const res = await fetch(crlUrl("demo-sign-ca"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pkix-crl");
    const body = Buffer.from(await res.arrayBuffer());
    const latest = await ctx.db("crls").join("certificate_authorities as a", "a.id", "crls.ca_id").where("a.name", "demo-sign-ca").orderBy("crl_number", "desc").first("der", "sha256", "this_update", "next_update");
    expect(body.equals(Buffer.from(latest.der))).toBe(true);
    const etag = res.headers.get("etag")!;
    expect(etag).toBe(`"${Buffer.from(latest.sha256).toString("hex")}"`);
    expect(res.headers.get("last-modified")).toBe(new Date(latest.this_update).toUTCString());
    const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get("cache-control")!)![1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(loadOcspPolicy().repository.crlMaxAgeSeconds);
    expect(maxAge * 1000).toBeLessThanOrEqual(new Date(latest.next_update).getTime() - Date.now() + 1000);

    const inm = await fetch(crlUrl("demo-sign-ca"), { headers: { "If-None-Match": etag } });
    expect(inm.status).toBe(304);
    expect(inm.headers.get("etag")).toBe(etag);
    expect((await inm.arrayBuffer()).byteLength).toBe(0);
    expect((await fetch(crlUrl("demo-sign-ca"), { headers: { "If-None-Match": '"00"' } })).status).toBe(200);
    expect((await fetch(crlUrl("demo-sign-ca"), { headers: { "If-Modified-Since": res.headers.get("last-modified")! } })).status).toBe(304);
    expect((await fetch(crlUrl("demo-sign-ca"), { headers: { "If-Modified-Since": new Date(new Date(latest.this_update).getTime() - 10_000).toUTCString() } })).status).toBe(200);
    const head = await fetch(crlUrl("demo-sign-ca"), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(body.length);

    // The URL really is the one in the certificates: read it back from the issued certificate.
    const cdp = /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:(\S+)/.exec((await run("openssl", "x509", "-in", certs.good.file, "-noout", "-text")).out)![1];
    expect(new URL(cdp).pathname).toBe("/crl/demo-sign-ca.crl");
    expect((await fetch(`${server.url}/crl/no-such-ca.crl`)).status).toBe(404);
  });

  it("serves CA certificates as application/pkix-cert", async () => {
    const res = await fetch(`${server.url}/certs/demo-sign-ca.cer`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/pkix-cert");
    const der = Buffer.from(await res.arrayBuffer());
    fs.writeFileSync(file("sign-ca-http.cer"), der);
    expect(toPem(der)).toBe(fs.readFileSync(ia.pem("demo-sign-ca"), "utf8"));
    expect((await fetch(`${server.url}/certs/demo-sign-ca.cer`, { headers: { "If-None-Match": res.headers.get("etag")! } })).status).toBe(304);
  });

  it("openssl verify -crl_check_all with the CRL and ARL downloaded over HTTP: revoked is revoked, good is OK", async () => {
    const crl = await fetchCrlPem("demo-sign-ca");
    const arl = await fetchCrlPem("demo-root");
    const check = (cert: string) => run("openssl", "verify", "-crl_check_all", "-CAfile", ia.pem("demo-root"), "-untrusted", ia.pem("demo-sign-ca"), "-CRLfile", crl, "-CRLfile", arl, cert);
    const revoked = await check(certs.compromised.file);
    expect(revoked.ok).toBe(false);
    expect(revoked.out).toContain("certificate revoked");
    expect((await check(certs.good.file)).out).toMatch(/good\.pem: OK/);
  });

  it("openssl ocsp: good, revoked (reason and time), unknown — with the nonce (live) and with -no_nonce (pre-signed), SHA-1 and SHA-256 CertIDs", async () => {
    const revokedAt = new Date((await ctx.db("revocations").where({ serial_hex: certs.compromised.serialHex }).first("revoked_at")).revoked_at);
    const opensslTime = (d: Date) => d.toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, (_m, day, mon, y, t) => `${mon} ${String(Number(day)).padStart(2, " ")} ${t} ${y} GMT`);
    for (const digest of [[], ["-sha256"]]) {
      for (const nonce of [[], ["-no_nonce"]]) {
        const label = `${digest.join("") || "sha1"} ${nonce.join("") || "nonce"}`;
        const good = await ocsp(["-cert", certs.good.file], ...digest, ...nonce);
        expect(good.out, label).toContain("Response verify OK");
        expect(good.out, label).toMatch(/good\.pem: good\s+This Update: .+\s+Next Update: .+/);
        expect(good.out, label).not.toContain("WARNING");
        const revoked = await ocsp(["-cert", certs.compromised.file], ...digest, ...nonce);
        expect(revoked.out, label).toContain("Response verify OK");
        expect(revoked.out, label).toMatch(/compromised\.pem: revoked[\s\S]+Reason: keyCompromise\s+Revocation Time: (.+)/);
        expect(/Revocation Time: (.+)/.exec(revoked.out)![1].trim(), label).toBe(opensslTime(revokedAt));
        if (nonce.length) {
          // Without a nonce the answer is the stored pre-signed response, byte for byte.
          const out = file("presigned.der");
          await ocsp(["-cert", certs.good.file], ...digest, ...nonce, "-respout", out);
          const row = await ctx.db("ocsp_responses").where({ serial_hex: certs.good.serialHex }).first("der_sha1", "der_sha256");
          expect(fs.readFileSync(out).equals(Buffer.from(digest.length ? row.der_sha256 : row.der_sha1)), label).toBe(true);
        }
        const unknown = await ocsp(["-serial", "0x0123456789ABCDEF"], ...digest, ...nonce);
        expect(unknown.out, label).toContain("Response verify OK");
        expect(unknown.out, label).toMatch(/0x0123456789ABCDEF: unknown/);
      }
    }
  });

  it("openssl ocsp -VAfile trusts the responder certificate directly; a certificate issued after pre-signing is answered live", async () => {
    await issue("fresh");
    const r = await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-no_nonce", "-cert", certs.fresh.file, "-url", `${server.url}/ocsp`, "-VAfile", file("responder.pem"));
    expect(r.out).toContain("Response verify OK");
    expect(r.out).toMatch(/fresh\.pem: good/);
  });

  it("AIA only where a profile asks for it: the demo sign certificate carries none; a profile with authorityInfoAccess points clients at this responder", async () => {
    expect((await run("openssl", "x509", "-in", certs.good.file, "-noout", "-text")).out).not.toContain("Authority Information Access");
    const sign = ctx.policies.profiles.get("sign")!;
    const withAia = { ...sign, extensions: [...sign.extensions, { name: "authorityInfoAccess" as const, critical: false, ocspUrlTemplate: `${server.url}/ocsp` }] };
    const service = new IssuanceService(ctx.db, ctx.keys, new Map([...ctx.policies.profiles, ["sign", withAia]]));
    const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const subject = parseSubscriberSubject({ hcRole: "Pharmacist", subscriberId: "REPO-AIA", name: { latin: "Hanako Aia" } }, sign, ctx.policies.hcRoles);
    const c = await service.issue({ profile: "sign", subject, subjectPublicKeyInfo: spki }, by);
    fs.writeFileSync(file("aia.pem"), toPem(c.der));
    const url = /OCSP - URI:(\S+)/.exec((await run("openssl", "x509", "-in", file("aia.pem"), "-noout", "-text")).out)![1];
    expect(url).toBe(`${server.url}/ocsp`);
    const r = await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-cert", file("aia.pem"), "-url", url, "-CAfile", file("chain.pem"));
    expect(r.out).toContain("Response verify OK");
    expect(r.out).toMatch(/aia\.pem: good/);
  });

  it("answers the nonce: echoed in the response, so openssl reports no nonce warning and verifies", async () => {
    const r = await ocsp(["-cert", certs.good.file], "-resp_text");
    expect(r.out).toContain("Response verify OK");
    expect(r.out).toMatch(/OCSP Nonce: \s+04[0-9A-F]+/);
    expect(r.out).not.toContain("WARNING: no nonce");
  });

  it("GET /ocsp/<url-encoded base64> (RFC 6960 A.1) returns the pre-signed response with cache headers", async () => {
    const req = file("get-req.der");
    expect((await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.compromised.file, "-no_nonce", "-reqout", req)).ok).toBe(true);
    const res = await fetch(`${server.url}/ocsp/${encodeURIComponent(fs.readFileSync(req).toString("base64"))}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/ocsp-response");
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+, public, no-transform, must-revalidate/);
    expect(res.headers.get("expires")).toBeTruthy();
    fs.writeFileSync(file("get-resp.der"), Buffer.from(await res.arrayBuffer()));
    const r = await run("openssl", "ocsp", "-respin", file("get-resp.der"), "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.compromised.file, "-CAfile", file("chain.pem"), "-no_nonce");
    expect(r.out).toContain("Response verify OK");
    expect(r.out).toMatch(/compromised\.pem: revoked[\s\S]+Reason: keyCompromise/);
  });

  it("malformed requests get malformedRequest; an issuer we do not serve gets unauthorized", async () => {
    const post = async (body: Buffer) => {
      const res = await fetch(`${server.url}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: new Uint8Array(body) });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/ocsp-response");
      return Buffer.from(await res.arrayBuffer());
    };
    const malformed = Buffer.from("3003 0a01 01".replace(/ /g, ""), "hex");
    expect((await post(Buffer.from("not DER at all"))).equals(malformed)).toBe(true);
    const good = file("req.der");
    await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.good.file, "-reqout", good);
    const der = fs.readFileSync(good);
    expect((await post(der.subarray(0, der.length - 3))).equals(malformed)).toBe(true);
    expect((await post(Buffer.concat([der, Buffer.from([0])]))).equals(malformed)).toBe(true);
    expect((await fetch(`${server.url}/ocsp/${encodeURIComponent("AAAA")}`).then((r) => r.arrayBuffer())).byteLength).toBe(5);
    fs.writeFileSync(file("malformed.der"), await post(Buffer.from([0x30, 0x00])));
    expect((await run("openssl", "ocsp", "-respin", file("malformed.der"), "-resp_text", "-noverify")).out).toMatch(/Responder Error: malformedrequest \(1\)/);

    // The root has no responder (it issues only CA certificates): a CertID naming it is unauthorized.
    const rootReq = file("root-req.der");
    await run("openssl", "ocsp", "-issuer", ia.pem("demo-root"), "-cert", ia.pem("demo-sign-ca"), "-reqout", rootReq);
    fs.writeFileSync(file("unauthorized.der"), await post(fs.readFileSync(rootReq)));
    expect((await run("openssl", "ocsp", "-respin", file("unauthorized.der"), "-resp_text", "-noverify")).out).toMatch(/Responder Error: unauthorized \(6\)/);
  });

  it("a revocation with no scheduler and no re-signing: the very next -no_nonce POST and RFC 5019 GET say revoked (the revocation transaction invalidated the pre-signed response; the cached copy is dropped)", async () => {
    const reqFile = file("instant-req.der");
    expect((await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.instant.file, "-no_nonce", "-reqout", reqFile)).ok).toBe(true);
    const getUrl = `${server.url}/ocsp/${encodeURIComponent(fs.readFileSync(reqFile).toString("base64"))}`;
    const get = async () => {
      const res = await fetch(getUrl);
      fs.writeFileSync(file("instant-get.der"), Buffer.from(await res.arrayBuffer()));
      const r = await run("openssl", "ocsp", "-respin", file("instant-get.der"), "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.instant.file, "-CAfile", file("chain.pem"), "-no_nonce");
      return { out: r.out, cacheControl: res.headers.get("cache-control") };
    };
    // Pre-signed and cached in the repository (served twice).
    for (let i = 0; i < 2; i++) expect((await ocsp(["-cert", certs.instant.file], "-no_nonce")).out).toMatch(/instant\.pem: good/);
    expect((await get()).cacheControl).toMatch(/public/);
    await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.instant.serialHex, reason: "certificateHold" }, by);
    const post = await ocsp(["-cert", certs.instant.file], "-no_nonce");
    expect(post.out).toContain("Response verify OK");
    expect(post.out).toMatch(/instant\.pem: revoked[\s\S]+Reason: certificateHold/);
    const viaGet = await get();
    expect(viaGet.out).toMatch(/instant\.pem: revoked[\s\S]+Reason: certificateHold/);
    // Signed live (not cacheable) until the pre-signer re-signs the row.
    expect(viaGet.cacheControl).toBe("no-store");
    expect((await ctx.db("ocsp_responses").where({ serial_hex: certs.instant.serialHex }).first("invalidated_at", "status")).invalidated_at).not.toBeNull();
    // Releasing the hold is a status change too: good again at once, not the stored "revoked".
    const signed = await new OcspPresigner({ db: ctx.db, keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() }).signNow("demo-sign-ca", [certs.instant.serialHex], by);
    expect(signed).toBe(1);
    expect((await get()).out).toMatch(/instant\.pem: revoked/);
    await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.instant.serialHex, reason: "removeFromCRL" }, by);
    expect((await ocsp(["-cert", certs.instant.file], "-no_nonce")).out).toMatch(/instant\.pem: good/);
    expect((await get()).out).toMatch(/instant\.pem: good/);
  });

  it("a pre-signed row that does not match revocations (a pre-signer that raced a revocation) is never served", async () => {
    // Simulate the race: the stored row says good and is not invalidated, but revocations say revoked.
    await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.instant.serialHex, reason: "superseded" }, by);
    const good = await ctx.db("ocsp_responses").where({ serial_hex: certs.good.serialHex }).first("der_sha1", "der_sha256");
    await ctx.db("ocsp_responses").where({ serial_hex: certs.instant.serialHex }).update({ status: "good", revocation_time: null, revocation_reason: null, invalidated_at: null, der_sha1: good.der_sha1, der_sha256: good.der_sha256 });
    const r = await ocsp(["-cert", certs.instant.file], "-no_nonce");
    expect(r.out).toMatch(/instant\.pem: revoked[\s\S]+Reason: superseded/);
  });

  it("live signing is rate-limited per source: over the limit a nonce request gets the pre-signed response without the nonce (RFC 8954), an unknown serial tryLater", async () => {
    const policy = { ...loadOcspPolicy(), live: { perSourcePerSecond: 0.001, burst: 2 } };
    const responder = new OcspResponderService({ db: ctx.db, keys: ctx.ocspKeys().keys, policy });
    await responder.start();
    try {
      const reqOf = async (name: string, ...args: string[]) => {
        await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), ...args, "-reqout", file(name));
        return fs.readFileSync(file(name));
      };
      const withNonce = await reqOf("limit-nonce.der", "-cert", certs.good.file);
      const unknown = await reqOf("limit-unknown.der", "-serial", "0x0A0B0C0D", "-no_nonce");
      const stored = Buffer.from((await ctx.db("ocsp_responses").where({ serial_hex: certs.good.serialHex }).first("der_sha1")).der_sha1);
      const a = await responder.respond(withNonce, "192.0.2.7");
      const b = await responder.respond(withNonce, "::ffff:192.0.2.7");
      expect([a.path, b.path]).toEqual(["live", "live"]);
      const over = await responder.respond(withNonce, "192.0.2.7");
      expect(over.path).toBe("limited");
      expect(over.body.equals(stored)).toBe(true);
      fs.writeFileSync(file("limited.der"), over.body);
      const check = await run("openssl", "ocsp", "-respin", file("limited.der"), "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.good.file, "-CAfile", file("chain.pem"), "-resp_text");
      expect(check.out).toContain("Response verify OK");
      expect(check.out).not.toContain("OCSP Nonce");
      const tryLater = await responder.respond(unknown, "192.0.2.7");
      expect(tryLater.body.toString("hex")).toBe("30030a0103");
      // Another source has its own bucket; pre-signed answers are never limited.
      expect((await responder.respond(unknown, "2001:db8:1:2::99")).path).toBe("live");
      expect((await responder.respond(await reqOf("limit-plain.der", "-cert", certs.good.file, "-no_nonce"), "192.0.2.7")).path).toBe("presigned");
    } finally {
      await responder.stop();
    }
  });

  it("hpki ocsp export: nginx serves the pre-signed responses as RFC 5019 GET files (every url-encoding of the base64), with cache headers from thisUpdate/nextUpdate; a revoked certificate's file goes at the next pass and nginx passes it to the repository", async () => {
    const dir = file("export");
    const policy = loadOcspPolicy();
    const first = await exportOcspResponses(ctx.db, dir, policy);
    expect(first.written).toBeGreaterThanOrEqual(8);
    const again = await exportOcspResponses(ctx.db, dir, policy);
    expect(again.written).toBe(0);
    expect(again.watermark).toBe(first.watermark);
    const nginx = await startNginx(dir, policy, server.url);
    try {
      const row = await ctx.db("ocsp_responses").where({ serial_hex: certs.exported.serialHex }).first("der_sha1", "der_sha256", "this_update", "next_update");
      const reqOf = async (...args: string[]) => {
        // The digest option applies to the -cert after it.
        await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), ...args, "-cert", certs.exported.file, "-no_nonce", "-reqout", file("export-req.der"));
        return fs.readFileSync(file("export-req.der")).toString("base64");
      };
      for (const [b64, stored] of [[await reqOf(), row.der_sha1], [await reqOf("-sha256"), row.der_sha256]]) {
        for (const spelling of [encodeURIComponent(b64), b64, b64.replace(/\//g, "%2F")]) {
          const res = await fetch(`${nginx.url}/ocsp/${spelling}`);
          expect(res.status, spelling).toBe(200);
          expect(res.headers.get("content-type")).toBe("application/ocsp-response");
          expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(stored)), spelling).toBe(true);
          expect(res.headers.get("last-modified")).toBe(new Date(row.this_update).toUTCString());
          expect(res.headers.get("expires")).toBe(new Date(row.next_update).toUTCString());
          expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
        }
      }
      const b64 = await reqOf();
      const viaNginx = async () => {
        fs.writeFileSync(file("nginx-resp.der"), Buffer.from(await (await fetch(`${nginx.url}/ocsp/${encodeURIComponent(b64)}`)).arrayBuffer()));
        return (await run("openssl", "ocsp", "-respin", file("nginx-resp.der"), "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.exported.file, "-CAfile", file("chain.pem"), "-no_nonce")).out;
      };
      expect(await viaNginx()).toMatch(/exported\.pem: good/);
      // POST /ocsp through nginx reaches the repository.
      expect((await run("openssl", "ocsp", "-issuer", ia.pem("demo-sign-ca"), "-cert", certs.exported.file, "-url", `${nginx.url}/ocsp`, "-CAfile", file("chain.pem"))).out).toMatch(/exported\.pem: good/);

      // Another certificate's file: not rewritten by the passes below (same inode, same mtime).
      const goodRow = await ctx.db("ocsp_responses").where({ serial_hex: certs.good.serialHex }).first("der_sha1");
      const goodFile = fs.readdirSync(path.join(dir, "ocsp"), { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name))
        .find((f) => fs.readFileSync(f).equals(Buffer.from(goodRow.der_sha1)))!;
      const goodStat = fs.statSync(goodFile);
      await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.exported.serialHex, reason: "cessationOfOperation" }, by);
      const pass = await exportOcspResponses(ctx.db, dir, policy);
      expect(pass).toMatchObject({ written: 0, removed: 2 });
      expect(new Date(pass.watermark!).getTime()).toBeGreaterThan(new Date(first.watermark!).getTime());
      // No file: nginx asks the repository, which signs live.
      expect(await viaNginx()).toMatch(/exported\.pem: revoked[\s\S]+Reason: cessationOfOperation/);
      await new OcspPresigner({ db: ctx.db, keys: ctx.ocspKeys().keys, policy }).signNow("demo-sign-ca", [certs.exported.serialHex], by);
      expect((await exportOcspResponses(ctx.db, dir, policy)).written).toBe(2);
      expect(await viaNginx()).toMatch(/exported\.pem: revoked[\s\S]+Reason: cessationOfOperation/);
      expect(fs.statSync(goodFile)).toMatchObject({ ino: goodStat.ino, mtimeMs: goodStat.mtimeMs });
      expect(fs.readFileSync(path.join(dir, "nginx-ocsp.conf"), "utf8")).toContain(`expires modified +${policy.responses.validityHours}h;`);
    } finally {
      await nginx.stop();
    }
  });

  it("a revocation reaches the CRL over HTTP and the pre-signed OCSP response via the scheduler (stated: within one poll interval; here 200 ms)", async () => {
    scheduler.start({ unref: true });
    const before = await ocsp(["-cert", certs.later.file], "-no_nonce");
    expect(before.out).toMatch(/later\.pem: good/);
    await revokeCertificate(ctx.db, { caName: "demo-sign-ca", serialHex: certs.later.serialHex, reason: "affiliationChanged" }, by);
    // Wait for the effect, with the issue's stated bound (1 minute) as the only limit; no speed assertion.
    const deadline = Date.now() + 60_000;
    let crlRevoked = false;
    let ocspRevoked = false;
    while (Date.now() < deadline && !(crlRevoked && ocspRevoked)) {
      await new Promise((r) => setTimeout(r, 250));
      const crl = await fetchCrlPem("demo-sign-ca");
      crlRevoked = (await run("openssl", "verify", "-crl_check", "-CAfile", ia.pem("demo-root"), "-untrusted", ia.pem("demo-sign-ca"), "-CRLfile", crl, certs.later.file)).out.includes("certificate revoked");
      const r = await ocsp(["-cert", certs.later.file], "-no_nonce");
      ocspRevoked = /later\.pem: revoked[\s\S]+Reason: affiliationChanged/.test(r.out);
    }
    expect(crlRevoked).toBe(true);
    expect(ocspRevoked).toBe(true);
    // The pre-signed row itself says revoked (not only a live answer).
    const row = await ctx.db("ocsp_responses").where({ serial_hex: certs.later.serialHex }).first("status", "revocation_reason");
    expect(row).toMatchObject({ status: "revoked", revocation_reason: "affiliationChanged" });
    await scheduler.stop();
  });
});
