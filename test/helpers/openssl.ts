/** OpenSSL as the independent judge of what we issue. */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toPem } from "../../src/pki/pem.ts";

export function tempDir(prefix = "hpki-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes DER certificates as PEM files in `dir`; returns their paths. */
export function writePems(dir: string, certs: Record<string, Uint8Array>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, der] of Object.entries(certs)) {
    out[name] = path.join(dir, `${name}.pem`);
    fs.writeFileSync(out[name], toPem(der));
  }
  return out;
}

/** `openssl verify -x509_strict`; returns {ok, output}. */
export function opensslVerify(rootPem: string, intermediatePem: string | null, leafPem: string, extra: string[] = []): { ok: boolean; output: string } {
  const args = ["verify", "-x509_strict", ...extra, "-CAfile", rootPem, ...(intermediatePem ? ["-untrusted", intermediatePem] : []), leafPem];
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

/** `openssl x509 -text -noout` of a PEM file. */
export function opensslText(pem: string): string {
  return execFileSync("openssl", ["x509", "-in", pem, "-noout", "-text"], { encoding: "utf8" });
}

/**
 * Runs a command asynchronously (stdout and stderr together): for tests whose server under test
 * lives in this process, where spawnSync would block it.
 */
export function runAsync(cmd: string, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ ok: code === 0, out }));
  });
}
