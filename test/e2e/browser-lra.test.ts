/**
 * A browser test: Debian's Chromium (headless, driven by playwright-core — no browser download)
 * signs in to the LRA console as a reviewer with password + TOTP, takes an application through
 * the intake form, uploads a scanned document and sees the application listed. The screenshot of
 * the list is kept as a test artifact in test-artifacts/.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifact } from "../helpers/chromium.ts";
import { signInReviewer, startLraBrowser, type LraBrowser } from "../helpers/lra-browser.ts";
import { demoRegisterRows, samplePdf } from "../helpers/pipeline.ts";

let x: LraBrowser;

beforeAll(async () => {
  x = await startLraBrowser("browser-lra-");
});
afterAll(async () => x?.close());

describe("LRA console in Chromium", () => {
  it("signs in, submits an application with an upload and sees it listed", { timeout: 120_000 }, async () => {
    const r = demoRegisterRows()[0];
    const page = await signInReviewer(x);

    await page.goto(`${x.server.url}/lra/applications/new`);
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

    const pdf = path.join(x.home, "licence-copy.pdf");
    fs.writeFileSync(pdf, samplePdf("browser"));
    const upload = page.locator("form", { has: page.locator('input[name="file"]') });
    await upload.locator('[name="kind"]').selectOption("licence_copy");
    await upload.locator('input[name="file"]').setInputFiles(pdf);
    // The upload posts in place (views/static/desk.js): wait for the stored document's row.
    await upload.locator('button[type="submit"]').click();
    await page.locator("#docs a", { hasText: "licence-copy.pdf" }).first().waitFor();
    await page.goto(detailUrl);
    expect(await page.content()).toContain("licence-copy.pdf");

    await page.goto(`${x.server.url}/lra/applications`);
    const list = await page.content();
    expect(list).toContain(r.name_kanji);
    const shot = artifact("lra-application-list.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(1000);
    const docs = await x.t.db("application_documents").count({ n: "*" });
    expect(Number(docs[0].n)).toBe(1);
  });
});
