/**
 * Loss or theft (紛失・盗難, issue 13 §3) end to end over the RA console's HTTP interface: the
 * phone hold, the reissue started at the desk without a new application (the verified data
 * reused, the licence re-checked against the register, identity re-checked and recorded), the
 * keyCompromise revocation approved by a second officer — and until it is executed the new card's
 * issuance request is refused (the guard) — then a new card through the IA, delivery and
 * handover, linked to the old card; the old card's login refused by the card-login verifier;
 * every step audited and the audit chain intact.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { PathValidationError } from "../../src/pki/path-validation.ts";
import { CardLoginVerifier } from "../../src/status/certificate-verifier.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "../integration/revocation-workflow-fixture.ts";
import { driveToHandover, openRaDesk, runRevocationWorker, type RaDesk } from "./card-replacement-fixture.ts";

let t: TestIa;
let s: Staff;
let d: RaDesk;
let sub: IssuedSubscriber;
let stolen: IssuedSubscriber;

beforeAll(async () => {
  t = await openTestIa("card-reissue-loss");
  s = await setUpRegistration(t);
  [sub, stolen] = await issueSubscribers(t, s, 2, { complete: true });
  d = await openRaDesk(t, s);
}, 240_000);
afterAll(async () => {
  await d?.server.close();
  await t?.cleanup();
});

async function authDer(cardLabel: string): Promise<Buffer> {
  const row = await t.ctx.db("certificates").where({ card_label: cardLabel, profile: "auth-person", status: "issued" }).first("der");
  return Buffer.from(row.der);
}

async function loginOutcome(v: CardLoginVerifier, der: Buffer): Promise<string> {
  try {
    await v.verify(der);
    return "ok";
  } catch (e) {
    if (e instanceof PathValidationError) return e.code;
    throw e;
  }
}

describe("loss or theft: hold, revoke, reissue without a new application", () => {
  it("revokes the old card before the new one is issued, links both, and refuses the old card's login", async () => {
    const db = t.ctx.db;
    const verifier = await CardLoginVerifier.open({ db, refreshIntervalMs: 0, ocspFallback: false });
    expect(await loginOutcome(verifier, await authDer(sub.cardLabel))).toBe("ok");

    // 1. The phone call: emergency hold, executed by the IA worker.
    const hold = await d.officer.postJson("/revocations/emergency", {
      targetKind: "card", cardLabel: sub.cardLabel, reason: "certificateHold", grounds: "電話：カード紛失", callerVerification: "登録番号へ折り返し確認",
    });
    expect(hold.status, hold.text).toBe(201);
    expect(await runRevocationWorker(t, s)).toBe(1);

    // 2. At the desk: the reissue, from the verified data — no application form, no documents.
    const page = await d.officer.getJson(`/cards/${sub.cardLabel}/replace`);
    expect(page.status, page.text).toBe(200);
    expect(page.json().certificates.map((c: { revokedReason: string }) => c.revokedReason)).toEqual(["certificateHold", "certificateHold"]);
    const started = await d.officer.postJson(`/cards/${sub.cardLabel}/reissue`, { reason: "loss", grounds: "紛失届を受領（窓口）" });
    expect(started.status, started.text).toBe(201);
    const { application, revocationRequest } = started.json();
    const old = await db("applications").where({ id: sub.applicationId }).first();
    expect(application).toMatchObject({
      kind: "reissue", state: "received", changeReason: "loss", replacesCardLabel: sub.cardLabel, replacesApplicationId: sub.applicationId,
      subscriberId: old.subscriber_id, nameKanji: old.name_kanji, licenceNumber: old.licence_number,
      licenceCheck: expect.objectContaining({ result: "match" }), identityCheck: null,
    });
    expect(revocationRequest).toMatchObject({ state: "requested", reason: "keyCompromise", targetKind: "card", cardLabel: sub.cardLabel });
    expect((await d.officer.postJson(`/cards/${sub.cardLabel}/reissue`, { reason: "loss", grounds: "二重" })).status).toBe(409);
    expect(Number((await db("application_documents").where({ application_id: application.id }).count({ n: "*" }).first())?.n)).toBe(0);

    // 3. Identity re-checked and recorded; approval; the issuance request refused while the card is only on hold.
    expect((await d.officer.postJson(`/applications/${application.id}/identity-check`, {
      documentType: "driver_licence", documentNumber: "123456789012", expiryDate: new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10), method: "face_to_face", photoMatches: "on",
    })).status).toBe(200);
    expect((await d.officer.postJson(`/applications/${application.id}/decision`, { decision: "ra_approve" })).status).toBe(200);
    const early = await d.officer.postJson(`/applications/${application.id}/issuance-request`, {});
    expect(early.status).toBe(409);
    expect(early.json().errorJa).toContain("失効していません");

    // 4. A second officer approves the keyCompromise revocation (not its creator); the IA executes it.
    expect((await d.officer.postJson(`/revocations/${revocationRequest.id}/approve`, {})).status).toBe(403);
    const ok = await d.approver.postJson(`/revocations/${revocationRequest.id}/approve`, {});
    expect(ok.status, ok.text).toBe(200);
    expect(await runRevocationWorker(t, s)).toBe(1);
    const revoked = await db("revocations as r").join("certificates as c", "c.id", "r.certificate_id").where("c.card_label", sub.cardLabel).select("r.reason", "r.revoked_at");
    expect(revoked.map((r) => r.reason)).toEqual(["keyCompromise", "keyCompromise"]);

    // 5. The new card: issuance request, second-person approval, IA, delivery, handover.
    expect((await db("applications").where({ id: application.id }).first("state")).state).toBe("ra_approved"); // the refusal changed nothing
    const fresh = await driveToHandover(t, s, d, application.id, { approved: true });
    const issued = await db("certificates").where({ card_label: fresh.cardLabel }).select("issued_at", "subject");
    for (const c of issued) for (const r of revoked) expect(new Date(c.issued_at).getTime()).toBeGreaterThan(new Date(r.revoked_at).getTime());
    expect(issued.every((c) => c.subject.serialNumber === old.subscriber_id || JSON.stringify(c.subject).includes(old.subscriber_id))).toBe(true);

    // 6. Linked in both records: the reissue names the old card; the old record's card is replaced by the new one.
    const reissue = await db("applications").where({ id: application.id }).first();
    expect(reissue).toMatchObject({ state: "completed", replaces_card_label: sub.cardLabel, });
    expect(Number(reissue.old_card_revocation_request_id)).toBe(revocationRequest.id);
    const replacedBy = await db("applications as a").join("issuance_requests as ir", "ir.application_id", "a.id")
      .where("a.replaces_card_label", sub.cardLabel).first("ir.card_label");
    expect(replacedBy.card_label).toBe(fresh.cardLabel);
    const oldCard = await db("cards").where({ label: sub.cardLabel }).first("id", "replaced_by_card_id");
    const newCard = await db("cards").where({ label: fresh.cardLabel }).first("id", "replaces_card_id");
    expect(Number(oldCard.replaced_by_card_id)).toBe(Number(newCard.id));
    expect(Number(newCard.replaces_card_id)).toBe(Number(oldCard.id));

    // 7. The old card's login is refused, the new card's accepted.
    await verifier.refresh({ full: true });
    expect(await loginOutcome(verifier, await authDer(sub.cardLabel))).toBe("revoked");
    expect(await loginOutcome(verifier, await authDer(fresh.cardLabel))).toBe("ok");
    verifier.close();

    // 8. Audited, chain intact.
    const actions = (await db("audit_log").where({ object_type: "application", object_id: reissue.application_no }).orderBy("seq").select("action")).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(["application.received", "application.reissue_started", "application.identity_checked", "application.ra_approved", "application.issuance_requested", "application.issued", "application.handed_over", "application.completed"]));
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it("the CLI takes a theft report the same way (desk officer signed in with password + TOTP)", async () => {
    const pw = path.join(t.work, "officer.pw");
    fs.writeFileSync(pw, s.officer.password, { mode: 0o600 });
    const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../bin/hpki.js"), "card-replacement", "reissue",
      "--card", stolen.cardLabel, "--reason", "theft", "--grounds", "盗難届（警察署受理番号 123）", "--username", s.officer.username,
      "--password-file", pw, "--totp", await s.officer.nextCode(), "--json"], {
      cwd: path.resolve(import.meta.dirname, "../.."), encoding: "utf8", env: { ...process.env, HPKI_HOME: t.home, DATABASE_URL: t.databaseUrl },
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    const row = await t.ctx.db("applications").where({ application_no: out.applicationNo }).first();
    expect(row).toMatchObject({ kind: "reissue", change_reason: "theft", replaces_card_label: stolen.cardLabel, state: "received" });
    expect(await t.ctx.db("revocation_requests").where({ request_no: out.revocationRequestNo }).first()).toMatchObject({ state: "requested", reason: "keyCompromise" });
    expect((await verifyAuditChain(t.ctx.db)).ok).toBe(true);
  });
});
