/**
 * Issue 12 §1 in Chromium (headless Debian Chromium driven by playwright-core), with the real IA
 * (SoftHSM cards) on the same database:
 * - the clinic case at intake: a doctor at 鈴木内科クリニック, not the manager, 施設名（英字） left
 *   empty while the profile puts O in the subject — refused at the LRA intake naming
 *   施設名（英字）, the typed data kept in the form; then taken with a typo in the licence number,
 *   the nearest register entries proposed on the page, and the number corrected (audited);
 * - the RA correcting a failed request and retrying it: an application approved with that gap
 *   (as before the dry run existed) fails at the IA; an RA approver sees the failure in Japanese
 *   naming 施設名（英字）, corrects it through the correction form, resubmits; another approver
 *   approves it in the issuance-request list; the IA issues a new card; delivery, handover and
 *   receipt review complete the application.
 * Screenshots are kept in test-artifacts/ (corrections-*.png).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { loadConfig } from "../../src/config.ts";
import { personaliseApprovedRequests } from "../../src/ia/card-personalisation.ts";
import { decideApplication } from "../../src/pipeline/applications.ts";
import { createDeliveryBatch, shipDeliveryBatch } from "../../src/pipeline/delivery.ts";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import type { TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";
import { setUpRegistration, type Staff } from "../integration/revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let server: StartedServer;
let browser: Browser;
let home: string;
const rows = demoRegisterRows();

beforeAll(async () => {
  t = await openTestIa("browser-corrections");
  s = await setUpRegistration(t);
  home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-browser-corrections-"));
  server = await startServer({ cfg: loadConfig({ HPKI_HOME: home, HPKI_SESSION_SECRET: "browser-corrections-secret-0123456789" }), db: t.ctx.db, roles: ["lra", "ra"], port: 0 });
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await t?.cleanup();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

/** A new Japanese browser page signed in to console `base` as `op`. */
async function signedIn(base: "/lra" | "/ra", op: TestOperator): Promise<Page> {
  const page = await (await browser.newContext({ locale: "ja-JP", viewport: { width: 1100, height: 900 } })).newPage();
  await page.goto(`${server.url}${base}/login`);
  await page.fill('input[name="username"]', op.username);
  await page.fill('input[name="password"]', op.password);
  await page.fill('input[name="totp"]', await op.nextCode());
  await Promise.all([page.waitForURL(`${server.url}${base}/`), page.click('form button[type="submit"]')]);
  return page;
}

describe("issue 12 §1 in Chromium", () => {
  it("refuses the clinic case at LRA intake, naming 施設名（英字）, and keeps what was typed", { timeout: 180_000 }, async () => {
    const r = rows[3];
    const page = await signedIn("/lra", s.reviewer);
    await page.goto(`${server.url}/lra/applications/new`);
    const form = page.locator("form", { has: page.locator('input[name="formToken"]') });
    const input = applicationInputFor(r, 3, { organizationKanji: "鈴木内科クリニック", organizationLatin: "" });
    for (const name of ["nameKanji", "nameKana", "nameLatin", "birthDate", "postalCode", "address", "phone", "email", "licenceNumber", "licenceDate", "organizationKanji", "organizationLatin"]) {
      await form.locator(`[name="${name}"]`).fill(String(input[name]));
    }
    await form.locator('[name="qualification"]').selectOption(r.qualification);
    await form.locator('[name="requestSign"]').check();
    await form.locator('[name="requestAuth"]').check();
    const [response] = await Promise.all([page.waitForResponse((x) => x.request().method() === "POST"), form.locator('button[type="submit"]').last().click()]);
    expect(response.status()).toBe(400);
    await page.waitForLoadState("load");
    const html = await page.content();
    expect(html).toContain("施設名（英字）");
    expect(html).toContain("この申込内容では証明書を発行できません");
    expect(await page.locator('[name="organizationKanji"]').inputValue()).toBe("鈴木内科クリニック");
    expect(await page.locator('[name="nameKanji"]').inputValue()).toBe(r.name_kanji);
    await page.screenshot({ path: artifact("corrections-1-intake-refused.png"), fullPage: true });
    expect(await t.ctx.db("applications").where({ licence_number: r.registration_number }).first()).toBeUndefined();

    // §2: taken with the Latin name, but a typo in the licence number: not in the register — the
    // nearest entries are proposed on the page; the reviewer corrects the number.
    const typo = `${r.registration_number.slice(0, -1)}${(Number(r.registration_number.slice(-1)) + 1) % 10}`;
    await page.locator('[name="organizationLatin"]').fill("Suzuki Naika Clinic");
    await page.locator('[name="licenceNumber"]').fill(typo);
    await Promise.all([page.waitForURL(/\/lra\/applications\/\d+$/), page.locator("form", { has: page.locator('input[name="formToken"]') }).locator('button[type="submit"]').last().click()]);
    const nearest = page.locator("#licence-nearest");
    expect(await nearest.textContent()).toContain(r.registration_number);
    expect(await nearest.textContent()).toContain("番号が1桁違い");
    await page.locator("section[aria-labelledby='h-licence']").screenshot({ path: artifact("corrections-1b-nearest-entries.png") });
    await Promise.all([page.waitForURL(/\/edit$/), page.getByRole("link", { name: "申込内容を訂正" }).first().click()]);
    await page.locator('[name="licenceNumber"]').fill(r.registration_number);
    await Promise.all([page.waitForURL(/\/lra\/applications\/\d+$/), page.getByRole("button", { name: "訂正を保存する" }).click()]);
    expect(await page.content()).toContain("資格確認台帳と一致しています");
    await page.screenshot({ path: artifact("corrections-1c-corrected.png"), fullPage: true });
    const id = Number(/applications\/(\d+)$/.exec(page.url())![1]);
    const edited = await t.ctx.db("audit_log").where({ action: "application.edited" }).orderBy("seq", "desc").first("details");
    expect(edited.details.changes).toEqual({ licenceNumber: { before: typo, after: r.registration_number } });
    // Withdrawn (the applicant's choice) so the RA test below can take the same licence.
    await decideApplication(t.ctx.db, s.reviewer.operator, id, "withdraw", { reason: "テスト：窓口で再受付" });
  });

  it("the RA corrects a failed request, resubmits it, another approver approves, and it is issued and handed over", { timeout: 300_000 }, async () => {
    const db = t.ctx.db;
    const officer = new ConsoleClient(server.url, "/ra");
    await officer.login(s.officer);
    const approverApi = new ConsoleClient(server.url, "/ra");
    await approverApi.login(s.approver);
    // An RA desk application up to an approved issuance request (JSON), approved with 施設名（英字）
    // which is then found empty — as the applications approved before the dry run.
    const form = (await officer.getJson("/applications/new")).json();
    const over = { organizationKanji: "鈴木内科クリニック", organizationLatin: "Suzuki Naika Clinic" };
    const app = (await officer.postJson("/applications", { ...applicationInputFor(rows[3], 3, over), formToken: form.formToken, channel: "ra_desk" })).json().application;
    for (const u of requiredUploads("bc")) await officer.upload(`/applications/${app.id}/documents`, { kind: u.kind }, u);
    await officer.postJson(`/applications/${app.id}/identity-check`, identityCheckInput());
    expect((await officer.postJson(`/applications/${app.id}/decision`, { decision: "ra_approve" })).status).toBe(200);
    const ir = (await officer.postJson(`/applications/${app.id}/issuance-request`, {})).json().issuanceRequest;
    expect((await approverApi.postJson(`/issuance-requests/${ir.id}/approve`, {})).status).toBe(200);
    await db("applications").where({ id: app.id }).update({ organization_latin: null });
    const failedRun = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(failedRun.failed).toHaveLength(1);
    const blankCard = (await db("issuance_requests").where({ id: ir.id }).first()).card_label;

    // The approver (who approved it first) sees the failure in Japanese with the field.
    const page = await signedIn("/ra", s.approver);
    await page.goto(`${server.url}/ra/issuance-requests?state=failed`);
    expect(await page.content()).toContain("施設名（英字）");
    await page.screenshot({ path: artifact("corrections-2-failed-list.png"), fullPage: true });
    await Promise.all([page.waitForURL(/\/ra\/applications\/\d+$/), page.getByRole("link", { name: "訂正・再発行" }).click()]);
    const failure = page.locator("#issuance-failure");
    await expect.poll(() => failure.textContent()).toContain("施設名（英字）");
    expect(await failure.textContent()).not.toContain("invalid subject");
    await page.screenshot({ path: artifact("corrections-3-failed-request.png"), fullPage: true });
    await page.locator("section[aria-labelledby='h-issuance']").screenshot({ path: artifact("corrections-3b-failure-panel.png") });

    // Correct 施設名（英字） through the form.
    await Promise.all([page.waitForURL(/\/edit$/), page.locator("#issuance-failure ~ ol").getByRole("link", { name: "申込内容を訂正" }).click()]);
    expect(await page.locator('[name="organizationLatin"]').inputValue()).toBe("");
    await page.locator('[name="organizationLatin"]').fill("Suzuki Naika Clinic");
    await page.screenshot({ path: artifact("corrections-4-edit-form.png"), fullPage: true });
    await Promise.all([page.waitForURL(/\/ra\/applications\/\d+$/), page.getByRole("button", { name: "訂正を保存する" }).click()]);
    expect(await page.content()).toContain("申込を訂正しました（1項目）");
    await page.screenshot({ path: artifact("corrections-5-corrected.png"), fullPage: true });
    await Promise.all([page.waitForURL(/\/ra\/applications\/\d+$/), page.getByRole("button", { name: "訂正内容で再申請する" }).click()]);
    const after = await page.content();
    expect(after).toContain("訂正者・作成者以外の承認者の承認が必要です");
    expect(after).toContain("未使用のため解放しました");
    await page.screenshot({ path: artifact("corrections-6-resubmitted.png"), fullPage: true });

    // Another approver approves it in the issuance-request list.
    const page2 = await signedIn("/ra", s.approver2);
    await page2.goto(`${server.url}/ra/issuance-requests?state=requested`);
    await Promise.all([page2.waitForLoadState("load"), page2.locator(`form[action$='/issuance-requests/${ir.id}/approve'] button[type='submit']`).click()]);
    expect((await db("issuance_requests").where({ id: ir.id }).first()).state).toBe("approved");

    // The IA issues it on a new card; delivery to the RA desk; handover; receipt review.
    const run = await personaliseApprovedRequests(t.ctx, s.ia.operator);
    expect(run.failed).toEqual([]);
    expect(run.issued[0].cardLabel).not.toBe(blankCard);
    expect((await db("cards").where({ label: blankCard }).first()).status).toBe("blank");
    const { batch } = await createDeliveryBatch(db, s.ia.operator, null);
    await shipDeliveryBatch(db, s.ia.operator, Number(batch.id));
    expect((await officer.postJson(`/deliveries/${batch.id}/receive`, {})).status).toBe(200);
    const receiptDoc = await officer.upload(`/applications/${app.id}/documents`, { kind: "signed_receipt" }, { filename: "receipt.pdf", bytes: samplePdf("browser receipt") });
    const handed = await officer.postJson(`/applications/${app.id}/handover`, { documentType: "passport", documentNumber: "TK1234567", photoMatches: "on", signedReceiptDocumentId: receiptDoc.json().document.id });
    expect(handed.status, handed.text).toBe(200);
    const receipt = (await approverApi.getJson("/receipts")).json().receipts.find((x: { applicationId: number }) => x.applicationId === app.id);
    expect((await approverApi.postJson(`/receipts/${receipt.id}/review`, { decision: "accept" })).status).toBe(200);
    await page.goto(`${server.url}/ra/applications/${app.id}`);
    expect(await page.content()).toContain("完了");
    await page.screenshot({ path: artifact("corrections-7-completed.png"), fullPage: true });
  });
});
