/**
 * `hpki ocsp init` and `hpki serve --role repo` as an operator runs them: real processes, the
 * embedded SoftHSM (CA token and a separate OCSP token), the database.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

const repo = path.resolve(import.meta.dirname, "../..");

describe("hpki ocsp init / serve --role repo", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);

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
    expect(made.map((r) => [r.caName, r.result]).sort()).toEqual([["demo-auth-ca", "created"], ["demo-org-auth-ca", "created"], ["demo-sign-ca", "created"]]);
    const again = hpki("ocsp", "init");
    expect(again.code, again.err).toBe(0);
    expect(again.out.match(/unchanged/g)).toHaveLength(3);
    const g = hpki("crl", "generate", "--ca", "demo-sign-ca", "--out", path.join(cli.home, "sign.crl"));
    expect(g.code, g.err).toBe(0);

    // The repository in its own process.
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: cli.home };
    delete env.PKCS11_MODULE;
    delete env.HPKI_HSM_PIN;
    env.DATABASE_URL = cli.dbUrl;
    const serve = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "repo", "--port", "0", "--json"], { cwd: repo, env });
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
      const crl = await fetch(`${url}/crl/demo-sign-ca.crl`);
      expect(crl.status).toBe(200);
      expect(crl.headers.get("content-type")).toBe("application/pkix-crl");
      const cert = await fetch(`${url}/certs/demo-root.cer`);
      expect(cert.headers.get("content-type")).toBe("application/pkix-cert");
      // The OCSP endpoint answers; a body that is not an OCSPRequest gets malformedRequest.
      const garbage = await fetch(`${url}/ocsp`, { method: "POST", headers: { "Content-Type": "application/ocsp-request" }, body: "x" });
      expect(Buffer.from(await garbage.arrayBuffer()).toString("hex")).toBe("30030a0101");
    } finally {
      const exited = new Promise((r) => serve.once("exit", r));
      serve.kill("SIGTERM");
      await exited;
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
