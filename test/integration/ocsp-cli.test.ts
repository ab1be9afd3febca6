/**
 * `hpki ocsp init` and `hpki serve --role repo` as an operator runs them: real processes, the
 * embedded SoftHSM (CA token and a separate OCSP token), the database.
 */
import { spawn } from "node:child_process";
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

    // The repository in its own process (PGlite: after the CLI runs above released the database).
    const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: cli.home };
    delete env.PKCS11_MODULE;
    delete env.HPKI_HSM_PIN;
    if (cli.dbUrl) env.DATABASE_URL = cli.dbUrl;
    else delete env.DATABASE_URL;
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
});
