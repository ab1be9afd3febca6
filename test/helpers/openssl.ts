/** OpenSSL as the independent judge of what we issue. */
import { execFileSync, spawnSync } from "node:child_process";
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
