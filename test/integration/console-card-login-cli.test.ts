/**
 * `hpki operators bind-card|unbind-card|list|disable` as an administrator runs them: the
 * operator's authentication certificate (issued by our CA onto a SoftHSM card) is verified, then
 * its holder is bound to the operator and the binding audited; a second binding of the same holder
 * and a certificate that is not an authentication certificate are refused. The card (signing with
 * `hpki card login`) then signs in to the RA console over HTTP; once unbound — or once the operator
 * is disabled — the same card is refused. Real processes, real card, real database.
 */
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { ConsoleClient } from "../../src/web/console/client.ts";
import { openDatabase } from "../../src/store/db.ts";
import { startServer } from "../../src/cli/role-factories.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

describe("hpki operators bind-card", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);
  beforeAll(async () => {
    cli = await openCliHarness("hpki-bind-card-");
  });
  afterAll(async () => cli?.cleanup());

  let card: { label: string; pinMailer: string };
  let pinFile: string;
  const pems: Record<string, string> = {};

  it("binds a verified authentication certificate once", () => {
    expect(hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml").code).toBe(0);
    card = hpki("cards", "provision", "--count", "1", "--json").json().cards[0];
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
    pinFile = path.join(cli.home, "pin");
    fs.writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
    const subject = path.join(cli.home, "subject.json");
    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Medical Doctor", subscriberId: "OPSCLI01", name: { latin: "Jiro Tanaka", kanji: "田中　次郎" } }));
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

  /**
   * Runs the RA console on the harness database in this process (closed again
   * afterwards) and signs in
   * with the card: the challenge is signed by `hpki card login` (a child process, card only).
   * Returns the sign-in response and the audit records the attempt wrote.
   */
  async function cardSignIn(): Promise<{ status: number; body: any; audit: { action: string; actor: string; details: Record<string, unknown> }[] }> {
    const cfg = loadConfig({ HPKI_HOME: cli.home, HPKI_SESSION_SECRET: "card-unbind-console-secret-0123456789" });
    const db = await openDatabase(cfg, { databaseUrl: cli.dbUrl });
    const server = await startServer({ cfg, db, roles: ["ra"], port: 0 });
    try {
      const before = Number((await db("audit_log").max({ n: "seq" }).first())?.n ?? 0);
      const c = new ConsoleClient(server.url, "/ra");
      const challenge = (await c.getJson("/login/card")).json().challenge as string;
      const file = path.join(cli.home, "challenge.txt");
      fs.writeFileSync(file, challenge);
      const signed = hpki("card", "login", "--card", card.label, "--challenge-file", file, "--pin-file", pinFile);
      expect(signed.code, signed.err).toBe(0);
      const r = await c.postJson("/login/card", signed.json());
      if (r.status === 200) expect((await c.getJson("/")).json().operator.username).toBe("ra-card");
      else expect((await c.getJson("/")).status).toBe(401);
      const audit = (await db("audit_log").where("seq", ">", before).orderBy("seq").select("action", "actor", "details"))
        .map((a) => ({ action: a.action as string, actor: a.actor as string, details: typeof a.details === "string" ? JSON.parse(a.details) : a.details }));
      return { status: r.status, body: r.json(), audit };
    } finally {
      await server.close();
      await db.destroy();
    }
  }

  it("lists the binding, signs in with the card, and refuses the card once unbound (by certificate serial)", async () => {
    const list = hpki("operators", "list", "--json");
    expect(list.code, list.err).toBe(0);
    const op = list.json().operators.find((o: { username: string }) => o.username === "ra-card");
    expect(op.cards).toEqual([expect.objectContaining({ subscriberId: "OPSCLI01", issuer: expect.stringContaining("CN="), boundBy: expect.stringMatching(/^cli:/) })]);
    expect(hpki("operators", "list").out).toMatch(/card bindings[\s\S]*ra-card\s+OPSCLI01/);

    const ok = await cardSignIn();
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.audit.find((a) => a.action === "operator.login")).toMatchObject({ actor: "ra-card", details: { method: "card", subscriberId: "OPSCLI01" } });

    // Refused, nothing changed: no selector, two selectors, a serial naming no bound holder (the
    // same person's signature certificate comes from another CA), an unknown subscriber id.
    const authSerial = new X509Certificate(fs.readFileSync(pems["auth-person"])).serialNumber;
    const signSerial = new X509Certificate(fs.readFileSync(pems.sign)).serialNumber;
    for (const args of [[], ["--all", "--subscriber-id", "OPSCLI01"], ["--serial", signSerial], ["--subscriber-id", "OPSCLI99"], ["--serial", "not-hex"]]) {
      const r = hpki("operators", "unbind-card", "--username", "ra-card", ...args, "--json");
      expect(r.code, args.join(" ")).toBe(1);
    }
    const noMatch = hpki("operators", "unbind-card", "--username", "ra-card", "--serial", signSerial);
    expect(noMatch.err).toContain("no card binding");
    expect(noMatch.err).toContain("登録がありません");
    expect(noMatch.err).toContain("OPSCLI01"); // what is bound
    expect(hpki("operators", "unbind-card", "--username", "nobody", "--all").code).toBe(1);

    // The serial as a person types it: lower case with colons.
    const typed = authSerial.toLowerCase().match(/../g)!.join(":");
    const r = hpki("operators", "unbind-card", "--username", "ra-card", "--serial", typed, "--json");
    expect(r.code, r.err).toBe(0);
    expect(r.json()).toMatchObject({ username: "ra-card", unbound: [expect.objectContaining({ subscriberId: "OPSCLI01" })] });
    const again = hpki("operators", "unbind-card", "--username", "ra-card", "--all");
    expect(again.code).toBe(1);
    expect(again.err).toContain("カードは登録されていません");
    expect(hpki("operators", "list", "--json").json().operators.find((o: { username: string }) => o.username === "ra-card").cards).toEqual([]);

    const refused = await cardSignIn();
    expect(refused.status).toBe(401);
    expect(refused.body.errorJa).toContain("登録されていません");
    expect(refused.audit.find((a) => a.action === "operator.login_failed")).toMatchObject({ actor: "card:OPSCLI01", details: { reason: "unbound", method: "card" } });
    expect(refused.audit.some((a) => a.action === "operator.login")).toBe(false);
  });

  it("refuses the card of a disabled operator; unbind-card --all removes the binding, audited", async () => {
    expect(hpki("operators", "bind-card", "--username", "ra-card", "--cert", pems["auth-person"]).code).toBe(0);
    expect(hpki("operators", "disable", "--username", "ra-card").code).toBe(0);
    const refused = await cardSignIn();
    expect(refused.status).toBe(401);
    expect(refused.body.errorJa).toContain("無効化");
    expect(refused.audit.find((a) => a.action === "operator.login_failed")).toMatchObject({ actor: "ra-card", details: { reason: "disabled" } });

    const r = hpki("operators", "unbind-card", "--username", "ra-card", "--all", "--json");
    expect(r.code, r.err).toBe(0);
    expect(r.json().unbound).toHaveLength(1);
    expect(hpki("operators", "enable", "--username", "ra-card").code).toBe(0);
    expect((await cardSignIn()).status).toBe(401); // enabled again, but no card bound

    const cfg = loadConfig({ HPKI_HOME: cli.home });
    const db = await openDatabase(cfg, { databaseUrl: cli.dbUrl });
    try {
      const unbound = await db("audit_log").where({ action: "operator.card_unbound" }).orderBy("seq").select("actor", "role", "details");
      expect(unbound).toHaveLength(2);
      const details = unbound.map((u) => (typeof u.details === "string" ? JSON.parse(u.details) : u.details));
      expect(unbound.every((u) => /^cli:/.test(u.actor) && u.role === "admin")).toBe(true);
      expect(details[0]).toMatchObject({ username: "ra-card", subscriberId: "OPSCLI01", serial: expect.stringMatching(/^[0-9A-F]+$/) });
      expect(details[1]).toMatchObject({ username: "ra-card", subscriberId: "OPSCLI01" });
      expect(await db("operator_certificates").count({ n: "*" }).first()).toMatchObject({ n: 0 });
    } finally {
      await db.destroy();
    }
    const audit = hpki("audit", "verify");
    expect(audit.code, audit.err).toBe(0);
  });
});
