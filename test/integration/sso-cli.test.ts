/**
 * The SSO commands as an operator and a card holder run them: `hpki sso clients add|list|update|disable|enable|rotate-secret`,
 * `hpki card login` (the card signs the challenge; the signature verifies with the certificate's
 * key) and `hpki sso links confirm`. Real processes, real SoftHSM card, real database.
 */
import { spawn } from "node:child_process";
import { createPublicKey, verify, X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

describe("hpki sso / hpki card login", { timeout: 240_000 }, () => {
  let cli: CliHarness;
  const hpki = (...args: string[]) => cli.hpki(...args);
  beforeAll(async () => {
    cli = await openCliHarness("hpki-sso-cli-");
  });
  afterAll(async () => cli?.cleanup());

  it("registers a client and prints its secret once; the database keeps only a hash", () => {
    const r = hpki("sso", "clients", "add", "--id", "emr", "--redirect-uri", "https://emr.example/cb", "--allowed-hcrole", "Medical Doctor", "--json");
    expect(r.code, r.err).toBe(0);
    const secret = r.json().clientSecret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const list = hpki("sso", "clients", "list", "--json");
    expect(list.json().clients).toEqual([expect.objectContaining({ clientId: "emr", allowedHcRoles: ["Medical Doctor"], accountMapping: "linked" })]);
    expect(list.out).not.toContain(secret);
    const dup = hpki("sso", "clients", "add", "--id", "emr", "--redirect-uri", "https://emr.example/cb");
    expect(dup.code).toBe(1);
    expect(dup.err).toContain("既に登録されています");
    const bad = hpki("sso", "clients", "add", "--id", "x y", "--redirect-uri", "not a url", "--json");
    expect(bad.code).toBe(1);
    expect(bad.json().code).toBe("BAD_INPUT");

    // Consent defaults and JWT access tokens (issue 14 §7).
    const jwt = hpki("sso", "clients", "add", "--id", "lab", "--redirect-uri", "https://lab.example/cb", "--default-scope", "hcrole", "--default-scope", "subscriber",
      "--access-token-format", "jwt", "--access-token-audience", "https://lab.example/api", "--json");
    expect(jwt.code, jwt.err).toBe(0);
    expect(jwt.json()).toMatchObject({ defaultScopes: ["openid", "hcrole", "subscriber"], accessTokenFormat: "jwt", accessTokenAudience: "https://lab.example/api" });
    const noAud = hpki("sso", "clients", "update", "--id", "emr", "--access-token-format", "jwt", "--json");
    expect(noAud.code).toBe(1);
    expect(noAud.out, noAud.out + noAud.err).toContain("audience");
    const upd = hpki("sso", "clients", "update", "--id", "lab", "--access-token-format", "opaque", "--reset-default-scopes", "--json");
    expect(upd.code, upd.err).toBe(0);
    expect(upd.json()).toEqual({ clientId: "lab", defaultScopes: ["openid", "profile", "hcrole", "organization"], accessTokenFormat: "opaque", accessTokenAudience: null });

    // Suspension and rotation, as in the console; an unknown client is a clear error.
    expect(hpki("sso", "clients", "disable", "--id", "emr", "--json").json()).toEqual({ clientId: "emr", disabled: true });
    expect(hpki("sso", "clients", "list", "--json").json().clients[0].disabled).toBe(true);
    expect(hpki("sso", "clients", "enable", "--id", "emr", "--json").json()).toEqual({ clientId: "emr", disabled: false });
    const rotated = hpki("sso", "clients", "rotate-secret", "--id", "emr", "--json");
    expect(rotated.code, rotated.err).toBe(0);
    expect(rotated.json().clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.json().clientSecret).not.toBe(secret);
    // The previous secret stays valid for the overlap (default 24 h); --overlap 0 ends it at once.
    expect(Date.parse(rotated.json().previousSecretValidUntil)).toBeGreaterThan(Date.now() + 86_000_000);
    expect(hpki("sso", "clients", "rotate-secret", "--id", "emr", "--overlap", "0", "--json").json().previousSecretValidUntil).toBeNull();

    // Signing keys: the first rotation (no key yet) signs at once; the next one is published first.
    const k1 = hpki("sso", "keys", "rotate", "--json");
    expect(k1.code, k1.err).toBe(0);
    expect(k1.json().retired).toEqual([]);
    const k2 = hpki("sso", "keys", "rotate", "--lead", "120", "--json").json();
    expect(Date.parse(k2.signsFrom)).toBeGreaterThan(Date.now() + 100_000);
    expect(k2.retired).toEqual([{ kid: k1.json().kid, retiredAt: k2.signsFrom, publishedUntil: new Date(Date.parse(k2.signsFrom) + 3_900_000).toISOString() }]);
    const short = hpki("sso", "keys", "rotate", "--lead", "10");
    expect(short.code).toBe(1);
    expect(short.err).toContain("at least 60");
    const unknown = hpki("sso", "clients", "disable", "--id", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain("登録されていません");
  });

  it("card login signs the challenge with the card's authentication key", () => {
    expect(hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml").code).toBe(0);
    const card = hpki("cards", "provision", "--count", "1", "--json").json().cards[0];
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
    const subject = path.join(cli.home, "subject.json");
    fs.writeFileSync(subject, JSON.stringify({ hcRole: "Medical Doctor", subscriberId: "CLI0009", name: { latin: "Taro Yamada", kanji: "山田　太郎" } }));
    for (const profile of ["sign", "auth-person"]) {
      const issued = hpki("issue", "--profile", profile, "--subject", subject, "--card", card.label, "--pin", pin, "--out", path.join(cli.home, `${profile}.pem`));
      expect(issued.code, issued.err).toBe(0);
    }
    const challenge = "HPKI-SSO-LOGIN-2\norigin=http://sso.example\nissuer=http://sso.example/sso\nclient_id=emr\nclient_name=EMR\ninteraction=abc\nnonce=xyz\nexpires=2030-01-01T00:00:00.000Z";
    const file = path.join(cli.home, "challenge.txt");
    fs.writeFileSync(file, challenge);
    const pinFile = path.join(cli.home, "pin");
    fs.writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
    const r = hpki("card", "login", "--card", card.label, "--challenge-file", file, "--pin-file", pinFile);
    expect(r.code, r.err).toBe(0);
    const signed = r.json();
    expect(signed.challenge).toBe(challenge);
    const cert = new X509Certificate(Buffer.from(signed.certificate, "base64"));
    // The authentication certificate, not the signature one, was used.
    expect(cert.toString()).toBe(new X509Certificate(fs.readFileSync(path.join(cli.home, "auth-person.pem"))).toString());
    expect(verify("sha256", Buffer.from(challenge), createPublicKey(cert.publicKey.export({ format: "pem", type: "spki" })), Buffer.from(signed.signature, "base64"))).toBe(true);

    fs.writeFileSync(pinFile, "00000000");
    const wrong = hpki("card", "login", "--card", card.label, "--challenge-file", file, "--pin-file", pinFile);
    expect(wrong.code).toBe(1);
    // The report to paste into the login page (the server audits it), the message on stderr; no PIN anywhere.
    expect(wrong.json()).toEqual({ challenge, error: "pin-incorrect" });
    expect(wrong.err).toContain("カードがPINを受け付けませんでした");
    expect(wrong.out + wrong.err).not.toContain("00000000");

    // `hpki card agent`: the same card behind the local agent the SSO login page calls.
    fs.writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
    agentRun = { card: card.label, pinFile, challenge };
  });

  let agentRun: { card: string; pinFile: string; challenge: string } | undefined;
  it("card agent answers only its SSO origin, shows the service and signs that origin's challenges", async () => {
    expect(agentRun).toBeDefined();
    const { card, pinFile, challenge } = agentRun!;
    const p = spawn(process.execPath, [path.join(import.meta.dirname, "../../bin/hpki.js"), "card", "agent", "--card", card, "--sso-origin", "http://sso.example", "--port", "0", "--pin-file", pinFile], { env: cli.env() });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        p.stdout.on("data", () => {
          const line = out.split("\n").find((l) => l.startsWith("{"));
          if (line) resolve((JSON.parse(line) as { agent: string }).agent);
        });
        p.on("close", (code) => reject(new Error(`hpki card agent exited ${code}`)));
      });
      const post = (origin: string, text: string) => fetch(`${url}/v1/sign`, { method: "POST", headers: { Origin: origin, "Content-Type": "application/json" }, body: JSON.stringify({ challenge: text }) });
      expect((await post("http://evil.example", challenge)).status).toBe(403);
      expect((await post("http://sso.example", challenge.replace("origin=http://sso.example", "origin=http://evil.example"))).status).toBe(400);
      const r = await post("http://sso.example", challenge);
      expect(r.status).toBe(200);
      expect(r.headers.get("access-control-allow-origin")).toBe("http://sso.example");
      const signed = (await r.json()) as { challenge: string; certificate: string; signature: string; service: unknown };
      expect(signed.service).toEqual({ clientId: "emr", clientName: "EMR", origin: "http://sso.example" });
      const cert = new X509Certificate(Buffer.from(signed.certificate, "base64"));
      expect(verify("sha256", Buffer.from(challenge), createPublicKey(cert.publicKey.export({ format: "pem", type: "spki" })), Buffer.from(signed.signature, "base64"))).toBe(true);
      expect(out).toContain("EMR (emr)");
      expect(out).toContain("SSO: http://sso.example");
      expect(out).toContain("http://evil.example");
    } finally {
      p.kill("SIGTERM");
    }
  });
});
