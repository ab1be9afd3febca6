/**
 * `hpki pobox demo` (issue 15 §9) as a CLI process on a fresh $HPKI_HOME and database: the key
 * ceremony, enc certificates, the box served; a referral with an image forwarded (content
 * unchanged), a prescription re-encrypted to the pharmacist on duty, a revoked JPKI certificate
 * refused, a diagnosis opened by the patient; no plaintext at the box; the audit chain intact. Run
 * twice: the second run reuses the state (fresh names).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";

let h: CliHarness;

beforeAll(async () => {
  h = await openCliHarness("pobox-demo-");
});

afterAll(async () => {
  await h?.cleanup();
});

describe("hpki pobox demo", () => {
  it("runs every step and says so in one JSON line, twice", () => {
    for (let i = 0; i < 2; i++) {
      const r = h.hpki("pobox", "demo", "--json");
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.json()).toMatchObject({
        ok: true, referral: { contentUnchanged: true }, prescription: { openedAs: "designee" }, diagnosis: { patient: expect.stringMatching(/^PT[0-9A-F]{24}$/) },
        revokedJpkiRefused: true, plaintextAtBox: false, auditChainIntact: true,
      });
    }
  }, 300_000);
});
