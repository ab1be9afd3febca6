/** The `hpki` command as an operator runs it: real process, real SoftHSM tokens, real database. */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { opensslVerify } from "../helpers/openssl.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const realCerts = path.join(repo, "test/fixtures/hpki-real/certs");

// Each test spawns the CLI several times (~1–3 s each, more on a loaded 2-core machine).
describe("hpki CLI", { timeout: 240_000 }, () => {
  let home: string;
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);

  beforeAll(async () => {
    cli = await openCliHarness("hpki-cli-");
    home = cli.home;
  });
  afterAll(async () => {
    await cli?.cleanup();
  });

  it("--help lists the commands", () => {
    const r = hpki("--help");
    expect(r.code).toBe(0);
    for (const c of ["ca", "cards", "issue", "inspect", "demo"]) expect(r.out).toContain(c);
  });

  it("inspect reads every real HPKI certificate (JSON field hcRole holds the role)", () => {
    const expected: Record<string, string | null> = {
      "medis-ee-sign-doctor-015e.der": "Medical Doctor",
      "medis-ee-sign-doctor-006f.der": "Medical Doctor",
      "medis-ee-sign-pharmacist-0164.der": "Pharmacist",
      "jma-ee-sign-doctor-8090.der": "Medical Doctor",
      "jma-ee-sign-pharmacist-83e3.der": "Pharmacist",
      "mhlw-hpki-root-ca-v2.der": null,
      "medis-sign-ca2.der": null,
      "medis-auth-ca2.der": null,
      "jma-sign-ca-jv2.der": null,
    };
    expect(fs.readdirSync(realCerts).sort()).toEqual(Object.keys(expected).sort());
    for (const [file, role] of Object.entries(expected)) {
      const r = hpki("inspect", path.join(realCerts, file), "--json");
      expect(r.code, r.err).toBe(0);
      expect(r.json().hcRole).toBe(role);
    }
    const ja = hpki("inspect", path.join(realCerts, "medis-ee-sign-doctor-015e.der"), "--lang", "ja");
    expect(ja.out).toContain("JST");
  });

  it("ca init is idempotent; cards provision; issue onto a card; errors are clear", () => {
    const init = hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json");
    expect(init.code, init.err).toBe(0);
    expect(init.json().changed).toBe(5);
    const again = hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml");
    expect(again.code).toBe(0);
    expect(again.out).toContain("Nothing changed");
    const list = hpki("ca", "list", "--json").json();
    expect(list.cas.map((c: { name: string }) => c.name)).toEqual(["demo-root", "demo-auth-ca", "demo-enc-ca", "demo-org-auth-ca", "demo-sign-ca"]);
    for (const ca of list.cas) expect(fs.existsSync(path.join(home, "repo", `${ca.name}.pem`))).toBe(true);

    const prov = hpki("cards", "provision", "--count", "1", "--json");
    expect(prov.code, prov.err).toBe(0);
    const card = prov.json().cards[0];
    expect(prov.out).not.toMatch(/PIN: /);
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];

    const subject = path.join(home, "subject.json");
    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Pharmacist", subscriberId: "CLI0001", name: { latin: "Hanako Sato", kanji: "佐藤　花子" } }));
    const out = path.join(home, "sign.pem");
    const issued = hpki("issue", "--profile", "sign", "--subject", subject, "--card", card.label, "--pin", pin, "--out", out, "--json");
    expect(issued.code, issued.err).toBe(0);
    expect(issued.json()).toMatchObject({ ca: "demo-sign-ca", hcRole: "Pharmacist", card: card.label });
    expect(opensslVerify(path.join(home, "repo/demo-root.pem"), path.join(home, "repo/demo-sign-ca.pem"), out).ok).toBe(true);
    expect(hpki("inspect", out, "--json").json().hcRole).toBe("Pharmacist");

    const wrongPin = hpki("issue", "--profile", "auth-person", "--subject", subject, "--card", card.label, "--pin", "99999999", "--out", path.join(home, "x.pem"));
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.err).toMatch(/PIN/);

    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Wizard", subscriberId: "CLI0002", name: { latin: "A B", kanji: "甲　乙" } }));
    const badRole = hpki("issue", "--profile", "sign", "--subject", subject, "--csr", out, "--out", path.join(home, "y.pem"), "--json");
    expect(badRole.code).toBe(1);
    expect(badRole.json().error).toMatch(/hcRole/);

    const garbage = path.join(home, "garbage.csr");
    fs.writeFileSync(garbage, "garbage");
    fs.writeFileSync(subject, JSON.stringify({ subscriberId: "ORG1", name: { latin: "srv.example" }, organization: { latin: "Example Clinic" } }));
    const badCsr = hpki("issue", "--profile", "auth-org", "--subject", subject, "--csr", garbage, "--out", path.join(home, "z.pem"));
    expect(badCsr.code).toBe(1);
    expect(badCsr.err).toMatch(/hpki: /);
    expect(fs.existsSync(path.join(home, "z.pem"))).toBe(false);

    // auth-org: the host name comes from the CSR's subjectAltName into SAN dNSName; without one it is refused.
    const csr = (name: string, ...extra: string[]) => {
      const f = path.join(home, `${name}.csr`);
      execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${f}.key`, "-subj", "/CN=srv.example", ...extra, "-out", f], { stdio: "ignore" });
      return f;
    };
    const noSan = hpki("issue", "--profile", "auth-org", "--subject", subject, "--csr", csr("nosan"), "--out", path.join(home, "o.pem"));
    expect(noSan.code).toBe(1);
    expect(noSan.err).toContain("needs at least one host name");
    expect(noSan.err).toContain("ホスト名が1つ以上必要です");
    const orgOut = path.join(home, "org.pem");
    const org = hpki("issue", "--profile", "auth-org", "--subject", subject, "--csr", csr("san", "-addext", "subjectAltName=DNS:portal.example-clinic.jp"), "--out", orgOut);
    expect(org.code, org.err).toBe(0);
    const asServer = (host: string) => opensslVerify(path.join(home, "repo/demo-root.pem"), path.join(home, "repo/demo-org-auth-ca.pem"), orgOut, ["-purpose", "sslserver", "-verify_hostname", host]);
    expect(asServer("portal.example-clinic.jp").ok).toBe(true);
    expect(asServer("srv.example").ok).toBe(false); // the CN: no fallback when SAN dNSNames are present
  });
});
