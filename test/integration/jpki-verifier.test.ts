/**
 * The PO box's JPKI verifier (issue 15 §8, src/pobox/jpki-verifier.ts) fails closed, against a
 * simulated JPKI CA made with OpenSSL: no anchor configured → refused; no CRL → revocation-unknown;
 * a current CRL → the good certificate passes and the revoked one is refused; a certificate without
 * the JPKI auth policy or the digitalSignature key usage is refused.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPemOrDer } from "../../src/pki/pem.ts";
import { JpkiVerifier } from "../../src/pobox/jpki-verifier.ts";
import { simulatedJpkiCa, type JpkiSim, type JpkiUser } from "../helpers/jpki-sim.ts";
import { tempDir } from "../helpers/openssl.ts";

let dir: string;
let sim: JpkiSim;
let good: JpkiUser;
let revoked: JpkiUser;

beforeAll(() => {
  dir = tempDir("jpki-verifier-");
  sim = simulatedJpkiCa(path.join(dir, "ca"));
  good = sim.issue("good");
  revoked = sim.issue("revoked");
  sim.revoke(revoked);
  sim.gencrl();
}, 120_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("JpkiVerifier", () => {
  it("refuses everything without a configured anchor", async () => {
    await expect(new JpkiVerifier({ anchors: [], crls: [] }).verify(good.der)).rejects.toMatchObject({ code: "untrusted-issuer" });
  });

  it("refuses with revocation-unknown when no CRL is configured or readable", async () => {
    const anchors = [fs.readFileSync(sim.rootFile)];
    await expect(new JpkiVerifier({ anchors, crls: [] }).verify(good.der)).rejects.toMatchObject({ code: "revocation-unknown" });
    const old = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await expect(new JpkiVerifier({ anchors, crls: [path.join(dir, "missing.crl")] }).verify(good.der)).rejects.toMatchObject({ code: "revocation-unknown" });
    } finally {
      process.stderr.write = old;
    }
  });

  it("passes a good certificate and refuses a revoked one with a current CRL", async () => {
    const v = new JpkiVerifier({ anchors: [fs.readFileSync(sim.rootFile)], crls: [sim.crlFile] });
    const p = await v.verify(good.der);
    expect(p.issuers).toHaveLength(1);
    await expect(v.verify(revoked.der)).rejects.toMatchObject({ code: "revoked" });
  });

  it("refuses a certificate of the same CA without the JPKI auth policy or digitalSignature", async () => {
    const v = new JpkiVerifier({ anchors: [fs.readFileSync(sim.rootFile)], crls: [sim.crlFile] });
    const csr = path.join(dir, "x.csr");
    const key = path.join(dir, "x.key");
    const ext = path.join(dir, "x.ext");
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", "/C=JP/CN=NOPOLICY", "-out", csr], { stdio: "ignore" });
    const issue = (extLines: string) => {
      fs.writeFileSync(ext, extLines);
      const out = path.join(dir, `x-${Date.now()}.pem`);
      execFileSync("openssl", ["x509", "-req", "-in", csr, "-CA", sim.rootFile, "-CAkey", path.join(sim.dir, "root.key"), "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", out], { stdio: "ignore" });
      return fromPemOrDer(fs.readFileSync(out));
    };
    await expect(v.verify(issue("keyUsage = critical,digitalSignature\n"))).rejects.toMatchObject({ code: "wrong-policy" });
    await expect(v.verify(issue("keyUsage = critical,keyEncipherment\ncertificatePolicies = 1.2.392.200149.8.5.1.3.30\n"))).rejects.toMatchObject({ code: "wrong-key-usage" });
  });
});
