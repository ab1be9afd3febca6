/**
 * `hpki issue recover` exactly as README.md writes it, after a real crash between recording an
 * issuance intent and signing it (HPKI_FAULT=after-intent: the process SIGKILLs itself), and
 * idempotency that cannot lie (issue 10 §4, §8): the same CSR replayed with another subject is
 * refused (409) naming the first certificate, never answered with it.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { opensslVerify } from "../helpers/openssl.ts";

const README = fs.readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");

describe("hpki issue recover and replayed request keys", { timeout: 300_000 }, () => {
  let cli: CliHarness;
  let csr: string;
  let subject: string;
  const file = (name: string) => path.join(cli.home, name);

  beforeAll(async () => {
    cli = await openCliHarness("hpki-issue-cli-");
    expect(cli.hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml").code).toBe(0);
    csr = file("server.csr");
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${csr}.key`, "-subj", "/CN=srv.example", "-out", csr], { stdio: "ignore" });
    subject = file("org.json");
    fs.writeFileSync(subject, JSON.stringify({ subscriberId: "ORG0001", name: { latin: "srv.example" }, organization: { latin: "Example Clinic" }, dnsNames: ["srv.example"] }));
  });
  afterAll(async () => cli?.cleanup());

  it("completes the intent a killed `hpki issue` left, with the command line README gives", () => {
    const line = /^npx hpki (issue recover)\s+#/m.exec(README);
    expect(line, "README documents `npx hpki issue recover`").not.toBeNull();
    const args = line![1].split(" ");
    expect(cli.hpki(...args).out).toContain("No pending intents.");

    const out = file("server.pem");
    const env = { HPKI_FAULT: "after-intent" };
    const killed = cli.hpkiEnv(env, "issue", "--profile", "auth-org", "--subject", subject, "--csr", csr, "--out", out);
    expect(killed.signal).toBe("SIGKILL");
    expect(fs.existsSync(out)).toBe(false);

    const recovered = cli.hpki(...args, "--json");
    expect(recovered.code, recovered.err).toBe(0);
    const completed = recovered.json().completed;
    expect(completed).toHaveLength(1);
    expect(completed[0].ca).toBe("demo-org-auth-ca");
    // Nothing left, and the retried command returns that certificate, not a second one.
    expect(cli.hpki(...args).out).toContain("No pending intents.");
    const again = cli.hpki("issue", "--profile", "auth-org", "--subject", subject, "--csr", csr, "--out", out, "--json");
    expect(again.code, again.err).toBe(0);
    expect(again.json()).toMatchObject({ serialHex: completed[0].serialHex, existing: true });
    expect(opensslVerify(file("repo/demo-root.pem"), file("repo/demo-org-auth-ca.pem"), out).ok).toBe(true);
  });

  it("refuses the same CSR (request key) with another subject or profile, naming the first certificate", () => {
    const first = cli.hpki("issue", "--profile", "auth-org", "--subject", subject, "--csr", csr, "--out", file("first.pem"), "--json").json();
    const other = file("other.json");
    fs.writeFileSync(other, JSON.stringify({ subscriberId: "ORG0002", name: { latin: "evil.example" }, organization: { latin: "Other Clinic" }, dnsNames: ["evil.example"] }));
    const replay = cli.hpki("issue", "--profile", "auth-org", "--subject", other, "--csr", csr, "--out", file("replay.pem"), "--json");
    expect(replay.code).toBe(1);
    expect(replay.json()).toMatchObject({ code: "conflict" });
    expect(replay.json().error).toContain(first.serialHex);
    expect(replay.json().errorJa).toContain("リクエストキー");
    expect(fs.existsSync(file("replay.pem"))).toBe(false);
    // An explicit request key reused for another profile: refused the same way.
    const keyed = (profileArgs: string[], out: string) =>
      cli.hpki("issue", ...profileArgs, "--csr", csr, "--request-key", "order-42", "--out", file(out), "--json");
    expect(keyed(["--profile", "auth-org", "--subject", subject], "k1.pem").code).toBe(0);
    const person = file("person.json");
    fs.writeFileSync(person, JSON.stringify({ hcRole: "Pharmacist", subscriberId: "P0001", name: { latin: "Hanako Sato", kanji: "佐藤　花子" } }));
    const crossed = keyed(["--profile", "sign", "--subject", person], "k2.pem");
    expect(crossed.code).toBe(1);
    expect(crossed.json().code).toBe("conflict");
    expect(fs.existsSync(file("k2.pem"))).toBe(false);
  });
});
