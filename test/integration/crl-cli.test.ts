/** `hpki revoke` and `hpki crl generate` as an operator runs them: real process, SoftHSM, database. */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

// One test spawns the CLI eight times (~1–3 s each, more on a loaded 2-core machine).
describe("hpki revoke / crl generate", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);

  beforeAll(async () => {
    cli = await openCliHarness("hpki-crl-cli-");
  });
  afterAll(async () => {
    await cli?.cleanup();
  });

  it("revokes an issuing CA on the root, refuses bad input, and writes an ARL OpenSSL verifies", () => {
    expect(hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json").code).toBe(0);
    const cas = hpki("ca", "list", "--json").json().cas as { name: string; serialHex: string }[];
    const org = cas.find((c) => c.name === "demo-org-auth-ca")!;

    const bad = hpki("revoke", "--ca", "demo-root", "--serial", org.serialHex, "--reason", "lostIt", "--json");
    expect(bad.code).toBe(1);
    expect(bad.json()).toMatchObject({ code: "BAD_REASON" });
    const badDate = hpki("revoke", "--ca", "demo-root", "--serial", org.serialHex, "--reason", "keyCompromise", "--invalidity-date", "2026-01-01");
    expect(badDate.code).toBe(1);
    expect(badDate.err).toMatch(/ISO 8601.*タイムゾーン/);

    const r = hpki("revoke", "--ca", "demo-root", "--serial", org.serialHex, "--reason", "keyCompromise", "--invalidity-date", "2026-01-01T00:00:00Z", "--json");
    expect(r.code, r.err).toBe(0);
    expect(r.json()).toMatchObject({ action: "revoked", reason: "keyCompromise", subject: "ca", invalidityDate: "2026-01-01T00:00:00.000Z" });
    // The revoking command regenerated the root's ARL itself (issue 11 §2): ARL #1 lists it.
    expect(r.json().status.crl).toMatchObject({ crlNumber: 1, entries: 1 });
    const again = hpki("revoke", "--ca", "demo-root", "--serial", org.serialHex, "--reason", "keyCompromise");
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already revoked/);

    const out = path.join(cli.home, "arl.crl");
    const g = hpki("crl", "generate", "--ca", "demo-root", "--out", out, "--json");
    expect(g.code, g.err).toBe(0);
    expect(g.json()).toMatchObject({ kind: "arl", crlNumber: 2, entries: 1, out });
    const v = spawnSync("openssl", ["crl", "-inform", "der", "-in", out, "-noout", "-verify", "-CAfile", path.join(cli.home, "repo", "demo-root.pem")], { encoding: "utf8" });
    expect(`${v.stdout}${v.stderr}`).toContain("verify OK");
    const text = hpki("crl", "generate", "--ca", "demo-sign-ca", "--out", path.join(cli.home, "sign.crl"));
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/demo-sign-ca\s+crl\s+1\s/);
  });
});
