/**
 * A browser test: Debian's Chromium (headless, driven by playwright-core — no browser download)
 * signs in to the LRA console as a reviewer with password + TOTP, takes an application through
 * the intake form, uploads a scanned document and sees the application listed. The screenshot of
 * the list is kept as a test artifact in test-artifacts/.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { loadConfig } from "../../src/config.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { tempDir } from "../helpers/openssl.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { demoRegisterRows, DEMO_LICENCE_REGISTER, samplePdf } from "../helpers/pipeline.ts";


let t: TestDb;
let server: StartedServer;
let browser: Browser;
let reviewer: TestOperator;
const home = tempDir("browser-lra-");

beforeAll(async () => {
  t = await openTestDatabase();
  await importLicenceRegister(t.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
  server = await startServer({ cfg: loadConfig({ HPKI_HOME: home }), db: t.db, roles: ["lra"], port: 0 });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await t?.cleanup();
  fs.rmSync(home, { recursive: true, force: true });
});

describe("LRA console in Chromium", () => {
  it("signs in, submits an application with an upload and sees it listed", { timeout: 120_000 }, async () => {
    const r = demoRegisterRows()[0];
    const page = await (await browser.newContext({ locale: "ja-JP" })).newPage();
    await page.goto(`${server.url}/lra/login`);
    await page.fill('input[name="username"]', reviewer.username);
    await page.fill('input[name="password"]', reviewer.password);
    await page.fill('input[name="totp"]', await reviewer.nextCode());
    await Promise.all([page.waitForURL(`${server.url}/lra/`), page.click('form button[type="submit"]')]);

    await page.goto(`${server.url}/lra/applications/new`);
    const form = page.locator("form", { has: page.locator('input[name="formToken"]') });
    await form.locator('[name="nameKanji"]').fill(r.name_kanji);
    await form.locator('[name="nameKana"]').fill(r.name_kana);
    await form.locator('[name="nameLatin"]').fill("Taro Yamada");
    await form.locator('[name="birthDate"]').fill(r.birth_date);
    await form.locator('[name="postalCode"]').fill("100-0005");
    await form.locator('[name="address"]').fill("東京都千代田区丸の内一丁目1番1号");
    await form.locator('[name="phone"]').fill("03-1234-5678");
    await form.locator('[name="email"]').fill("taro.yamada@example.jp");
    await form.locator('[name="qualification"]').selectOption(r.qualification);
    await form.locator('[name="licenceNumber"]').fill(r.registration_number);
    await form.locator('[name="licenceDate"]').fill(r.registration_date);
    await form.locator('[name="organizationKanji"]').fill("東京中央病院");
    await form.locator('[name="organizationLatin"]').fill("Tokyo Chuo Hospital");
    await form.locator('[name="requestSign"]').check();
    await Promise.all([page.waitForURL(/\/lra\/applications\/\d+$/), form.locator('button[type="submit"]').last().click()]);
    const detailUrl = page.url();
    expect(await page.content()).toContain(r.name_kanji);

    const pdf = path.join(home, "licence-copy.pdf");
    fs.writeFileSync(pdf, samplePdf("browser"));
    const upload = page.locator("form", { has: page.locator('input[name="file"]') });
    await upload.locator('[name="kind"]').selectOption("licence_copy");
    await upload.locator('input[name="file"]').setInputFiles(pdf);
    await Promise.all([page.waitForLoadState("load"), upload.locator('button[type="submit"]').click()]);
    await page.goto(detailUrl);
    expect(await page.content()).toContain("licence-copy.pdf");

    await page.goto(`${server.url}/lra/applications`);
    const list = await page.content();
    expect(list).toContain(r.name_kanji);
    const shot = artifact("lra-application-list.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(1000);
    const docs = await t.db("application_documents").count({ n: "*" });
    expect(Number(docs[0].n)).toBe(1);
  });
});
