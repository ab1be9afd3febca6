/**
 * Changes of registered particulars (記載事項変更, issue 13 §5) end to end over the RA console's
 * HTTP interface: a name change with its document (approval refused until the licence register
 * carries the new name), a manager role gained (the new certificates carry O and OU=Director, the
 * old ones revoked superseded) and then lost (the Director certificates revoked
 * affiliationChanged); each new card through the issuance request (two people), IA, delivery and
 * handover; every step audited and the audit chain intact.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { toPem } from "../../src/pki/pem.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { samplePdf } from "../helpers/pipeline.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "../integration/revocation-workflow-fixture.ts";
import { driveToHandover, openRaDesk, runRevocationWorker, type RaDesk } from "./card-replacement-fixture.ts";

let t: TestIa;
let s: Staff;
let d: RaDesk;
let subs: IssuedSubscriber[];

beforeAll(async () => {
  t = await openTestIa("card-changes");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 2, { complete: true });
  d = await openRaDesk(t, s);
}, 240_000);
afterAll(async () => {
  await d?.server.close();
  await t?.cleanup();
});

const reasonsOf = async (cardLabel: string) =>
  (await t.ctx.db("revocations as r").join("certificates as c", "c.id", "r.certificate_id").where("c.card_label", cardLabel).orderBy("c.id").select("r.reason")).map((r) => r.reason);

function subjectLine(der: Buffer, name: string): string {
  const f = path.join(t.work, `${name}.pem`);
  fs.writeFileSync(f, toPem(der));
  return execFileSync("openssl", ["x509", "-in", f, "-noout", "-subject", "-nameopt", "RFC2253"], { encoding: "utf8" });
}

async function upload(id: number, kind: string) {
  const r = await d.officer.upload(`/applications/${id}/documents`, { kind }, { filename: `${kind}.pdf`, bytes: samplePdf(`${kind}-${id}`) });
  expect(r.status, r.text).toBe(201);
}

describe("changes of registered particulars", () => {
  it("name change: its document, the licence re-checked, a new card, the old one revoked affiliationChanged", async () => {
    const db = t.ctx.db;
    const sub = subs[0];
    const html = await d.officer.get(`/cards/${sub.cardLabel}/replace`, { accept: "html" });
    expect(html.status).toBe(200);
    expect(html.text).toContain("紛失・盗難による再発行");
    expect(html.text).toContain("記載事項の変更");
    expect(html.text).not.toMatch(/\breplace\.[a-zA-Z]+|\[object /); // every text key resolved
    const values = (await d.officer.getJson(`/cards/${sub.cardLabel}/replace`)).json().values;
    const same = await d.officer.postJson(`/cards/${sub.cardLabel}/change`, { ...values, change: "name_change" });
    expect(same.status).toBe(400); // nothing changed
    const created = await d.officer.postJson(`/cards/${sub.cardLabel}/change`, {
      ...values, change: "name_change", nameKanji: "鈴木　花子", nameKana: "スズキ　ハナコ", nameLatin: "Hanako Suzuki",
    });
    expect(created.status, created.text).toBe(201);
    const app = created.json().application;
    expect(app).toMatchObject({ kind: "change", changeReason: "name_change", replacesCardLabel: sub.cardLabel, licenceCheck: expect.objectContaining({ result: "mismatch" }) });

    // Without the document, and while the register still has the old name, approval is refused.
    expect((await d.officer.postJson(`/applications/${app.id}/identity-check`, {
      documentType: "passport", documentNumber: "TK1234567", expiryDate: new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10), method: "face_to_face", photoMatches: "on",
    })).status).toBe(200);
    const refused = await d.officer.postJson(`/applications/${app.id}/decision`, { decision: "ra_approve" });
    expect(refused.status).toBe(400);
    expect(refused.json().issues.map((i: { field: string }) => i.field)).toEqual(expect.arrayContaining(["licenceCheck", "documents.name_change_proof"]));
    await upload(app.id, "name_change_proof");
    const reg = await db("licence_register").where({ registration_number: values.licenceNumber }).first();
    await importLicenceRegister(db, `qualification,registration_number,registration_date,name_kanji,name_kana,birth_date\n${reg.qualification},${values.licenceNumber},${values.licenceDate},鈴木　花子,スズキ　ハナコ,${values.birthDate}\n`, { actor: "test", role: "ra" });
    const approved = await d.officer.postJson(`/applications/${app.id}/decision`, { decision: "ra_approve" });
    expect(approved.status, approved.text).toBe(200);
    expect(approved.json().application.licenceCheck.result).toBe("match");

    const fresh = await driveToHandover(t, s, d, app.id, { approved: true });
    expect(await runRevocationWorker(t, s)).toBe(1);
    expect(await reasonsOf(sub.cardLabel)).toEqual(["affiliationChanged", "affiliationChanged"]);
    const der = Buffer.from((await db("certificates").where({ card_label: fresh.cardLabel, profile: "sign" }).first("der")).der);
    expect(subjectLine(der, "renamed")).toContain("CN=Hanako Suzuki");
  });

  it("manager role gained (O and OU=Director; old certificates superseded), then lost (Director certificates affiliationChanged)", async () => {
    const db = t.ctx.db;
    const sub = subs[1];
    const values = (await d.officer.getJson(`/cards/${sub.cardLabel}/replace`)).json().values;
    const gained = await d.officer.postJson(`/cards/${sub.cardLabel}/change`, { ...values, change: "role_gained", managerRole: "Director of Hospital" });
    expect(gained.status, gained.text).toBe(201);
    const g = gained.json().application;
    expect(g).toMatchObject({ kind: "change", changeReason: "role_gained", managerRole: "Director of Hospital" });
    await upload(g.id, "director_proof");
    const director = await driveToHandover(t, s, d, g.id);
    expect(await runRevocationWorker(t, s)).toBe(1);
    expect(await reasonsOf(sub.cardLabel)).toEqual(["superseded", "superseded"]);
    const der = Buffer.from((await db("certificates").where({ card_label: director.cardLabel, profile: "sign" }).first("der")).der);
    const line = subjectLine(der, "director");
    expect(line).toContain("OU=Director");
    expect(line).toContain("O=Marunouchi Test Hospital");

    const dv = (await d.officer.getJson(`/cards/${director.cardLabel}/replace`)).json().values;
    expect(dv.managerRole).toBe("Director of Hospital");
    const lost = await d.officer.postJson(`/cards/${director.cardLabel}/change`, { ...dv, change: "role_lost", managerRole: "" });
    expect(lost.status, lost.text).toBe(201);
    const l = lost.json().application;
    expect(l).toMatchObject({ changeReason: "role_lost", managerRole: null });
    const plain = await driveToHandover(t, s, d, l.id);
    expect(await runRevocationWorker(t, s)).toBe(1);
    expect(await reasonsOf(director.cardLabel)).toEqual(["affiliationChanged", "affiliationChanged"]);
    const plainDer = Buffer.from((await db("certificates").where({ card_label: plain.cardLabel, profile: "sign" }).first("der")).der);
    expect(subjectLine(plainDer, "plain")).not.toContain("OU=Director");

    const subscriberIds = await db("applications").whereIn("id", [sub.applicationId, g.id, l.id]).pluck("subscriber_id");
    expect(new Set(subscriberIds).size).toBe(1);
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });
});
