/** `hpki lra add` and `hpki operators add|list` through the real CLI process. */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withOperatorSecrets } from "../../src/operators/operator-secrets.ts";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { authenticate, totpCodeAt } from "../../src/operators/operators.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

let h: CliHarness;
beforeAll(async () => {
  h = await openCliHarness("hpki-operators-cli-");
});
afterAll(async () => {
  await h?.cleanup();
});

// Each spawn opens the database and migrates: headroom on a loaded 2-core machine, as in cli.test.ts.
describe("hpki operators", { timeout: 300_000 }, () => {
  it("creates an association and operators, shows the secrets once and stores only the argon2id hash", async () => {
    const lra = h.hpki("lra", "add", "--code", "13-001", "--name", "東京都医師会", "--json");
    expect(lra.code).toBe(0);
    expect(lra.json()).toMatchObject({ code: "13-001", name: "東京都医師会" });

    const text = h.hpki("operators", "add", "--username", "hanako", "--role", "lra_reviewer", "--lra", "13-001", "--display-name", "審査 花子");
    expect(text.code).toBe(0);
    const secret = /TOTP secret:\s+([A-Z2-7]+)/.exec(text.out)![1];
    const password = /password:\s+(\S+)/.exec(text.out)![1];
    expect(text.out.split(secret).length - 1).toBe(2); // the secret line and inside the otpauth URI
    expect(text.out).toMatch(/otpauth:\/\/totp\/hpki-ca:hanako\?secret=/);

    const json = h.hpki("operators", "add", "--username", "taro", "--role", "ra_officer", "--password", "correct horse battery", "--json");
    expect(json.code).toBe(0);
    const j = json.json();
    expect(j).toMatchObject({ username: "taro", role: "ra_officer", lraId: null, totpSecret: expect.stringMatching(/^[A-Z2-7]{32}$/) });
    expect(j.password).toBeUndefined(); // given, not generated: not echoed

    const bad = h.hpki("operators", "add", "--username", "x1", "--role", "lra_manager", "--json");
    expect(bad.code).toBe(1);
    expect(bad.json().issues).toEqual([expect.objectContaining({ field: "lraCode", messageJa: expect.stringContaining("地域受付審査局") })]);

    const list = h.hpki("operators", "list", "--json");
    expect(list.code).toBe(0);
    expect(list.json().operators.map((o: { username: string; lraCode: string | null }) => [o.username, o.lraCode])).toEqual([["hanako", "13-001"], ["taro", null]]);
    for (const out of [list.out, h.hpki("operators", "list").out]) {
      expect(out).not.toContain(secret);
      expect(out).not.toContain(password);
    }

    const db = await openDatabase(loadConfig({ HPKI_HOME: h.home }), { databaseUrl: h.dbUrl });
    try {
      const rows = await db("operators").orderBy("username").select("username", "password_hash");
      for (const r of rows) expect(r.password_hash).toMatch(/^\$argon2id\$v=19\$/);
      const all = JSON.stringify(await db("operators").select()) + JSON.stringify(await db("audit_log").select("details"));
      expect(all).not.toContain(password);
      // TOTP secrets are sealed in the HSM: not in any column, in any encoding.
      expect(all).not.toContain(secret);
      expect(await db("operators").whereNotNull("totp_secret").first()).toBeUndefined();
      const dump = (await db.raw("SELECT o::text AS t FROM operators o")).rows.map((r: { t: string }) => r.t).join("\n");
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(Buffer.from(secret).toString("hex"));
      expect(all).not.toContain("correct horse battery");
      const audit = JSON.stringify(await db("audit_log").select("details", "actor", "action"));
      expect(audit).not.toContain(secret);
      expect(audit).toContain("operator.created");
      // The printed credentials work.
      const op = await withOperatorSecrets(loadConfig({ HPKI_HOME: h.home }), db, async () => authenticate(db, "hanako", password, await totpCodeAt(secret)));
      expect(op).toMatchObject({ username: "hanako", displayName: "審査 花子", role: "lra_reviewer" });
    } finally {
      await db.destroy();
    }
  });
});
