/**
 * `hpki operators bind-card` as an administrator runs it: the operator's authentication
 * certificate (issued by our CA onto a SoftHSM card) is verified, then its holder is bound to the
 * operator and the binding audited; a second binding of the same holder and a certificate that is
 * not an authentication certificate are refused. Real processes, real card, real database.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

describe("hpki operators bind-card", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);
  beforeAll(async () => {
    cli = await openCliHarness("hpki-bind-card-");
  });
  afterAll(async () => cli?.cleanup());

  it("binds a verified authentication certificate once", () => {
    expect(hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml").code).toBe(0);
    const card = hpki("cards", "provision", "--count", "1", "--json").json().cards[0];
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
    const subject = path.join(cli.home, "subject.json");
    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Medical Doctor", subscriberId: "OPSCLI01", name: { latin: "Jiro Tanaka", kanji: "田中　次郎" } }));
    const pems: Record<string, string> = {};
    for (const profile of ["sign", "auth-person"]) {
      pems[profile] = path.join(cli.home, `${profile}.pem`);
      const issued = hpki("issue", "--profile", profile, "--subject", subject, "--card", card.label, "--pin", pin, "--out", pems[profile]);
      expect(issued.code, issued.err).toBe(0);
    }
    expect(hpki("operators", "add", "--username", "ra-card", "--role", "ra_officer").code).toBe(0);

    const r = hpki("operators", "bind-card", "--username", "ra-card", "--cert", pems["auth-person"], "--json");
    expect(r.code, r.err).toBe(0);
    expect(r.json()).toMatchObject({ username: "ra-card", subscriberId: "OPSCLI01", boundBy: expect.stringMatching(/^cli:/) });
    expect(r.json().issuer).toContain("CN=");

    const again = hpki("operators", "bind-card", "--username", "ra-card", "--cert", pems["auth-person"]);
    expect(again.code).toBe(1);
    expect(again.err).toContain("既に");
    // The signature certificate of the same card is no authentication certificate.
    const sign = hpki("operators", "bind-card", "--username", "ra-card", "--cert", pems.sign);
    expect(sign.code).toBe(1);
    const unknown = hpki("operators", "bind-card", "--username", "nobody", "--cert", pems["auth-person"]);
    expect(unknown.code).toBe(1);

    // The binding's audit record (checked in console-card-login.test.ts) keeps the chain intact.
    const audit = hpki("audit", "verify");
    expect(audit.code, audit.err).toBe(0);
  });
});
