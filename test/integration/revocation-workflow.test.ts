/**
 * The revocation workflow (issue 4 item 1) through its services on a real database and SoftHSM:
 * request → second-officer approval → the IA worker executes → revocations rows; the two-person
 * rule; the emergency path (hold at once, reviewed after the fact); card-wide requests; LRA scope;
 * and OpenSSL judging the CRL generated afterwards.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { generateCrl, loadCrlPolicy } from "../../src/ia/crl-generation.ts";
import { executeApprovedRevocationRequests, startRevocationWorker } from "../../src/ia/revocation-worker.ts";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from "../../src/pipeline/errors.ts";
import {
  approveRevocationRequest, createEmergencyRevocation, createRevocationRequest, getRevocationRequest, listRevocationRequests,
  rejectRevocationRequest, reviewEmergencyRevocation,
} from "../../src/pipeline/revocation-requests.ts";
import { toPem } from "../../src/pki/pem.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "./revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let subs: IssuedSubscriber[];
let lraSub: IssuedSubscriber;
let raceSubs: IssuedSubscriber[];

beforeAll(async () => {
  t = await openTestIa("revocation-workflow");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 5);
  [lraSub] = await issueSubscribers(t, s, 1, { viaLra: true });
  raceSubs = await issueSubscribers(t, s, 3);
});
afterAll(async () => t?.cleanup());

const db = () => t.ctx.db;
const revocationOf = (serialHex: string) => db()("revocations").where({ serial_hex: serialHex }).first();
const certTarget = (sub: IssuedSubscriber, profile = "sign") => {
  const c = sub.certificates.find((x) => x.profile === profile)!;
  return { targetKind: "certificate", caName: c.caName, serialHex: c.serialHex };
};

describe("revocation requests", () => {
  it("request → approval by a second officer → executed by the IA worker, audited", async () => {
    const sub = subs[0];
    const req = await createRevocationRequest(db(), s.officer.operator, {
      ...certTarget(sub), channel: "ra_initiative", reason: "privilegeWithdrawn", grounds: "医籍登録の抹消を確認",
      invalidityDate: "2026-01-05T09:00:00+09:00",
    });
    expect(req).toMatchObject({ state: "requested", emergency: false, application_id: sub.applicationId });
    // Nothing revoked before approval, whatever the worker does.
    expect((await executeApprovedRevocationRequests(t.ctx, s.ia.operator)).executed).toEqual([]);
    expect(await revocationOf(certTarget(sub).serialHex)).toBeUndefined();

    await approveRevocationRequest(db(), s.approver.operator, Number(req.id));
    const run = await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    expect(run.failed).toEqual([]);
    expect(run.executed).toEqual([expect.objectContaining({ requestNo: req.request_no, results: [expect.objectContaining({ serialHex: certTarget(sub).serialHex, action: "revoked" })] })]);
    const rev = await revocationOf(certTarget(sub).serialHex);
    expect(rev).toMatchObject({ reason: "privilegeWithdrawn", released_at: null });
    expect(new Date(rev.invalidity_date).toISOString()).toBe("2026-01-05T00:00:00.000Z");
    // The authentication certificate on the same card is untouched.
    expect(await revocationOf(certTarget(sub, "auth-person").serialHex)).toBeUndefined();
    const row = await db()("revocation_requests").where({ id: req.id }).first();
    expect(row).toMatchObject({ state: "executed", executed_by: s.ia.operator.username });
    expect(row.results).toHaveLength(1);

    const objects = [String(req.request_no), `${certTarget(sub).caName}:${certTarget(sub).serialHex}`];
    const actions = ((await db()("audit_log").whereIn("object_id", objects).orderBy("seq").pluck("action")) as string[]).filter((a) => a !== "certificate.issued");
    expect(actions).toEqual(["revocation_request.created", "revocation_request.approved", "certificate.revoked", "revocation_request.executed"]);
    expect((await verifyAuditChain(db())).ok).toBe(true);
  });

  it("refuses approval by the request's own creator and by a non-approver; rejects with a reason", async () => {
    const sub = subs[1];
    const req = await createRevocationRequest(db(), s.approver.operator, { ...certTarget(sub), channel: "subscriber_ra", reason: "affiliationChanged", grounds: "勤務先変更の届出" });
    const own = await approveRevocationRequest(db(), s.approver.operator, Number(req.id)).catch((e) => e);
    expect(own).toBeInstanceOf(ConflictError);
    expect(own.messageJa).toContain("二者確認");
    await expect(approveRevocationRequest(db(), s.officer.operator, Number(req.id))).rejects.toBeInstanceOf(ForbiddenError);
    // The database refuses it too.
    await expect(db()("revocation_requests").where({ id: req.id }).update({ approved_by: s.approver.operator.id })).rejects.toThrow(/two_person/);
    // A second request for the same certificate while this one is open is a conflict.
    await expect(createRevocationRequest(db(), s.officer.operator, { ...certTarget(sub), channel: "subscriber_ra", reason: "superseded", grounds: "重複" }))
      .rejects.toBeInstanceOf(ConflictError);
    await expect(rejectRevocationRequest(db(), s.officer.operator, Number(req.id), " ")).rejects.toBeInstanceOf(ValidationError);
    const rejected = await rejectRevocationRequest(db(), s.officer.operator, Number(req.id), "本人確認書類が不足");
    expect(rejected.state).toBe("rejected");
    expect((await executeApprovedRevocationRequests(t.ctx, s.ia.operator)).executed).toEqual([]);
    expect(await revocationOf(certTarget(sub).serialHex)).toBeUndefined();
  });

  it("validates input field by field with Japanese messages", async () => {
    const e = await createRevocationRequest(db(), s.officer.operator, { targetKind: "certificate", caName: "", serialHex: "xyz", channel: "phone", reason: "cACompromise", grounds: "", invalidityDate: "2999-01-01T00:00:00Z" }).catch((x) => x);
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.issues.map((i: { field: string }) => i.field).sort()).toEqual(["caName", "grounds", "invalidityDate", "reason", "serialHex"]);
    expect(e.issues.every((i: { messageJa: string }) => /[ぁ-んァ-ン一-龯]/.test(i.messageJa))).toBe(true);
    const phone = await createRevocationRequest(db(), s.officer.operator, { ...certTarget(subs[1]), channel: "phone", reason: "keyCompromise", grounds: "紛失" }).catch((x) => x);
    expect(phone).toBeInstanceOf(ValidationError);
    expect(phone.issues[0].messageJa).toContain("緊急失効");
    await expect(createRevocationRequest(db(), s.officer.operator, { targetKind: "card", cardLabel: "no-such-card", channel: "subscriber_ra", reason: "keyCompromise", grounds: "紛失" }))
      .rejects.toBeInstanceOf(NotFoundError);
  });

  it("emergency: a phone call puts the whole card on hold without a second officer; reviewed after the fact", async () => {
    const sub = subs[2];
    const req = await createEmergencyRevocation(db(), s.officer.operator, {
      targetKind: "card", cardLabel: sub.cardLabel, reason: "certificateHold", grounds: "本人より電話：カード紛失",
      callerVerification: "登録電話番号へ折り返し、生年月日を確認",
    });
    expect(req).toMatchObject({ state: "approved", emergency: true, review_state: "pending", approved_by: null, channel: "phone" });
    const run = await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    expect(run.executed.map((r) => r.requestNo)).toEqual([req.request_no]);
    for (const c of sub.certificates) expect(await revocationOf(c.serialHex)).toMatchObject({ reason: "certificateHold", released_at: null });

    const pending = await listRevocationRequests(db(), s.approver2.operator, { reviewPending: true });
    expect(pending.map((r) => r.request_no)).toContain(req.request_no);
    const self = await reviewEmergencyRevocation(db(), s.officer.operator, Number(req.id), { outcome: "confirmed" }).catch((e) => e);
    expect(self).toBeInstanceOf(ForbiddenError); // an officer is not a reviewer
    await expect(reviewEmergencyRevocation(db(), s.approver2.operator, Number(req.id), { outcome: "questioned" })).rejects.toBeInstanceOf(ValidationError);
    const reviewed = await reviewEmergencyRevocation(db(), s.approver2.operator, Number(req.id), { outcome: "confirmed", note: "紛失届の受領を確認" });
    expect(reviewed).toMatchObject({ review_state: "confirmed", reviewed_by: s.approver2.operator.id, state: "executed" });
    await expect(reviewEmergencyRevocation(db(), s.approver.operator, Number(req.id), { outcome: "confirmed" })).rejects.toBeInstanceOf(ConflictError);
    expect((await listRevocationRequests(db(), s.approver2.operator, { reviewPending: true })).map((r) => r.request_no)).not.toContain(req.request_no);
    const audit = await db()("audit_log").where({ object_id: req.request_no }).orderBy("seq").select("action", "actor", "details");
    expect(audit.map((a) => a.action)).toEqual(["revocation_request.emergency_created", "revocation_request.executed", "revocation_request.reviewed"]);
    expect(audit[2]).toMatchObject({ actor: s.approver2.username, details: expect.objectContaining({ review: "confirmed" }) });

    // The card is found: releasing the hold (removeFromCRL) goes through the normal two-person path.
    const release = await createRevocationRequest(db(), s.officer.operator, { targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "removeFromCRL", grounds: "カード発見の届出" });
    await approveRevocationRequest(db(), s.approver.operator, Number(release.id));
    const released = await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    expect(released.executed[0].results.map((r) => r.action)).toEqual(["hold-released", "hold-released"]);
    for (const c of sub.certificates) expect((await revocationOf(c.serialHex)).released_at).not.toBeNull();
  });

  it("the emergency creator cannot review their own request, even as an approver", async () => {
    const sub = subs[3];
    const req = await createEmergencyRevocation(db(), s.approver.operator, {
      ...certTarget(sub, "auth-person"), reason: "keyCompromise", grounds: "盗難の連絡", callerVerification: "折り返し確認",
    });
    await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    expect(await revocationOf(certTarget(sub, "auth-person").serialHex)).toMatchObject({ reason: "keyCompromise" });
    const e = await reviewEmergencyRevocation(db(), s.approver.operator, Number(req.id), { outcome: "confirmed" }).catch((x) => x);
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.messageJa).toContain("作成者以外");
    await reviewEmergencyRevocation(db(), s.approver2.operator, Number(req.id), { outcome: "questioned", note: "紛失届が未着" });
  });

  it("a card-wide request revokes every certificate on the card", async () => {
    const sub = subs[4];
    const req = await createRevocationRequest(db(), s.officer.operator, { targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "cessationOfOperation", grounds: "利用中止届" });
    await approveRevocationRequest(db(), s.approver.operator, Number(req.id));
    const { target } = await getRevocationRequest(db(), s.officer.operator, Number(req.id));
    expect(target!.certificates).toHaveLength(2);
    const run = await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    expect(run.executed[0].results).toHaveLength(2);
    for (const c of sub.certificates) expect(await revocationOf(c.serialHex)).toMatchObject({ reason: "cessationOfOperation" });
    // Nothing left to revoke on that card.
    await expect(createRevocationRequest(db(), s.officer.operator, { targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "keyCompromise", grounds: "再申請" }))
      .rejects.toBeInstanceOf(ConflictError);
  });

  it("an LRA operator files for its own association's subscribers only", async () => {
    const input = { targetKind: "card", cardLabel: lraSub.cardLabel, channel: "subscriber_lra", reason: "affiliationChanged", grounds: "退職による利用中止" };
    await expect(createRevocationRequest(db(), s.otherReviewer.operator, input)).rejects.toBeInstanceOf(ForbiddenError);
    // …nor for an RA-desk subscriber.
    await expect(createRevocationRequest(db(), s.reviewer.operator, { ...input, cardLabel: subs[0].cardLabel })).rejects.toBeInstanceOf(ForbiddenError);
    await expect(createRevocationRequest(db(), s.reviewer.operator, { ...input, channel: "ra_initiative" })).rejects.toBeInstanceOf(ValidationError);
    const req = await createRevocationRequest(db(), s.reviewer.operator, input);
    expect(req).toMatchObject({ channel: "subscriber_lra", lra_id: s.reviewer.operator.lraId });
    expect((await listRevocationRequests(db(), s.reviewer.operator)).map((r) => r.id)).toEqual([req.id]);
    expect(await listRevocationRequests(db(), s.otherReviewer.operator)).toEqual([]);
    await expect(getRevocationRequest(db(), s.otherReviewer.operator, Number(req.id))).rejects.toBeInstanceOf(NotFoundError);
    await expect(approveRevocationRequest(db(), s.reviewer.operator, Number(req.id))).rejects.toBeInstanceOf(ForbiddenError);
    await approveRevocationRequest(db(), s.approver.operator, Number(req.id));
    await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    for (const c of lraSub.certificates) expect(await revocationOf(c.serialHex)).toMatchObject({ reason: "affiliationChanged" });
  });

  it("OpenSSL: the CRL generated after execution lists the revoked certificate with its reason", async () => {
    const sub = subs[0]; // sign certificate revoked for privilegeWithdrawn in the first test
    const c = sub.certificates.find((x) => x.profile === "sign")!;
    const crl = await generateCrl({ db: db(), keys: t.ctx.keys, policy: loadCrlPolicy() }, c.caName, { actor: "test", role: "ia" });
    const crlFile = path.join(t.work, "sign.crl.pem");
    fs.writeFileSync(crlFile, toPem(crl.der, "X509 CRL"));
    const text = spawnSync("openssl", ["crl", "-in", crlFile, "-noout", "-text"], { encoding: "utf8" }).stdout;
    const entry = text.slice(text.indexOf(`Serial Number: ${c.serialHex}`));
    expect(entry).toMatch(/^Serial Number: [0-9A-F]+\s+Revocation Date: .*\n\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Privilege Withdrawn/);
    expect(entry).toMatch(/Invalidity Date:\s+\n?\s*Jan\s+5 00:00:00 2026 GMT/);
    const der = await db()("certificates").where({ serial_hex: c.serialHex }).first("der");
    const leaf = path.join(t.work, "leaf.pem");
    fs.writeFileSync(leaf, toPem(Buffer.from(der.der)));
    const v = spawnSync("openssl", ["verify", "-crl_check", "-CAfile", t.pem("demo-root"), "-untrusted", t.pem(c.caName), "-CRLfile", crlFile, leaf], { encoding: "utf8" });
    expect(v.status).not.toBe(0);
    expect(`${v.stdout}${v.stderr}`).toContain("certificate revoked");
    // A good certificate of the same CA verifies against the same CRL.
    const goodSerial = subs[1].certificates.find((x) => x.profile === "sign")!.serialHex;
    const good = await db()("certificates").where({ serial_hex: goodSerial }).first("der");
    fs.writeFileSync(leaf, toPem(Buffer.from(good.der)));
    const ok = spawnSync("openssl", ["verify", "-crl_check", "-CAfile", t.pem("demo-root"), "-untrusted", t.pem(c.caName), "-CRLfile", crlFile, leaf], { encoding: "utf8" });
    expect(`${ok.stdout}${ok.stderr}`).toMatch(/: OK/);
  });

  it("the poll loop executes an emergency hold within its interval", async () => {
    const sub = subs[1];
    const worker = startRevocationWorker(t.ctx, { intervalMs: 200, operator: s.ia.operator });
    try {
      const started = Date.now();
      await createEmergencyRevocation(db(), s.officer2.operator, {
        ...certTarget(sub), reason: "certificateHold", grounds: "紛失の電話", callerVerification: "折り返し確認済み",
      });
      let rev;
      while (!(rev = await revocationOf(certTarget(sub).serialHex)) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
      expect(rev).toMatchObject({ reason: "certificateHold" });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await worker.stop();
    }
  });

  it("two IA workers racing execute each approved request exactly once (SKIP LOCKED; Postgres)", async () => {
    const ids: number[] = [];
    for (const sub of raceSubs) {
      const req = await createRevocationRequest(db(), s.officer.operator, { targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "superseded", grounds: "再発行" });
      await approveRevocationRequest(db(), s.approver.operator, Number(req.id));
      ids.push(Number(req.id));
    }
    const [a, b] = await Promise.all([executeApprovedRevocationRequests(t.ctx, s.ia.operator), executeApprovedRevocationRequests(t.ctx, s.ia.operator)]);
    expect([...a.executed, ...b.executed].map((r) => r.requestId).sort((x, y) => x - y)).toEqual(ids);
    expect([...a.failed, ...b.failed]).toEqual([]);
    for (const sub of raceSubs) for (const c of sub.certificates) expect(await revocationOf(c.serialHex)).toMatchObject({ reason: "superseded" });
    const executedAudits = await db()("audit_log").where({ action: "revocation_request.executed" }).whereIn("object_id", (await db()("revocation_requests").whereIn("id", ids).pluck("request_no")) as string[]).count({ n: "*" });
    expect(Number(executedAudits[0].n)).toBe(3);
  });

  it("on Postgres the worker wakes on NOTIFY: an emergency hold runs at once although the poll interval is a minute", async () => {
    const sub = subs[1];
    const worker = startRevocationWorker(t.ctx, { intervalMs: 60_000, operator: s.ia.operator });
    try {
      await new Promise((r) => setTimeout(r, 300)); // the first run and the LISTEN
      const started = Date.now();
      await createEmergencyRevocation(db(), s.officer2.operator, {
        ...certTarget(sub, "auth-person"), reason: "certificateHold", grounds: "紛失の電話", callerVerification: "折り返し確認済み",
      });
      let rev;
      while (!(rev = await revocationOf(certTarget(sub, "auth-person").serialHex)) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
      expect(rev).toMatchObject({ reason: "certificateHold" });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await worker.stop();
    }
  });
});
