/**
 * Renewal (更新, issue 13 §4) end to end over the RA console's HTTP interface: from the expiry list
 * (the 90-day notice) a renewal prefilled from the subscriber, a change made and re-checked
 * (licence re-checked against the register), documents, identity, approval, the issuance request
 * approved by a second person, the new card through the IA, delivery and handover; the new
 * certificates pass `openssl verify`, the old ones are on the next CRL as superseded after the
 * handover, the subscriberId is kept and an SSO relying party sees the same `sub` before and
 * after; every step audited and the chain intact.
 */
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { generateCrl, loadCrlPolicy } from "../../src/ia/crl-generation.ts";
import { toPem } from "../../src/pki/pem.ts";
import { upsertPerson } from "../../src/sso/accounts.ts";
import { Subjects } from "../../src/sso/subjects.ts";
import { CardLoginVerifier } from "../../src/status/certificate-verifier.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { opensslVerify } from "../helpers/openssl.ts";
import { requiredUploads } from "../helpers/pipeline.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "../integration/revocation-workflow-fixture.ts";
import { driveToHandover, openRaDesk, runRevocationWorker, type RaDesk } from "./card-replacement-fixture.ts";

let t: TestIa;
let s: Staff;
let d: RaDesk;
let sub: IssuedSubscriber;
let keep: IssuedSubscriber;
const by = { actor: "test", role: "ia" };

beforeAll(async () => {
  t = await openTestIa("card-renewal");
  s = await setUpRegistration(t);
  [sub, keep] = await issueSubscribers(t, s, 2, { complete: true });
  d = await openRaDesk(t, s);
}, 240_000);
afterAll(async () => {
  await d?.server.close();
  await t?.cleanup();
});

describe("renewal from the expiry notice", () => {
  it("issues the new card, revokes the old certificates as superseded at handover, keeps the SSO sub", async () => {
    const db = t.ctx.db;
    const der = async (card: string, profile: string) => Buffer.from((await db("certificates").where({ card_label: card, profile, status: "issued" }).first("der")).der);

    // The SSO relying party's view of the person before renewal.
    const verifier = await CardLoginVerifier.open({ db, refreshIntervalMs: 0, ocspFallback: false });
    const subjects = new Subjects(db, Buffer.alloc(32, 7));
    const subAt = async (card: string) => {
      const login = await verifier.verify(await der(card, "auth-person"));
      const personId = await db.transaction((trx) => upsertPerson(trx, login.identity, new Date()));
      return subjects.subFor(personId, "ehr-client");
    };
    const subBefore = await subAt(sub.cardLabel);

    // 1. Within 90 days of expiry: listed with the renewal link; the prefilled form; a changed address.
    await db("certificates").where({ card_label: sub.cardLabel }).update({ not_after: new Date(Date.now() + 60 * 86_400_000) });
    const entry = (await d.officer.getJson("/expiry")).json().entries.find((e: { cardLabel: string }) => e.cardLabel === sub.cardLabel);
    expect(entry).toMatchObject({ threshold: 90, renewalUrl: `/ra/expiry/renewal/${sub.applicationId}` });
    const prefill = (await d.officer.getJson(`/expiry/renewal/${sub.applicationId}`)).json();
    const bad = await d.officer.postJson(`/expiry/renewal/${sub.applicationId}`, { ...prefill.values, email: "not-an-address" });
    expect(bad.status).toBe(400); // changes are re-checked like an intake
    const submitted = await d.officer.postJson(`/expiry/renewal/${sub.applicationId}`, { ...prefill.values, address: "東京都港区芝公園四丁目2番8号" });
    expect(submitted.status, submitted.text).toBe(201);
    const id = submitted.json().application.id;
    const renewal = (await d.officer.getJson(`/applications/${id}`)).json().application;
    expect(renewal).toMatchObject({
      kind: "renewal", changeReason: "renewal", replacesCardLabel: sub.cardLabel, replacesApplicationId: sub.applicationId,
      address: "東京都港区芝公園四丁目2番8号", licenceCheck: expect.objectContaining({ result: "match" }),
    });
    for (const u of requiredUploads(`renewal-${id}`)) expect((await d.officer.upload(`/applications/${id}/documents`, { kind: u.kind }, { filename: u.filename, bytes: u.bytes })).status).toBe(201);

    // 2. Review, issuance (two people), IA, delivery, handover.
    const fresh = await driveToHandover(t, s, d, id);
    const old = await db("applications").where({ id: sub.applicationId }).first("subscriber_id");
    expect((await db("applications").where({ id }).first("subscriber_id")).subscriber_id).toBe(old.subscriber_id);

    // 3. The new certificates pass OpenSSL.
    const work = t.work;
    const file = (name: string, content: string) => {
      const f = path.join(work, name);
      fs.writeFileSync(f, content);
      return f;
    };
    for (const c of fresh.certificates) {
      const leaf = file(`${c.serialHex}.pem`, toPem(await der(fresh.cardLabel, c.profile)));
      const r = opensslVerify(t.pem("demo-root"), t.pem(c.caName), leaf);
      expect(r.ok, r.output).toBe(true);
    }

    // 4. At handover the old card's certificates were filed for revocation (superseded); the IA executes; the next CRLs list them.
    const request = await db("revocation_requests").where({ card_label: sub.cardLabel }).first();
    expect(request).toMatchObject({ state: "approved", reason: "superseded", channel: "ra_initiative" });
    expect(await runRevocationWorker(t, s)).toBe(1);
    for (const c of sub.certificates) {
      const crl = await generateCrl({ db, keys: t.ctx.keys, policy: loadCrlPolicy() }, c.caName, by);
      const crlFile = file(`${c.caName}-${c.serialHex}.crl.pem`, toPem(crl.der, "X509 CRL"));
      const text = spawnSync("openssl", ["crl", "-in", crlFile, "-noout", "-text"], { encoding: "utf8" }).stdout;
      const at = text.indexOf(`Serial Number: ${c.serialHex.toUpperCase()}`);
      expect(at, text).toBeGreaterThan(0);
      expect(text.slice(at, at + 300)).toContain("Superseded");
    }
    for (const c of fresh.certificates) expect(await db("revocations").where({ serial_hex: c.serialHex }).first()).toBeUndefined();

    // 5. The relying party sees the same sub with the new card; the old card is refused.
    await verifier.refresh({ full: true });
    expect(await subAt(fresh.cardLabel)).toBe(subBefore);
    await expect(verifier.verify(await der(sub.cardLabel, "auth-person"))).rejects.toMatchObject({ code: "revoked" });
    verifier.close();

    const no = (await db("applications").where({ id }).first("application_no")).application_no;
    const actions = (await db("audit_log").where({ object_id: no }).orderBy("seq").select("action")).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(["application.received", "application.ra_approved", "application.handed_over", "application.completed"]));
    expect((await db("audit_log").where({ action: "revocation_request.created", object_id: request.request_no }).first())?.details).toMatchObject({ reason: "superseded", state: "approved" });
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it("HPKI_RENEWAL_OLD_CERTIFICATES=expire: the old certificates are left to expire (audited), not revoked", async () => {
    const db = t.ctx.db;
    const desk = await openRaDesk(t, s, ["ra"], { renewalOldCertificates: "expire" });
    try {
      const prefill = (await desk.officer.getJson(`/expiry/renewal/${keep.applicationId}`)).json();
      const submitted = await desk.officer.postJson(`/expiry/renewal/${keep.applicationId}`, prefill.values);
      expect(submitted.status, submitted.text).toBe(201);
      const id = submitted.json().application.id;
      for (const u of requiredUploads(`renewal-${id}`)) expect((await desk.officer.upload(`/applications/${id}/documents`, { kind: u.kind }, { filename: u.filename, bytes: u.bytes })).status).toBe(201);
      await driveToHandover(t, s, desk, id);
      expect(await db("revocation_requests").where({ card_label: keep.cardLabel }).first()).toBeUndefined();
      expect(await runRevocationWorker(t, s)).toBe(0);
      for (const c of keep.certificates) expect(await db("revocations").where({ serial_hex: c.serialHex }).first()).toBeUndefined();
      const no = (await db("applications").where({ id }).first("application_no")).application_no;
      expect(await db("audit_log").where({ action: "application.replaced_card_left_to_expire", object_id: no }).first()).toMatchObject({ details: { replacedCard: keep.cardLabel } });
      expect((await verifyAuditChain(db)).ok).toBe(true);
    } finally {
      await desk.server.close();
    }
  });
});
