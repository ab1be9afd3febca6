/** The licence register: import through the service and through the `hpki` process, all or nothing, audited. */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { compareLicence } from "../../src/pipeline/licence-check.ts";
import { importLicenceRegister, LicenceImportError, lookupLicence } from "../../src/pipeline/licence-register.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const demoFile = path.join(repo, "policies/demo/licence-register.csv");
const demo = fs.readFileSync(demoFile);
const by = { actor: "cli:test", role: "ra" };

async function counts(t: TestDb) {
  const n = async (table: string) => Number((await t.db(table).count({ n: "*" }).first())!.n);
  return { register: await n("licence_register"), imports: await n("licence_imports"), audit: await n("audit_log") };
}

async function refusal(p: Promise<unknown>): Promise<LicenceImportError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(LicenceImportError);
  return e as LicenceImportError;
}

describe("importLicenceRegister", () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDatabase();
  });
  afterAll(async () => t?.cleanup());

  it("imports the demo register with one audited import record", async () => {
    const r = await importLicenceRegister(t.db, demo, by);
    expect(r).toMatchObject({ rows: 24, inserted: 24, updated: 0, unchanged: 0 });
    expect(r.fileSha256).toMatch(/^[0-9a-f]{64}$/);
    const audit = await t.db("audit_log").where({ action: "licence_register.imported" });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: "cli:test", role: "ra", object_type: "licence_import", object_id: String(r.importId) });
    expect(audit[0].details).toEqual({ fileSha256: r.fileSha256, rows: 24, inserted: 24, updated: 0, unchanged: 0 });
    expect(await counts(t)).toEqual({ register: 24, imports: 1, audit: 1 });
  });

  it("looks a licence up in any typed form and the check matches; dates come back as YYYY-MM-DD", async () => {
    const row = await lookupLicence(t.db, "Medical Doctor", "第０３５１０９４号");
    expect(row).toEqual({
      qualification: "Medical Doctor", registrationNumber: "351094", registrationDate: "1993-05-17",
      nameKanji: "髙橋\u3000誠", nameKana: "タカハシ\u3000マコト", birthDate: "1968-02-27",
    });
    const applied = { qualification: "Medical Doctor", registrationNumber: "351094", registrationDate: "1993-05-17", nameKanji: "髙橋 誠", nameKana: "たかはし まこと", birthDate: "1968-02-27" };
    expect(compareLicence(applied, row).result).toBe("match");
    expect(compareLicence({ ...applied, nameKanji: "高橋 誠" }, row).result).toBe("mismatch");
    expect(await lookupLicence(t.db, "Pharmacist", "351094")).toBeUndefined();
    expect(await lookupLicence(t.db, "Medical Doctor", "abc")).toBeUndefined();
    expect((await lookupLicence(t.db, "Medical Doctor", "599214"))?.nameKanji).toBe("山\ufa11\u3000翔");
  });

  it("re-importing the same file changes nothing but is still recorded", async () => {
    const before = await t.db("licence_register").select("id", "import_id").orderBy("id");
    const r = await importLicenceRegister(t.db, demo, by);
    expect(r).toMatchObject({ rows: 24, inserted: 0, updated: 0, unchanged: 24 });
    expect(await t.db("licence_register").select("id", "import_id").orderBy("id")).toEqual(before);
    expect(await counts(t)).toEqual({ register: 24, imports: 2, audit: 2 });
  });

  it("a corrected file updates the changed row, inserts the new one and keeps rows it does not list", async () => {
    const text = "qualification,registration_number,registration_date,name_kanji,name_kana,birth_date\n"
      + "Medical Doctor,351094,1993-05-17,髙橋　誠,タカハシ　マコト,1968-02-28\n"
      + "Medical Doctor,442817,2001-05-10,山田　太郎,ヤマダ　タロウ,1975-05-14\n"
      + "Pharmacist,500001,2020-05-11,新井　翼,アライ　ツバサ,1995-01-09\n";
    const r = await importLicenceRegister(t.db, text, by);
    expect(r).toMatchObject({ rows: 3, inserted: 1, updated: 1, unchanged: 1 });
    expect((await lookupLicence(t.db, "Medical Doctor", "351094"))?.birthDate).toBe("1968-02-28");
    expect(await t.db("licence_register").where({ registration_number: "351094" }).first()).toMatchObject({ import_id: r.importId });
    expect(await counts(t)).toEqual({ register: 25, imports: 3, audit: 3 });
  });

  it("refuses a file with one bad row among good ones: every issue by line, nothing written", async () => {
    const before = await counts(t);
    const lines = demo.toString("utf8").trimEnd().split("\n");
    lines.push("Medical Doctor,700001,2024-04-15,新人　医師,シンジン　イシ,2030-01-01");
    lines.splice(5, 0, "Dentist,12O456,1999-05-10,阿部　隆,アベ　タカシ,1973-11-16"); // letter O for zero, at line 6
    const e = await refusal(importLicenceRegister(t.db, lines.join("\n"), by));
    expect(e.code).toBe("INVALID_ROWS");
    expect(e.issues.map((i) => [i.line, i.field])).toEqual([[6, "registration_number"], [27, "birth_date"]]);
    expect(e.messageJa).toMatch(/何も登録していません/);
    expect(await counts(t)).toEqual(before);
  });

  it("refuses a Shift_JIS file as not UTF-8", async () => {
    const sjis = Buffer.concat([Buffer.from("qualification\n"), Buffer.from([0x88, 0xe3, 0x8e, 0x74]), Buffer.from("\n")]); // 医師 in Shift_JIS
    expect((await refusal(importLicenceRegister(t.db, sjis, by))).code).toBe("NOT_UTF8");
  });

  it("leaves the audit chain intact", async () => {
    expect(await verifyAuditChain(t.db)).toMatchObject({ ok: true, records: 3 });
  });
});

describe("hpki licenses import (CLI process)", { timeout: 180_000 }, () => {
  let cli: CliHarness;
  beforeAll(async () => {
    cli = await openCliHarness("hpki-licences-");
  });
  afterAll(async () => cli?.cleanup());

  it("imports, re-imports unchanged, refuses a bad file by line in both languages", () => {
    const first = cli.hpki("licenses", "import", demoFile);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/24 rows .*: 24 inserted, 0 updated, 0 unchanged/);
    expect(first.out).toMatch(/免許台帳: 24 行/);
    const again = cli.hpki("licenses", "import", demoFile, "--json");
    expect(again.code, again.err).toBe(0);
    expect(again.json()).toMatchObject({ importId: 2, rows: 24, inserted: 0, updated: 0, unchanged: 24 });

    const bad = path.join(cli.home, "bad.csv");
    fs.writeFileSync(bad, "\ufeffqualification,registration_number,registration_date,name_kanji,name_kana,birth_date\r\n"
      + "Medical Doctor,800001,2010-04-19,\"小林 大輔\",コバヤシ　ダイスケ,1984-06-25\r\n"
      + "Medical Doctor,800002,平成22年4月19日,小林　大輔,コバヤシ　ダイスケ,1984-06-25\r\n", { mode: 0o600 }); // private, as the home check wants
    const text = cli.hpki("licenses", "import", bad);
    expect(text.code).toBe(1);
    expect(text.err).toMatch(/^hpki: licence register refused: 1 line\(s\) invalid, nothing imported\nhpki: 免許台帳の取込を中止しました/);
    expect(text.err).toMatch(/\n {2}- line 3 registration_date: 「平成22年4月19日」は和暦です.* \/ .*Japanese era date/);
    const json = cli.hpki("licenses", "import", bad, "--json");
    expect(json.code).toBe(1);
    expect(json.json()).toMatchObject({ code: "INVALID_ROWS", issues: [{ line: 3, field: "registration_date" }] });

    const missing = cli.hpki("licenses", "import", path.join(cli.home, "nope.csv"));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^hpki: .*nope\.csv/);

    const verify = cli.hpki("audit", "verify", "--json");
    expect(verify.json()).toMatchObject({ ok: true, records: 2 });
  });
});
