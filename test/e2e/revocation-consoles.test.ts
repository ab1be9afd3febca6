/**
 * The revocation and expiry route modules over real HTTP, mounted on console routers
 * (createConsoleRouter) the way the RA and LRA servers mount them: file a card-wide request,
 * second-officer approval (the creator and a plain officer refused), the IA worker executes; the
 * emergency form, the review list and the review; the auditor's view; an LRA operator of another
 * association refused; the expiry list with its renewal link and a prefilled renewal application;
 * HTML pages in Japanese with form errors re-rendered.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeApprovedRevocationRequests } from "../../src/ia/revocation-worker.ts";
import { mountExpiryRoutes } from "../../src/registration/expiry-routes.ts";
import { mountRevocationRoutes } from "../../src/registration/revocation-routes.ts";
import { consoleRoleServer, createConsoleRouter } from "../../src/web/console/router.ts";
import type { RoleDeps, RoleName } from "../../src/web/role.ts";
import { ROLE_FACTORIES } from "../../src/cli/role-factories.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "../integration/revocation-workflow-fixture.ts";

const SECRET = "test-revocation-console-secret-0123456789";
let t: TestIa;
let s: Staff;
let subs: IssuedSubscriber[];
let lraSub: IssuedSubscriber;
let server: StartedServer;
const saved: Partial<typeof ROLE_FACTORIES> = {};
const clients = {} as Record<"officer" | "approver" | "approver2" | "auditor" | "reviewer" | "otherReviewer", ConsoleClient>;

beforeAll(async () => {
  t = await openTestIa("revocation-consoles");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 3, { complete: true });
  [lraSub] = await issueSubscribers(t, s, 1, { viaLra: true });
  const hcRoles = t.ctx.policies.hcRoles;
  const factory = (name: "ra" | "lra") => async () => async (deps: RoleDeps) => consoleRoleServer(name, createConsoleRouter(deps, {
    console: name,
    roles: name === "ra" ? ["ra_officer", "ra_approver"] : ["lra_reviewer", "lra_manager"],
    sessionSecret: SECRET,
    logger: pino({ level: "silent" }),
    mount(router, kit) {
      mountRevocationRoutes(router, kit);
      mountExpiryRoutes(router, kit, hcRoles);
    },
  }));
  for (const r of ["ra", "lra"] as const) {
    saved[r] = ROLE_FACTORIES[r];
    ROLE_FACTORIES[r] = factory(r);
  }
  server = await startServer({ cfg: t.ctx.cfg, db: t.ctx.db, roles: ["ra", "lra"] as RoleName[], port: 0 });
  for (const [k, op, base] of [["officer", s.officer, "/ra"], ["approver", s.approver, "/ra"], ["approver2", s.approver2, "/ra"], ["auditor", s.auditor, "/ra"],
    ["reviewer", s.reviewer, "/lra"], ["otherReviewer", s.otherReviewer, "/lra"]] as const) {
    clients[k] = new ConsoleClient(server.url, base);
    await clients[k].login(op);
  }
});
afterAll(async () => {
  await server?.close();
  for (const r of ["ra", "lra"] as const) {
    if (saved[r]) ROLE_FACTORIES[r] = saved[r];
    else delete ROLE_FACTORIES[r];
  }
  await t?.cleanup();
});

const revocationOf = (serialHex: string) => t.ctx.db("revocations").where({ serial_hex: serialHex }).first();

describe("revocation console routes", () => {
  it("files a card-wide request found by search; a second officer approves; the IA executes", async () => {
    const sub = subs[0];
    const found = await clients.officer.getJson(`/revocations/new?q=${encodeURIComponent(sub.applicationNo)}`);
    expect(found.status).toBe(200);
    expect(found.json().targets).toEqual([expect.objectContaining({ cardLabel: sub.cardLabel, certificates: expect.any(Array) })]);
    expect(found.json().targets[0].certificates).toHaveLength(2);

    const created = await clients.officer.postJson("/revocations", {
      targetKind: "card", cardLabel: sub.cardLabel, channel: "subscriber_ra", reason: "cessationOfOperation", grounds: "利用中止届を受領",
    });
    expect(created.status).toBe(201);
    const req = created.json().request;
    expect(req).toMatchObject({ state: "requested", targetKind: "card", cardLabel: sub.cardLabel, emergency: false, applicationNo: sub.applicationNo });

    expect((await clients.officer.postJson(`/revocations/${req.id}/approve`, {})).status).toBe(403);
    const list = await clients.approver.getJson("/revocations?state=requested");
    expect(list.json().requests.map((r: { id: number }) => r.id)).toContain(req.id);
    const approved = await clients.approver.postJson(`/revocations/${req.id}/approve`, { version: req.version });
    expect(approved.status).toBe(200);
    expect(approved.json().request.state).toBe("approved");
    expect((await clients.approver2.postJson(`/revocations/${req.id}/approve`, {})).status).toBe(409); // already approved

    await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    const detail = (await clients.officer.getJson(`/revocations/${req.id}`)).json();
    expect(detail.request.state).toBe("executed");
    expect(detail.request.results.map((r: { action: string }) => r.action)).toEqual(["revoked", "revoked"]);
    expect(detail.target.certificates.every((c: { revokedReason: string }) => c.revokedReason === "cessationOfOperation")).toBe(true);
  });

  it("refuses approval by the creator (two-person rule), with the Japanese message", async () => {
    const created = await clients.approver.postJson("/revocations", {
      targetKind: "certificate", caName: subs[1].certificates[0].caName, serialHex: subs[1].certificates[0].serialHex,
      channel: "ra_initiative", reason: "affiliationChanged", grounds: "所属変更の届出",
    });
    expect(created.status).toBe(201);
    const own = await clients.approver.postJson(`/revocations/${created.json().request.id}/approve`, {});
    expect(own.status).toBe(409);
    expect(own.json().errorJa).toContain("二者確認");
    const rejected = await clients.approver2.postJson(`/revocations/${created.json().request.id}/reject`, { reason: "届出内容の不備" });
    expect(rejected.json().request).toMatchObject({ state: "rejected", decisionReason: "届出内容の不備" });
  });

  it("emergency: hold at once, listed for review, reviewed by a second officer, visible to the auditor", async () => {
    const sub = subs[2];
    const created = await clients.officer.postJson("/revocations/emergency", {
      targetKind: "card", cardLabel: sub.cardLabel, reason: "certificateHold", grounds: "電話：カード紛失", callerVerification: "登録番号へ折り返し確認",
    });
    expect(created.status).toBe(201);
    const req = created.json().request;
    expect(req).toMatchObject({ state: "approved", emergency: true, reviewState: "pending", channel: "phone" });
    await executeApprovedRevocationRequests(t.ctx, s.ia.operator);
    for (const c of sub.certificates) expect(await revocationOf(c.serialHex)).toMatchObject({ reason: "certificateHold" });
    // A hold reads 一時停止中, never 失効 (issue 12 §7): in the list and on the certificates.
    const listed = (await clients.officer.get("/revocations?state=executed", { accept: "html" })).text;
    const row = listed.slice(listed.indexOf(req.requestNo), listed.indexOf("</tr>", listed.indexOf(req.requestNo)));
    expect(row).toContain("一時停止中");
    expect(row).not.toContain("失効済");
    const detailPage = (await clients.officer.get(`/revocations/${req.id}`, { accept: "html" })).text;
    expect(detailPage).toContain('badge badge--hold">一時停止中');

    const pending = (await clients.approver2.getJson("/revocations?review=pending")).json().requests;
    expect(pending.map((r: { id: number }) => r.id)).toContain(req.id);
    const bad = await clients.approver2.postJson(`/revocations/${req.id}/review`, { outcome: "questioned" });
    expect(bad.status).toBe(400);
    expect(bad.json().issues[0]).toMatchObject({ field: "note" });
    const reviewed = await clients.approver2.postJson(`/revocations/${req.id}/review`, { outcome: "confirmed", note: "紛失届を受領" });
    expect(reviewed.json().request).toMatchObject({ reviewState: "confirmed", reviewedBy: "承認 四郎" });

    const auditView = await clients.auditor.getJson("/audit/revocations");
    expect(auditView.status).toBe(200);
    expect(auditView.json().emergencies.find((r: { id: number }) => r.id === req.id)).toMatchObject({ reviewState: "confirmed", callerVerification: "登録番号へ折り返し確認" });
    expect(auditView.json().revocations.filter((e: { cardLabel: string }) => e.cardLabel === sub.cardLabel).map((e: { reason: string }) => e.reason)).toEqual(["certificateHold", "certificateHold"]);
    expect((await clients.officer.getJson("/audit/revocations")).status).toBe(403);
    expect((await clients.auditor.postJson("/revocations", {})).status).toBe(403);
  });

  it("an LRA operator files for its own association's subscriber only", async () => {
    const body = { targetKind: "card", cardLabel: lraSub.cardLabel, channel: "subscriber_lra", reason: "affiliationChanged", grounds: "退職" };
    const other = await clients.otherReviewer.postJson("/revocations", body);
    expect(other.status).toBe(403);
    expect((await clients.otherReviewer.getJson(`/revocations/new?q=${lraSub.cardLabel}`)).json().targets).toEqual([]);
    const own = await clients.reviewer.postJson("/revocations", body);
    expect(own.status).toBe(201);
    expect((await clients.otherReviewer.getJson(`/revocations/${own.json().request.id}`)).status).toBe(404);
    expect((await clients.reviewer.getJson("/revocations/emergency")).status).toBe(403);
  });

  it("renders the pages in Japanese and re-renders a form with its errors", async () => {
    // No default reason (a required choice) and a confirmation step before an emergency revocation.
    const emergencyForm = (await clients.officer.get("/revocations/emergency", { accept: "html" })).text;
    expect(emergencyForm).toMatch(/name="reason" required><option value="">/);
    expect(emergencyForm).not.toMatch(/<option value="\w+" selected>/);
    const before = Number((await t.ctx.db("revocation_requests").count({ n: "*" }))[0].n);
    const ask = await clients.officer.post("/revocations/emergency", { accept: "html", form: { targetKind: "card", cardLabel: "CARD-X", reason: "keyCompromise", grounds: "電話", callerVerification: "折り返し" } });
    expect(ask.status).toBe(200);
    expect(ask.text).toContain("確認してください");
    expect(ask.text).toContain('name="confirmed" value="1"');
    expect(ask.text).toContain('name="cardLabel" value="CARD-X"');
    expect(Number((await t.ctx.db("revocation_requests").count({ n: "*" }))[0].n)).toBe(before);
    for (const [c, path, text] of [
      [clients.officer, "/revocations/new", "失効申請の登録"], [clients.officer, "/revocations/emergency", "承認を待たずに直ちに処理されます"],
      [clients.approver2, "/revocations?review=pending", "緊急失効の事後確認"], [clients.auditor, "/audit/revocations", "失効記録"],
      [clients.officer, "/revocations?state=all", "失効申請"], [clients.officer, "/expiry", "有効期限が近い証明書"],
    ] as const) {
      const r = await c.get(path, { accept: "html" });
      expect(r.status, path).toBe(200);
      expect(r.text, path).toContain(text);
      expect(r.text, path).not.toMatch(/\b(revocation|notices)\.[a-zA-Z]+|\[object /); // every text key resolved
    }
    const id = (await clients.officer.getJson("/revocations?state=all")).json().requests[0].id;
    const page = await clients.officer.get(`/revocations/${id}`, { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("失効申請");
    expect(page.text).not.toMatch(/\b(revocation|notices)\.[a-zA-Z]+|\[object /);
    await clients.officer.get("/revocations/new", { accept: "html" });
    const bad = await clients.officer.post("/revocations", { accept: "html", form: { targetKind: "card", cardLabel: "", channel: "subscriber_ra", reason: "keyCompromise", grounds: "" } });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("カード番号（ラベル）を入力してください。");
    expect(bad.text).toContain("field--invalid");
  });
});

describe("revocation request list pages", () => {
  it("pages by keyset with the true total, no row twice or missed (issue 12 §3)", async () => {
    // Closed (rejected) card-wide requests as fixture rows: the list, not the workflow, is under test.
    await t.ctx.db("revocation_requests").insert(Array.from({ length: 13 }, (_, i) => ({
      state: "rejected", target_kind: "card", card_label: `PAGE-${i}`, channel: "ra_initiative", reason: "unspecified",
      grounds: "ページ送りの確認", created_by: s.officer.operator.id, decision_reason: "fixture",
    })));
    const total = Number((await t.ctx.db("revocation_requests").where({ state: "rejected" }).count({ n: "*" }))[0].n);
    expect(total).toBeGreaterThanOrEqual(13);
    const first = (await clients.officer.getJson("/revocations?state=rejected&size=10")).json();
    expect(first.page).toMatchObject({ total, from: 1, to: 10, prevBefore: null, size: 10 });
    expect(first.requests).toHaveLength(10);
    const seen = first.requests.map((r: { id: number }) => r.id);
    let next = first.page.nextAfter;
    while (next !== null) {
      const more = (await clients.officer.getJson(`/revocations?state=rejected&size=10&after=${next}`)).json();
      expect(more.page.total).toBe(total);
      seen.push(...more.requests.map((r: { id: number }) => r.id));
      next = more.page.nextAfter;
    }
    const ids = (await t.ctx.db("revocation_requests").where({ state: "rejected" }).orderBy("id", "desc").pluck("id")).map(Number);
    expect(seen.map(Number)).toEqual(ids);
    const html = (await clients.officer.get("/revocations?state=rejected&size=10", { accept: "html" })).text;
    expect(html).toContain(`全${total}件`);
    expect(html).toMatch(/rel="next" href="\/ra\/revocations\?state&#x3D;rejected&amp;size&#x3D;10&amp;after&#x3D;\d+"/);
  });
});

describe("expiry console routes", () => {
  it("lists cards expiring soon with a renewal link, and takes the prefilled renewal application", async () => {
    const sub = subs[1];
    await t.ctx.db("certificates").where({ card_label: sub.cardLabel }).update({ not_after: new Date(Date.now() + 20 * 86_400_000) });
    const list = (await clients.officer.getJson("/expiry")).json();
    const entry = list.entries.find((e: { cardLabel: string }) => e.cardLabel === sub.cardLabel);
    expect(entry).toMatchObject({ daysLeft: 20, threshold: 30, applicationNo: sub.applicationNo, renewalUrl: `/ra/expiry/renewal/${sub.applicationId}` });
    const prefill = (await clients.officer.getJson(`/expiry/renewal/${sub.applicationId}`)).json();
    expect(prefill).toMatchObject({ renewalOf: sub.applicationId, previousApplicationNo: sub.applicationNo, values: expect.objectContaining({ email: sub.email }) });
    const form = await clients.officer.get(`/expiry/renewal/${sub.applicationId}`, { accept: "html" });
    expect(form.text).toContain(sub.email);
    const submitted = await clients.officer.postJson(`/expiry/renewal/${sub.applicationId}`, { ...prefill.values, phone: "03-9999-0000", channel: "ra_mail" });
    expect(submitted.status).toBe(201);
    expect(submitted.json().application).toMatchObject({ state: "received", renewalOf: sub.applicationId });
    expect((await t.ctx.db("applications").where({ id: submitted.json().application.id }).first()).channel).toBe("ra_mail");
    expect((await clients.officer.getJson("/expiry")).json().entries.find((e: { cardLabel: string }) => e.cardLabel === sub.cardLabel).renewalApplicationNo)
      .toBe(submitted.json().application.applicationNo);
    expect((await clients.officer.getJson(`/expiry/renewal/${sub.applicationId}`)).status).toBe(409);
    expect((await clients.reviewer.getJson("/expiry")).json().entries).toEqual([]);
  });
});
