/**
 * Chromium (issue 12 §4–§5): the intake form sent with mistakes comes back as typed with an error
 * summary that names each field and has the focus (views/static/form-errors.js, no inline script);
 * 和暦 and full-width input typed into the form are accepted; the postal code fills the address.
 * Screenshots in test-artifacts/ (desk-input-error-summary.png, desk-input-accepted.png).
 */
import fs from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { formatWareki } from "../../src/pipeline/wareki.ts";
import { importPostcodes } from "../../src/registration/postcodes.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { encodeShiftJis, KEN_ALL_SAMPLE } from "../helpers/ken-all.ts";
import { tempDir } from "../helpers/openssl.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { demoRegisterRows, DEMO_LICENCE_REGISTER } from "../helpers/pipeline.ts";

let t: TestDb;
let server: StartedServer;
let browser: Browser;
let reviewer: TestOperator;
const home = tempDir("browser-desk-input-");
const fw = (s: string) => s.replace(/[0-9]/g, (d) => String.fromCharCode(d.charCodeAt(0) + 0xfee0));

beforeAll(async () => {
  t = await openTestDatabase();
  await importLicenceRegister(t.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  await importPostcodes(t.db, encodeShiftJis(KEN_ALL_SAMPLE), { actor: "test", role: "ra" });
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

async function signIn(page: Page): Promise<void> {
  await page.goto(`${server.url}/lra/login`);
  await page.fill('input[name="username"]', reviewer.username);
  await page.fill('input[name="password"]', reviewer.password);
  await page.fill('input[name="totp"]', await reviewer.nextCode());
  await Promise.all([page.waitForURL(`${server.url}/lra/`), page.click('form button[type="submit"]')]);
}

describe("intake form in Chromium", () => {
  it("shows an error summary naming each field, with the focus, and keeps what was typed", { timeout: 120_000 }, async () => {
    const page = await (await browser.newContext({ locale: "ja-JP", viewport: { width: 1100, height: 900 } })).newPage();
    const csp: string[] = [];
    page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
    await signIn(page);
    await page.goto(`${server.url}/lra/applications/new`);
    const form = page.locator("form", { has: page.locator('input[name="formToken"]') });
    await form.locator('[name="nameKanji"]').fill("山﨑　太郎");
    await form.locator('[name="postalCode"]').fill("１２３");
    await form.locator('[name="phone"]').fill("０３ー１２３４ー５６７８");
    await form.locator('[name="birthDate"]').fill("平成31年5月1日");
    await Promise.all([page.waitForLoadState("load"), form.locator('button[type="submit"]').last().click()]);
    const summary = page.locator("[data-error-summary]");
    await summary.waitFor();
    await page.waitForFunction(() => document.activeElement?.hasAttribute("data-error-summary") === true);
    const items = await summary.locator("li").allInnerTexts();
    expect(items.some((x) => x.startsWith("フリガナ："))).toBe(true);
    expect(items.some((x) => x.startsWith("郵便番号："))).toBe(true);
    expect(items.some((x) => x.startsWith("生年月日：") && x.includes("昭和55年4月1日"))).toBe(true);
    expect(items.filter((x) => x.includes("必須項目です。")).every((x) => /^[^：]+：必須項目です。$/.test(x))).toBe(true);
    expect(await form.locator('[name="nameKanji"]').inputValue()).toBe("山﨑　太郎");
    expect(await form.locator('[name="phone"]').inputValue()).toBe("０３ー１２３４ー５６７８");
    fs.writeFileSync(artifact("desk-input-error-summary.png"), await page.screenshot({ fullPage: false }));
    // A link in the summary takes the operator to its field.
    await summary.locator('a[href="#field-postalCode"]').click();
    await page.waitForFunction(() => document.activeElement?.id === "field-postalCode");
    expect(csp).toEqual([]);
  });

  it("accepts 和暦 and full-width input and fills the address from the postal code", { timeout: 120_000 }, async () => {
    const r = demoRegisterRows()[1];
    const page = await (await browser.newContext({ locale: "ja-JP", viewport: { width: 1100, height: 900 } })).newPage();
    await signIn(page);
    await page.goto(`${server.url}/lra/applications/new`);
    const form = page.locator("form", { has: page.locator('input[name="formToken"]') });
    await form.locator('[name="nameKanji"]').fill(r.name_kanji);
    await form.locator('[name="nameKana"]').fill(r.name_kana);
    await form.locator('[name="nameLatin"]').fill("Hanako Sato");
    await form.locator('[name="birthDate"]').fill(fw(formatWareki(r.birth_date)!));
    await form.locator('[name="postalCode"]').fill("１００－０００５");
    await expect.poll(() => form.locator('[name="address"]').inputValue(), { timeout: 10_000 }).toBe("東京都千代田区丸の内");
    await form.locator('[name="address"]').fill("東京都千代田区丸の内一丁目１番１号");
    await form.locator('[name="phone"]').fill("０３ー１２３４ー５６７８");
    await form.locator('[name="email"]').fill("hanako.sato@example.jp");
    await form.locator('[name="qualification"]').selectOption(r.qualification);
    await form.locator('[name="licenceNumber"]').fill(fw(r.registration_number));
    await form.locator('[name="licenceDate"]').fill(r.registration_date.replace(/-/g, "／"));
    await form.locator('[name="organizationKanji"]').fill("東京中央病院");
    await form.locator('[name="organizationLatin"]').fill("Tokyo Chuo Hospital");
    await form.locator('[name="requestSign"]').check();
    await Promise.all([page.waitForURL(/\/lra\/applications\/\d+$/), form.locator('button[type="submit"]').last().click()]);
    const text = await page.locator("main").innerText();
    expect(text).toContain("〒100-0005");
    expect(text).toContain("03-1234-5678");
    expect(text).toContain(`${r.birth_date.slice(0, 4)}年（${formatWareki(r.birth_date)!.replace(/\d+月\d+日$/, "")}）`);
    fs.writeFileSync(artifact("desk-input-accepted.png"), await page.screenshot({ fullPage: false }));
  });
});
