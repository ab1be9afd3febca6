/**
 * Worklists, keyset pagination and bulk approval over the real LRA/RA consoles (issue 12 §3, §7):
 * 250 applications taken through the intake service show "全250件" and five pages of 50 that
 * cover every one once; the LRA worklist counts only the operator's association and each count
 * matches the list it links to; an RA approver's bulk approval refuses, per row, the request it
 * created itself (two-person rule) and approves the others, each audited on its own.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { createIssuanceRequest } from "../../src/pipeline/issuance-requests.ts";
import type { Operator } from "../../src/pipeline/operator.ts";
import { loadPolicies } from "../../src/policies.ts";
import { startConsoleTestServer, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads } from "../helpers/pipeline.ts";

let s: ConsoleTestServer;
let reviewer: TestOperator;
let otherReviewer: TestOperator;
let officer: TestOperator;
let approver: TestOperator;
const hcRoles = loadPolicies().hcRoles;
const rows = demoRegisterRows();
const MANY = 250;

/** Intake through the real service, with a licence number of its own (no duplicate refusal). */
async function intake(op: Operator, i: number, opts: { channel?: "ra_desk"; registered?: boolean } = {}): Promise<number> {
  const r = rows[i % rows.length];
  const input = applicationInputFor(r, i, opts.registered ? {} : { licenceNumber: String(900000 + i) });
  const app = await submitApplication(s.db, op, hcRoles, input, { channel: opts.channel });
  return Number(app.id);
}

beforeAll(async () => {
  s = await startConsoleTestServer(["lra", "ra"]);
  reviewer = await createTestOperator(s.db, "lra_reviewer", { lraCode: "13-001" });
  otherReviewer = await createTestOperator(s.db, "lra_reviewer", { lraCode: "27-001" });
  officer = await createTestOperator(s.db, "ra_officer");
  approver = await createTestOperator(s.db, "ra_approver");
  for (let i = 0; i < MANY; i++) await intake(reviewer.operator, i);
  // Another association's applications: never counted or listed for this reviewer.
  for (let i = MANY; i < MANY + 7; i++) await intake(otherReviewer.operator, i);
}, 600_000);
afterAll(async () => s?.cleanup());

describe("desk lists and worklists", () => {
  it("lists 250 applications with the true total and keyset pages that cover each once", { timeout: 120_000 }, async () => {
    const c = await s.signIn("/lra", reviewer);
    const seen = new Set<number>();
    let path = "/applications?size=50";
    let pages = 0;
    for (;;) {
      const r = await c.getJson(path);
      expect(r.status).toBe(200);
      const body = r.json();
      expect(body.page.total).toBe(MANY);
      for (const a of body.applications) {
        expect(seen.has(a.id)).toBe(false);
        seen.add(a.id);
      }
      pages++;
      if (body.page.nextAfter === null) break;
      path = `/applications?size=50&after=${body.page.nextAfter}`;
    }
    expect(pages).toBe(5);
    expect(seen.size).toBe(MANY);
    // Back one page from the last: the 4th page (positions 151–200).
    const last = (await c.getJson(path)).json();
    expect(last.page.from).toBe(201);
    const prev = (await c.getJson(`/applications?size=50&before=${last.page.prevBefore}`)).json();
    expect([prev.page.from, prev.page.to]).toEqual([151, 200]);

    const html = await c.get("/applications", { accept: "html" });
    expect(html.text).toContain("全250件");
    expect(html.text).toContain("（1〜50件目）");
    expect(html.text).toMatch(/rel="next" href="\/lra\/applications\?after&#x3D;\d+"/);
  });

  it("pages the association's batches (newest first) with the true total", { timeout: 60_000 }, async () => {
    // Received batches as fixture rows of both associations: the list, not the batch workflow, is under test.
    const lraIds = [reviewer.operator.lraId!, otherReviewer.operator.lraId!];
    await s.db("lra_batches").insert(Array.from({ length: 24 }, (_, i) => ({
      batch_no: `PAGE-${i}`, lra_id: lraIds[i % 2], state: "received", created_by: i % 2 ? otherReviewer.operator.id : reviewer.operator.id,
    })));
    const own = (await s.db("lra_batches").where({ lra_id: lraIds[0] }).orderBy("id", "desc").pluck("id")).map(Number);
    const c = await s.signIn("/lra", reviewer);
    const first = (await c.getJson("/batches?size=10")).json();
    expect(first.page).toMatchObject({ total: own.length, from: 1, to: 10 });
    const seen: number[] = first.batches.map((b: { id: number }) => b.id);
    let next = first.page.nextAfter;
    while (next !== null) {
      const more = (await c.getJson(`/batches?size=10&after=${next}`)).json();
      seen.push(...more.batches.map((b: { id: number }) => b.id));
      next = more.page.nextAfter;
    }
    expect(seen).toEqual(own);
    expect((await c.get("/batches?size=10", { accept: "html" })).text).toContain(`全${own.length}件`);
  });

  it("counts the reviewer's worklist in its own association, each count matching its list", { timeout: 60_000 }, async () => {
    const c = await s.signIn("/lra", reviewer);
    const res = await c.getJson("/");
    const home = res.json();
    expect(home.worklist, res.text).toBeDefined();
    const byKey = Object.fromEntries(home.worklist.map((w: { key: string; count: number }) => [w.key, w]));
    expect(byKey.received.count).toBe(MANY);
    expect(byKey.missing_documents.count).toBe(MANY);
    expect(byKey.awaiting_approval.count).toBe(0);
    for (const key of ["received", "missing_documents", "awaiting_approval", "returned", "handover"]) {
      const list = (await c.getJson(byKey[key].path)).json();
      expect(list.page.total, key).toBe(byKey[key].count);
    }
    const other = await s.signIn("/lra", otherReviewer);
    const otherHome = (await other.getJson("/")).json();
    expect(otherHome.worklist.find((w: { key: string }) => w.key === "received").count).toBe(7);
    const page = await c.get("/", { accept: "html" });
    expect(page.text).toContain("あなたの作業");
    expect(page.text).toContain('href="/lra/applications?work&#x3D;missing_documents"');
  });

  it("bulk approval approves each request on its own and refuses, on its row, the approver's own", { timeout: 120_000 }, async () => {
    const ids: number[] = [];
    const creators = [officer.operator, officer.operator, approver.operator];
    for (const [k, creator] of creators.entries()) {
      const appId = await intake(officer.operator, k, { channel: "ra_desk", registered: true });
      for (const u of requiredUploads(`bulk${k}`)) await addDocument(s.db, officer.operator, appId, u);
      await recordIdentityCheck(s.db, officer.operator, appId, identityCheckInput());
      await decideApplication(s.db, officer.operator, appId, "ra_approve");
      ids.push(Number((await createIssuanceRequest(s.db, creator, appId)).id));
    }
    const c = await s.signIn("/ra", approver);
    const home = (await c.getJson("/")).json();
    expect(home.worklist.find((w: { key: string }) => w.key === "issuance_requested").count).toBe(3);

    await c.get("/issuance-requests", { accept: "html" });
    const r = await c.post("/issuance-requests/approve", { accept: "html", form: {} });
    expect(r.status).toBe(400); // nothing ticked

    const form = new URLSearchParams();
    form.append("_csrf", c.csrfToken!);
    for (const id of ids) form.append("ids", String(id));
    const posted = await c.request("POST", "/issuance-requests/approve", { accept: "html", body: form, headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(posted.status).toBe(303);
    const page = await c.get("/issuance-requests", { accept: "html" });
    expect(page.text).toContain("一括承認の結果：承認 2件・承認できず 1件");
    expect(page.text).toMatch(new RegExp(`data-bulk-result="${ids[2]}"><td>${ids[2]}</td><td>✖ [^<]*作成者`));

    const states = await s.db("issuance_requests").whereIn("id", ids).orderBy("id").pluck("state");
    expect(states).toEqual(["approved", "approved", "requested"]);
    const audits = await s.db("audit_log").where({ action: "issuance_request.approved" }).whereIn("object_id", ids.map(String)).count({ n: "*" });
    expect(Number(audits[0].n)).toBe(2);

    // JSON: the refusal per row with its reason.
    const again = (await c.postJson("/issuance-requests/approve", { ids: [ids[2]] })).json();
    expect(again.results).toEqual([expect.objectContaining({ id: ids[2], ok: false, code: expect.any(String) })]);
  });

  it("without JavaScript: several documents in one upload, each step redirects to its section's anchor", { timeout: 60_000 }, async () => {
    const c = await s.signIn("/lra", reviewer);
    const id = Number((await s.db("applications").where({ lra_id: reviewer.operator.lraId }).orderBy("id").first("id")).id);
    await c.get(`/applications/${id}`, { accept: "html" });
    const form = new FormData();
    for (const u of requiredUploads("nojs")) form.append(`file.${u.kind}`, new Blob([new Uint8Array(u.bytes)], { type: "application/pdf" }), u.filename);
    const up = await c.request("POST", `/applications/${id}/documents?_csrf=${encodeURIComponent(c.csrfToken!)}`, { accept: "html", body: form });
    expect(up.status, up.text).toBe(303);
    expect(up.headers.get("location")).toBe(`/lra/applications/${id}#docs`);
    expect((await s.db("application_documents").where({ application_id: id }).pluck("kind")).sort()).toEqual(["application_form", "identity_document", "licence_copy"]);
    const idc = await c.post(`/applications/${id}/identity-check`, { accept: "html", form: identityCheckInput() as Record<string, string> });
    expect(idc.status).toBe(303);
    expect(idc.headers.get("location")).toBe(`/lra/applications/${id}#identity`);
    const page = (await c.get(`/applications/${id}`, { accept: "html" })).text;
    // Work order: documents, identity, licence register, then the decision.
    const at = (x: string) => page.indexOf(x);
    expect(at('id="docs"')).toBeLessThan(at('id="identity"'));
    expect(at('id="identity"')).toBeLessThan(at('id="licence"'));
    expect(at('id="licence"')).toBeLessThan(at('id="decide"') === -1 ? Infinity : at('id="decide"'));
    expect(page).toContain("data-desk-form");
  });
});
