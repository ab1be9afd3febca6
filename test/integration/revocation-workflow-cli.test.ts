/**
 * The revocation-workflow commands as a child process: `hpki revocation-requests list|execute`
 * and `hpki notices send` on a fresh home (empty queue), with their JSON shapes and errors.
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

let h: CliHarness;
beforeAll(async () => {
  h = await openCliHarness("hpki-revocation-cli-");
});
afterAll(async () => h?.cleanup());

describe("hpki revocation-requests / notices", () => {
  it("lists and executes an empty queue, sends no notice, refuses a bad --now", { timeout: 120_000 }, () => {
    const list = h.hpki("revocation-requests", "list", "--json");
    expect(list.code).toBe(0);
    expect(list.json()).toEqual({ requests: [] });
    const exec = h.hpki("revocation-requests", "execute", "--json");
    expect(exec.code).toBe(0);
    expect(exec.json()).toEqual({ executed: [], failed: [] });
    const send = h.hpki("notices", "send", "--now", "2031-01-01T00:00:00Z", "--json");
    expect(send.code).toBe(0);
    expect(send.json()).toMatchObject({ due: 0, sent: [], failed: [], now: "2031-01-01T00:00:00.000Z", transport: `file:${h.home}/mail/notices` });
    const bad = h.hpki("notices", "send", "--now", "tomorrow");
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("タイムゾーン付き");
    expect(fs.existsSync(`${h.home}/mail/notices`)).toBe(false);
  });
});
