/** `hpki postcodes import KEN_ALL.CSV` as a child process (issue 12 §4): Shift_JIS file in, table replaced, audited; a wrong file refused. */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { encodeShiftJis, KEN_ALL_SAMPLE } from "../helpers/ken-all.ts";

describe("hpki postcodes import (CLI process)", { timeout: 180_000 }, () => {
  let cli: CliHarness;
  beforeAll(async () => {
    cli = await openCliHarness("hpki-postcodes-");
  });
  afterAll(async () => cli?.cleanup());

  it("imports KEN_ALL.CSV, replaces it on re-import, refuses a file that is not KEN_ALL", async () => {
    const file = path.join(cli.home, "KEN_ALL.CSV");
    fs.writeFileSync(file, encodeShiftJis(KEN_ALL_SAMPLE));
    const first = cli.hpki("postcodes", "import", file, "--json");
    expect(first.code, first.err).toBe(0);
    expect(first.json()).toMatchObject({ rows: 7, codes: 6 });
    const text = cli.hpki("postcodes", "import", file);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toContain("郵便番号: 6 件の郵便番号（住所 7 件）を取り込みました");
    const bad = path.join(cli.home, "register.csv");
    fs.writeFileSync(bad, encodeShiftJis("qualification,registration_number\r\nMedical Doctor,1\r\n"));
    const refused = cli.hpki("postcodes", "import", bad);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("KEN_ALL");
    await cli.withDb(async (db) => {
      expect(Number((await db("postcodes").count({ n: "*" }))[0].n)).toBe(7);
      expect(await db("postcodes").where({ postal_code: "1000005" }).first("prefecture", "city", "town")).toEqual({ prefecture: "東京都", city: "千代田区", town: "丸の内" });
      expect(Number((await db("audit_log").where({ action: "postcodes.imported" }).count({ n: "*" }))[0].n)).toBe(2);
    });
  });
});
