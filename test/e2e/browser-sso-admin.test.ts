/**
 * The SSO administration console in Debian's Chromium (playwright-core): an administrator signs in
 * with password + TOTP, registers a clinical system ticking two qualifications (repeated form
 * fields as a real browser sends them), reads the secret shown once, and sees the service listed.
 * The screenshot of the service page is kept in test-artifacts/.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { artifact, launchChromium } from "../helpers/chromium.ts";
import { loadConfig } from "../../src/config.ts";
import { findClient } from "../../src/sso/clients.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { tempDir } from "../helpers/openssl.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";


let t: TestDb;
let server: StartedServer;
let browser: Browser;
let adminOp: TestOperator;
const home = tempDir("browser-sso-admin-");

beforeAll(async () => {
  t = await openTestDatabase();
  adminOp = await createTestOperator(t.db, "admin");
  server = await startServer({ cfg: loadConfig({ HPKI_HOME: home }), db: t.db, roles: ["sso"], port: 0 });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await t?.cleanup();
  fs.rmSync(home, { recursive: true, force: true });
});

describe("SSO administration console in Chromium", () => {
  it("registers a service with two allowed qualifications and shows its secret once", { timeout: 120_000 }, async () => {
    const page = await (await browser.newContext({ locale: "ja-JP" })).newPage();
    await page.goto(`${server.url}/sso/admin/clients/new`);
    expect(page.url()).toContain("/sso/admin/login");
    await page.fill('input[name="username"]', adminOp.username);
    await page.fill('input[name="password"]', adminOp.password);
    await page.fill('input[name="totp"]', await adminOp.nextCode());
    await Promise.all([page.waitForURL(`${server.url}/sso/admin/clients/new`), page.click('form button[type="submit"]')]);

    const form = page.locator("form", { has: page.locator('input[name="clientId"]') });
    await form.locator('[name="clientId"]').fill("rhin-tokyo");
    await form.locator('[name="name"]').fill("東京都地域医療連携ネットワーク");
    await form.locator('[name="redirectUris"]').fill("https://rhin.example.jp/oidc/callback\nhttps://rhin.example.jp/oidc/callback2");
    await form.locator('input[name="allowedHcRoles"][value="Medical Doctor"]').check();
    await form.locator('input[name="allowedHcRoles"][value="Pharmacist"]').check();
    await Promise.all([page.waitForLoadState("load"), form.locator('button[type="submit"]').click()]);
    expect(await page.locator("h1").first().textContent()).toContain("サービスを登録しました");
    const secret = (await page.locator("code.secret").textContent())!.trim();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const c = (await findClient(t.db, "rhin-tokyo"))!;
    expect(c.allowedHcRoles.sort()).toEqual(["Medical Doctor", "Pharmacist"]);
    expect(c.redirectUris).toEqual(["https://rhin.example.jp/oidc/callback", "https://rhin.example.jp/oidc/callback2"]);

    await page.click("text=控えました。サービスの画面へ");
    await page.waitForURL(`${server.url}/sso/admin/clients/rhin-tokyo`);
    expect(await page.content()).not.toContain(secret);
    expect(await page.locator('input[name="allowedHcRoles"][value="Pharmacist"]').isChecked()).toBe(true);
    await page.screenshot({ path: artifact("sso-admin-client.png"), fullPage: true });
  });
});
