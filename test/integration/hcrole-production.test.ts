/**
 * The hcRole table in production (issue 13 §9): our issuer never emits codeDataValue and our
 * reader accepts and ignores it; in production mode an hcRole string not confirmed from real
 * certificates is refused until `hpki hcrole confirm <code> --cp-version X` records (and audits) an
 * operator's confirmation; demo mode issues it with a warning; the table marks each entry's
 * confirmation source and names the catch-all manager role correctly.
 */
import { spawnSync } from "node:child_process";
import { generateKeyPairSync as keyPair } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { IssuanceService } from "../../src/ia/issuance.ts";
import { decodeHcRoleExtension, encodeHcRoleExtension, extractHcRoles } from "../../src/pki/hcrole.ts";
import { explicit, oid, sequence, set, utf8String } from "../../src/pki/der.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { ValidationError } from "../../src/pipeline/errors.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";

const by = { actor: "test", role: "ia" };
let t: TestIa;
const warnings: string[] = [];
let production: IssuanceService;
let demo: IssuanceService;

beforeAll(async () => {
  t = await openTestIa("hcrole-production");
  await runDemoCeremony(t.ctx, by);
  production = new IssuanceService(t.ctx.db, t.ctx.keys, t.ctx.policies.profiles, undefined, {}, { production: true });
  demo = new IssuanceService(t.ctx.db, t.ctx.keys, t.ctx.policies.profiles, undefined, {}, { production: false, warn: (m) => warnings.push(m) });
}, 120_000);
afterAll(async () => t?.cleanup());

function request(hcRole: string, id: string) {
  const profile = t.ctx.policies.profiles.get("sign")!;
  const director = t.ctx.policies.hcRoles.get(hcRole)?.kind === "manager";
  return {
    profile: "sign",
    subject: parseSubscriberSubject({
      hcRole, subscriberId: id, name: { latin: "Taro Yamada", kanji: "山田　太郎" },
      ...(director ? { organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" } } : {}),
    }, profile, t.ctx.policies.hcRoles),
    subjectPublicKeyInfo: keyPair("rsa", { modulusLength: 2048 }).publicKey.export({ format: "der", type: "spki" }),
  };
}

const hpki = (...args: string[]) => spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../bin/hpki.js"), ...args], {
  cwd: path.resolve(import.meta.dirname, "../.."), encoding: "utf8",
  env: { ...process.env, HPKI_HOME: t.home, DATABASE_URL: t.databaseUrl },
});

describe("hcRole table in production", () => {
  it("issues confirmed strings; refuses unconfirmed ones until an operator confirms the entry (audited, CP version named)", async () => {
    const doctor = await production.issue(request("Medical Doctor", "HC0000001"), by);
    expect(extractHcRoles(doctor.der).map((r) => r.codeDataFreeText)).toEqual(["Medical Doctor"]);

    for (const code of ["Nurse", "Director of Hospital"]) {
      const err = await production.issue(request(code, "HC0000002"), by).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues[0]).toMatchObject({ field: "hcRole" });
      expect((err as ValidationError).issues[0].messageJa).toContain("hpki hcrole confirm");
    }
    const before = hpki("hcrole", "list", "--json");
    expect(before.status, before.stderr).toBe(0);
    const nurseRow = before.stdout.trim().split("\n").at(-1)!;
    expect(JSON.parse(nurseRow).entries.find((e: { code: string }) => e.code === "Nurse")).toMatchObject({ status: "unverified", issuableInProduction: false });

    expect(hpki("hcrole", "confirm", "Nurse").status).not.toBe(0); // --cp-version is required
    expect(hpki("hcrole", "confirm", "No Such Role", "--cp-version", "CP 1.91").status).not.toBe(0);
    const ok = hpki("hcrole", "confirm", "Nurse", "--cp-version", "MHLW HPKI signature CP 1.91 §7.1", "--note", "table row compared", "--json");
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout.trim().split("\n").at(-1)!)).toMatchObject({ code: "Nurse", ja: "看護師", cpVersion: "MHLW HPKI signature CP 1.91 §7.1" });
    const nurse = await production.issue(request("Nurse", "HC0000003"), by);
    expect(extractHcRoles(nurse.der)[0].codeDataFreeText).toBe("Nurse");
    await expect(production.issue(request("Director of Hospital", "HC0000004"), by)).rejects.toBeInstanceOf(ValidationError);

    const audit = await t.ctx.db("audit_log").where({ action: "hcrole.confirmed", object_id: "Nurse" }).first();
    expect(audit.details).toMatchObject({ cpVersion: "MHLW HPKI signature CP 1.91 §7.1", tableStatus: "unverified", ja: "看護師" });
    expect((await verifyAuditChain(t.ctx.db)).ok).toBe(true);
  });

  it("demo mode issues an unconfirmed string with a warning, once per code", async () => {
    await demo.issue(request("Dentist", "HC0000005"), by);
    await demo.issue(request("Dentist", "HC0000006"), by);
    expect(warnings.filter((w) => w.includes('"Dentist"'))).toHaveLength(1);
    expect(warnings[0]).toContain("hpki hcrole confirm");
  });

  it("never emits codeDataValue; reads one and ignores it", async () => {
    const issued = await demo.issue(request("Pharmacist", "HC0000007"), by);
    for (const r of extractHcRoles(issued.der)) expect(r.codeDataValue).toBeUndefined();
    expect(decodeHcRoleExtension(encodeHcRoleExtension("Medical Doctor"))[0]).not.toHaveProperty("codeDataValue");
    // A foreign certificate's CodedData with a numeric code: accepted, the role is the free text.
    const coded = set(explicit(0, oid("1.2.392.100495.1.6.1.1")), explicit(1, Buffer.from([0x12, 0x02, 0x33, 0x31])), explicit(2, utf8String("Medical Doctor")));
    const ext = sequence(sequence(oid("1.0.17090.0.1"), set(set(sequence(explicit(0, coded))))));
    const [role] = decodeHcRoleExtension(ext);
    expect(role.codeDataFreeText).toBe("Medical Doctor");
    expect(t.ctx.policies.hcRoles.get(role.codeDataFreeText)?.ja).toBe("医師");
  });

  it("marks each entry's confirmation source and names the catch-all manager role", () => {
    const table = t.ctx.policies.hcRoles;
    const confirmed = [...table.values()].filter((e) => e.status === "confirmed").map((e) => e.code);
    expect(confirmed.sort()).toEqual(["Medical Doctor", "Pharmacist"]);
    expect([...table.values()].filter((e) => e.status === "confirmed-secondary").map((e) => e.code).sort()).toEqual(["Director of Clinic", "Director of Hospital"]);
    for (const e of table.values()) expect(e.note, e.code).toBeTruthy();
    const managers = [...table.values()].filter((e) => e.kind === "manager").map((e) => e.ja);
    expect(managers).toContain("その他の保健医療福祉機関の管理責任者");
    expect(table.get("Director of Health Care Facility")?.ja).toBe("その他の保健医療福祉機関の管理責任者");
  });
});
