/**
 * HSM fault injection against a real `hpki serve --role ia,repo` (embedded SoftHSM2): the CA and
 * OCSP token directories ($HPKI_HOME/hsm/tokens/<uuid>) moved away and back while the server runs,
 * and probes for what operators see — CRL generation on the IA console (POST /ia/cas/<ca>/crl),
 * live OCSP (a request with a nonce, so the responder key on the OCSP token signs) and /healthz.
 * Shared by test/integration/hsm-token-loss.test.ts and `npm run bench -- faults-hsm`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { encodeOcspRequest } from "../../src/pki/ocsp-request.ts";
import { certificateSubjectAndSpki, encodeCertId, issuerHashes } from "../../src/pki/ocsp-response.ts";
import { totpCodeAt } from "../../src/operators/operators.ts";
import { ConsoleClient } from "../../src/web/console/client.ts";
import type { CliHarness } from "./cli.ts";

const repo = path.resolve(import.meta.dirname, "../..");

/** The issuing CA whose CRL and OCSP are probed (policies/ceremony.demo.yaml). */
export const FAULT_CA = "demo-sign-ca";

/** A running server with a signed-in IA operator and the probes. */
export interface FaultServer {
  url: string;
  /** POST /ia/cas/<FAULT_CA>/crl as JSON: HTTP status, Retry-After and, on failure, the error body. */
  generateCrl(): Promise<{ status: number; retryAfter: string | null; body: any }>;
  /** A live (nonce) OCSP request for a random serial: the OCSPResponseStatus (0 successful, 2 internalError, 3 tryLater). */
  liveOcsp(): Promise<number>;
  /** GET /healthz, parsed. */
  health(): Promise<{ status: string; hsm: { token: string; state: string; since: string; lastError?: string }[] }>;
  /** stderr of the server so far (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * On a CLI harness: the demo ceremony, OCSP responders and an ia_operator, then `hpki serve --role
 * ia,repo` on a free port, signed in to the IA console. @throws when a step fails (with its output).
 */
export async function startFaultServer(cli: CliHarness): Promise<FaultServer> {
  const must = (...args: string[]) => {
    const r = cli.hpki(...args);
    if (r.code !== 0) throw new Error(`hpki ${args.join(" ")}: exit ${r.code}\n${r.err}${r.out}`);
    return r;
  };
  must("ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json");
  must("ocsp", "init", "--json");
  const op = must("operators", "add", "--username", "ia-faults", "--role", "ia_operator", "--json").json() as { password: string; totpSecret: string };

  const child = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), "serve", "--role", "ia,repo", "--port", "0", "--json"], { cwd: repo, env: cli.env() });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]).url);
    });
    child.on("close", (code) => reject(new Error(`hpki serve exited ${code}: ${err}`)));
  });
  try {
    const ia = new ConsoleClient(url, "/ia");
    await ia.signIn("ia-faults", op.password, await totpCodeAt(op.totpSecret));
    const caDer = Buffer.from(await (await fetch(`${url}/certs/${FAULT_CA}.cer`)).arrayBuffer());
    const { subject, spki } = certificateSubjectAndSpki(caDer);
    const h = issuerHashes("sha256", subject, spki);
    return {
      url,
      async generateCrl() {
        const r = await ia.postJson(`/cas/${FAULT_CA}/crl`, {});
        return { status: r.status, retryAfter: r.headers.get("retry-after"), body: r.status === 200 ? r.json() : safeJson(r.text) };
      },
      async liveOcsp() {
        const certId = encodeCertId("sha256", h.issuerNameHash, h.issuerKeyHash, Buffer.concat([Buffer.from([0x11]), randomBytes(15)]));
        const res = await fetch(`${url}/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: new Uint8Array(encodeOcspRequest([certId], randomBytes(16))) });
        return ocspResponseStatus(Buffer.from(await res.arrayBuffer()));
      },
      async health() {
        return (await fetch(`${url}/healthz`)).json() as Promise<any>;
      },
      stderr: () => err,
      stop: () => stopChild(child),
    };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** responseStatus of a DER OCSPResponse (RFC 6960 §4.2.1: SEQUENCE { ENUMERATED, … }). */
export function ocspResponseStatus(der: Buffer): number {
  if (der[0] !== 0x30) throw new Error(`not an OCSPResponse: ${der.subarray(0, 8).toString("hex")}`);
  const lenOctets = der[1] & 0x80 ? 1 + (der[1] & 0x7f) : 1;
  const p = 1 + lenOctets;
  if (der[p] !== 0x0a || der[p + 1] !== 1) throw new Error(`OCSPResponse without responseStatus: ${der.subarray(0, 12).toString("hex")}`);
  return der[p + 2];
}

/** The directory of the SoftHSM2 token labelled `label` under `tokenDir` (token.object holds the 32-byte padded label). */
export function tokenDirectory(tokenDir: string, label: string): string {
  const padded = Buffer.from(label.padEnd(32, " "));
  for (const d of fs.readdirSync(tokenDir)) {
    const obj = path.join(tokenDir, d, "token.object");
    if (fs.existsSync(obj) && fs.readFileSync(obj).includes(padded)) return path.join(tokenDir, d);
  }
  throw new Error(`no SoftHSM token labelled "${label}" under ${tokenDir}`);
}

/** The CA and OCSP token directories of `home`, with move-away and move-back. */
export function tokenDirectories(home: string): { ca: string; ocsp: string; moveAway(): void; moveBack(): void } {
  const cfg = loadConfig({ HPKI_HOME: home });
  const ca = tokenDirectory(cfg.softhsmTokenDir, cfg.caTokenLabel);
  const ocsp = tokenDirectory(cfg.softhsmTokenDir, cfg.ocspTokenLabel);
  // Away on the same filesystem (rename is atomic, as an operator's mv is), outside the token directory.
  const away = (d: string) => path.join(path.dirname(cfg.softhsmTokenDir), `away-${path.basename(d)}`);
  return {
    ca,
    ocsp,
    moveAway() {
      for (const d of [ca, ocsp]) fs.renameSync(d, away(d));
    },
    moveBack() {
      for (const d of [ca, ocsp]) fs.renameSync(away(d), d);
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `everyMs` until it returns true; resolves with the milliseconds from
 * `since` (a Date.now() value) to the first success. @throws after `giveUpMs` with `what`.
 */
export async function msUntil(probe: () => Promise<boolean>, since: number, what: string, everyMs = 50, giveUpMs = 120_000): Promise<number> {
  for (;;) {
    if (await probe()) return Date.now() - since;
    if (Date.now() - since > giveUpMs) throw new Error(`${what}: no success within ${giveUpMs} ms`);
    await sleep(everyMs);
  }
}
