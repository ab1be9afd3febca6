/**
 * An installation without the optional GPL-3.0 package @nucypher/umbral-pre (`npm ci
 * --omit=optional`), for real: a child Node process in which the package cannot be resolved
 * (test/helpers/hide-umbral.mjs). Every 組織暗号 operation fails with PreUnavailableError and its
 * bilingual reason (the PO box answers it as 503 pre_unavailable, src/pobox/server.ts), while
 * envelopes to persons still work; with the package present the same code loads it.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const repo = path.resolve(import.meta.dirname, "../..");
const probe = `
const pre = await import("./src/pki/pre.ts");
const env = await import("./src/pki/envelope.ts");
const { execFileSync } = await import("node:child_process");
const out = {};
for (const [name, op] of [["generatePreKeyPair", () => pre.generatePreKeyPair()], ["encapsulate", () => pre.encapsulate(new Uint8Array(33), new Uint8Array(32))]]) {
  try { await op(); out[name] = "ran"; } catch (e) { out[name] = { name: e.name, en: e.message, ja: e.messageJa, cause: e.cause?.code }; }
}
// A person's envelope needs no Umbral: sealed to an EC reader certificate made by OpenSSL.
const der = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
  "-subj", "/CN=reader", "-addext", "keyUsage=critical,keyAgreement", "-outform", "DER"]);
out.personEnvelopeBytes = (await env.sealEnvelope(Buffer.from("紹介状"), [der])).length;
console.log(JSON.stringify(out));`;

const run = (hide: boolean) => JSON.parse(execFileSync(process.execPath, [...(hide ? ["--import", "./test/helpers/hide-umbral.mjs"] : []), "--import", "tsx", "--input-type=module", "-e", probe], { cwd: repo, encoding: "utf8" }));

describe("organisational encryption without @nucypher/umbral-pre", () => {
  it("fails with PreUnavailableError and its reason in English and Japanese", () => {
    const out = run(true);
    for (const op of ["generatePreKeyPair", "encapsulate"]) {
      expect(out[op]).toMatchObject({ name: "PreUnavailableError", cause: "ERR_MODULE_NOT_FOUND" });
      expect(out[op].en).toContain("npm ci (without --omit=optional)");
      expect(out[op].ja).toContain("組織暗号");
    }
    expect(out.personEnvelopeBytes).toBeGreaterThan(200);
  });

  it("with the package installed, the same calls run", () => {
    expect(run(false)).toMatchObject({ generatePreKeyPair: "ran" });
  });
});
