/**
 * Debian's Chromium for browser tests, driven by playwright-core (no browser download), and the
 * folder where their screenshots are kept (test-artifacts/).
 */
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
// Flags from the machine notes: the closed network refuses Chromium's background connections.
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Where screenshots go (created on first use). */
export const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts");

/** Headless Chromium; close it in afterAll. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** The path of screenshot `name` in ARTIFACTS (the folder is created). */
export function artifact(name: string): string {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
