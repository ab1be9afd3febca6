/**
 * `hpki ocsp init` and `hpki serve --role repo` as an operator runs them: real processes, the
 * embedded SoftHSM (CA token and a separate OCSP token), the database. And `hpki revoke` next to
 * a running repository (Postgres): clients that send no nonce (`openssl ocsp -no_nonce`, an RFC
 * 5019 GET) see "revoked" the moment the command returns, and so does the CRL (issue 11 §2).
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportedFileFor } from "../../src/ocsp/export.ts";
import { toPem } from "../../src/pki/pem.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { runAsync } from "../helpers/openssl.ts";

const repo = path.resolve(import.meta.dirname, "../..");

describe("hpki ocsp init / serve --role repo", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);

  const run = runAsync;
  /** `hpki serve --role repo` in its own process: its URL once listening, and a stop. */
  const serveRepo = async () => {
    const env = cli.env();
    const serve = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "repo", "--port", "0", "--json"], { cwd: repo, env });
    const stop = async () => {
      if (serve.exitCode !== null) return;
      const exited = new Promise((r) => serve.once("exit", r));
      serve.kill("SIGTERM");
      await exited;
    };
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        let err = "";
        serve.stdout.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]).url);
        });
        serve.stderr.on("data", (d) => (err += d));
        serve.on("close", (code) => reject(new Error(`hpki serve exited ${code}: ${err}`)));
      });
      return { url, stop };
    } catch (e) {
      await stop();
      throw e;
    }
  };

  beforeAll(async () => {
    cli = await openCliHarness("hpki-ocsp-cli-");
  });
  afterAll(async () => {
    await cli?.cleanup();
  });

  it("issues one responder per issuing CA on the OCSP token, is idempotent, and the repository serves what the IA stored", async () => {
    expect(hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json").code).toBe(0);
    const first = hpki("ocsp", "init", "--json");
    expect(first.code, first.err).toBe(0);
    const made = first.json().responders as { caName: string; result: string; keyLabel: string }[];
    expect(made.map((r) => [r.caName, r.result]).sort()).toEqual([["demo-auth-ca", "created"], ["demo-enc-ca", "created"], ["demo-org-auth-ca", "created"], ["demo-sign-ca", "created"]]);
    const again = hpki("ocsp", "init");
    expect(again.code, again.err).toBe(0);
    expect(again.out.match(/unchanged/g)).toHaveLength(4);
    const g = hpki("crl", "generate", "--ca", "demo-sign-ca", "--out", path.join(cli.home, "sign.crl"));
    expect(g.code, g.err).toBe(0);

    // The repository in its own process.
    const { url, stop } = await serveRepo();
    try {
      const crl = await fetch(`${url}/crl/demo-sign-ca.crl`);
      expect(crl.status).toBe(200);
      expect(crl.headers.get("content-type")).toBe("application/pkix-crl");
      const cert = await fetch(`${url}/certs/demo-root.cer`);
      expect(cert.headers.get("content-type")).toBe("application/pkix-cert");
      // The OCSP endpoint answers; a body that is not an OCSPRequest gets malformedRequest.
      const garbage = await fetch(`${url}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: "x" });
      expect(Buffer.from(await garbage.arrayBuffer()).toString("hex")).toBe("30030a0101");
    } finally {
      await stop();
    }
  });

  it("after `hpki revoke`, with no scheduler running: openssl ocsp -no_nonce, an RFC 5019 GET and the CRL over HTTP say revoked at once; the CLI says what happened to OCSP and the CRL", async () => {
    const home = cli.home;
    const file = (n: string) => path.join(home, n);
    const caPem = file("sign-ca.pem");
    fs.writeFileSync(file("subject.json"), JSON.stringify({ hcRole: "Medical Doctor", subscriberId: "STATUS0001", name: { latin: "Taro Status", kanji: "山田　太郎" } }));
    expect(spawnSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x", "-keyout", file("k.pem"), "-out", file("req.csr")]).status).toBe(0);
    const issued = hpki("issue", "--profile", "sign", "--subject", file("subject.json"), "--csr", file("req.csr"), "--out", file("status.pem"), "--json");
    expect(issued.code, issued.err).toBe(0);
    const serial = issued.json().serialHex as string;
    expect(hpki("ocsp", "refresh").code).toBe(0);
    const exportDir = file("export");
    const exported = hpki("ocsp", "export", "--dir", exportDir, "--json");
    expect(exported.code, exported.err).toBe(0);
    expect(exported.json()).toMatchObject({ registered: true });
    expect(exported.json().written).toBeGreaterThanOrEqual(2);
    const { url, stop } = await serveRepo();
    try {
      fs.writeFileSync(caPem, toPem(Buffer.from(await (await fetch(`${url}/certs/demo-sign-ca.cer`)).arrayBuffer())));
      fs.writeFileSync(file("root.pem"), toPem(Buffer.from(await (await fetch(`${url}/certs/demo-root.cer`)).arrayBuffer())));
      fs.writeFileSync(file("chain.pem"), fs.readFileSync(file("root.pem"), "utf8") + fs.readFileSync(caPem, "utf8"));
      const noNonce = () => run("openssl", "ocsp", "-issuer", caPem, "-cert", file("status.pem"), "-no_nonce", "-url", `${url}/ocsp`, "-CAfile", file("chain.pem"));
      expect(spawnSync("openssl", ["ocsp", "-issuer", caPem, "-cert", file("status.pem"), "-no_nonce", "-reqout", file("get.der")]).status).toBe(0);
      const get = async () => {
        const res = await fetch(`${url}/ocsp/${encodeURIComponent(fs.readFileSync(file("get.der")).toString("base64"))}`);
        fs.writeFileSync(file("get-resp.der"), Buffer.from(await res.arrayBuffer()));
        const r = await run("openssl", "ocsp", "-respin", file("get-resp.der"), "-issuer", caPem, "-cert", file("status.pem"), "-CAfile", file("chain.pem"), "-no_nonce");
        return { out: r.out, cacheControl: res.headers.get("cache-control") };
      };
      // Before: the pre-signed "good", served twice so the repository holds it in its cache.
      for (let i = 0; i < 2; i++) expect((await noNonce()).out).toMatch(/status\.pem: good/);
      const before = await get();
      expect(before.out).toMatch(/status\.pem: good/);
      expect(before.cacheControl).toMatch(/max-age=\d+, public/);

      const revoked = hpki("revoke", "--ca", "demo-sign-ca", "--serial", serial, "--reason", "keyCompromise");
      expect(revoked.code, revoked.err).toBe(0);
      expect(revoked.out).toMatch(/OCSP: the pre-signed response was invalidated with the revocation and re-signed \(1 certificate\(s\)\)/);
      expect(revoked.out).toMatch(/CRL: demo-sign-ca CRL #\d+ generated \(1 entries/);
      // The registered export directory was brought up to date by the revoking command too.
      expect(revoked.out).toContain(`OCSP export: ${exportDir}: 2 file(s) written, 0 removed.`);
      const exportedFile = exportedFileFor(exportDir, fs.readFileSync(file("get.der")));
      const fromFile = await run("openssl", "ocsp", "-respin", exportedFile, "-issuer", caPem, "-cert", file("status.pem"), "-CAfile", file("chain.pem"), "-no_nonce");
      expect(fromFile.out).toMatch(/status\.pem: revoked[\s\S]+Reason: keyCompromise/);

      // No waiting: the very next requests.
      const after = await noNonce();
      expect(after.out).toContain("Response verify OK");
      expect(after.out).toMatch(/status\.pem: revoked[\s\S]+Reason: keyCompromise/);
      const afterGet = await get();
      expect(afterGet.out).toContain("Response verify OK");
      expect(afterGet.out).toMatch(/status\.pem: revoked[\s\S]+Reason: keyCompromise/);
      fs.writeFileSync(file("http.crl"), Buffer.from(await (await fetch(`${url}/crl/demo-sign-ca.crl`)).arrayBuffer()));
      const crl = await run("openssl", "crl", "-inform", "DER", "-in", file("http.crl"), "-noout", "-text");
      expect(crl.out.replace(/\s/g, "")).toContain(`SerialNumber:${serial}`);
    } finally {
      await stop();
    }
  });

  it("--workers runs the repository in several processes on one port and refuses the IA", async () => {
    const ia = hpki("serve", "--role", "ia,repo", "--workers", "2");
    expect(ia.code).toBe(1);
    expect(ia.err).toContain("ia must run in one process");
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: cli.home, DATABASE_URL: cli.dbUrl };
    delete env.PKCS11_MODULE;
    delete env.HPKI_HSM_PIN;
    const serve = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "repo", "--port", "0", "--workers", "2", "--json"], { cwd: repo, env });
    let workers: number[] = [];
    try {
      const started = await new Promise<{ url: string; workers: number[] }>((resolve, reject) => {
        let out = "";
        let err = "";
        serve.stdout.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
        });
        serve.stderr.on("data", (d) => (err += d));
        serve.on("close", (code) => reject(new Error(`hpki serve exited ${code}: ${err}`)));
      });
      workers = started.workers;
      expect(workers).toHaveLength(2);
      for (const pid of workers) expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
      const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${started.url}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: "x" }).then(async (r) => Buffer.from(await r.arrayBuffer()).toString("hex"))));
      expect(new Set(answers)).toEqual(new Set(["30030a0101"]));
      expect((await fetch(`${started.url}/crl/demo-sign-ca.crl`)).status).toBe(200);
    } finally {
      const exited = new Promise((r) => serve.once("exit", r));
      serve.kill("SIGTERM");
      await exited;
    }
    // The workers went with the primary.
    for (const pid of workers) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });
});
