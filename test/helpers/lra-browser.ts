/**
 * An LRA console in Chromium for browser tests: a fresh database with the demo licence register,
 * one LRA reviewer (association 13-001), the LRA role server on port 0 and Debian's Chromium; and
 * the reviewer's password + TOTP sign-in on a new page (Japanese locale).
 */
import fs from "node:fs";
import type { Browser, Page } from "playwright-core";
import { loadConfig } from "../../src/config.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import { launchChromium } from "./chromium.ts";
import { openTestDatabase, type TestDb } from "./db.ts";
import { tempDir } from "./openssl.ts";
import { createTestOperator, type TestOperator } from "./operators.ts";
import { DEMO_LICENCE_REGISTER } from "./pipeline.ts";

export interface LraBrowser {
  t: TestDb;
  server: StartedServer;
  browser: Browser;
  reviewer: TestOperator;
  /** A private temporary directory (HPKI_HOME, files to upload). */
  home: string;
  close(): Promise<void>;
}

/** Starts the database, the LRA console and Chromium (see the module comment). */
export async function startLraBrowser(prefix: string): Promise<LraBrowser> {
  const home = tempDir(prefix);
  const t = await openTestDatabase();
  await importLicenceRegister(t.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  const reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
  const server = await startServer({ cfg: loadConfig({ HPKI_HOME: home }), db: t.db, roles: ["lra"], port: 0 });
  const browser = await launchChromium();
  return {
    t, server, browser, reviewer, home,
    async close() {
      await browser.close();
      await server.close();
      await t.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A new page signed in as the reviewer (password + TOTP), left on the console home. */
export async function signInReviewer(x: LraBrowser, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await (await x.browser.newContext({ locale: "ja-JP", ...(viewport ? { viewport } : {}) })).newPage();
  await page.goto(`${x.server.url}/lra/login`);
  await page.fill('input[name="username"]', x.reviewer.username);
  await page.fill('input[name="password"]', x.reviewer.password);
  await page.fill('input[name="totp"]', await x.reviewer.nextCode());
  await Promise.all([page.waitForURL(`${x.server.url}/lra/`), page.click('form button[type="submit"]')]);
  return page;
}
