/**
 * The readers' key agreements shared with the helper thread (src/pki/key-agreement-pool.ts): every
 * Z must be the ECDH of the returned ephemeral point with the reader's private key, in the readers'
 * order, whichever thread did it; the shared buffer is zeroed after.
 */
import { createECDH } from "node:crypto";
import { describe, expect, it } from "vitest";
import { agreeKey, keyAgreementHelperOnline, startKeyAgreements } from "../../src/pki/key-agreement-pool.ts";

async function helperOnline(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!keyAgreementHelperOnline()) {
    if (Date.now() > deadline) throw new Error("key agreement helper thread did not come online");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("startKeyAgreements", () => {
  const readers = Array.from({ length: 40 }, () => {
    const r = createECDH("prime256v1");
    return { point: r.generateKeys(), reader: r };
  });

  it("with the helper online, gives each reader a fresh ephemeral key and the Z its private key derives", async () => {
    await helperOnline();
    for (const n of [1, 2, 40]) {
      const agreements = startKeyAgreements(readers.slice(0, n).map((r) => r.point), { sideWorkBytes: 1 << 20 });
      const done = agreements.finish();
      expect(done).toHaveLength(n);
      done.forEach((a, i) => {
        expect(a.ephemeralPoint).toHaveLength(65);
        expect(a.z.equals(readers[i].reader.computeSecret(a.ephemeralPoint))).toBe(true);
      });
      expect(new Set(done.map((a) => a.ephemeralPoint.toString("hex"))).size).toBe(n);
    }
  });

  it("with nothing to overlap (one reader, little content), agrees on this thread the same way", () => {
    const a = agreeKey(readers[0].point);
    expect(a.z.equals(readers[0].reader.computeSecret(a.ephemeralPoint))).toBe(true);
    const [b] = startKeyAgreements([readers[1].point]).finish();
    expect(b.z.equals(readers[1].reader.computeSecret(b.ephemeralPoint))).toBe(true);
  });

  it("a point not on the curve fails as node:crypto fails, not with a wrong Z", async () => {
    await helperOnline();
    const bad = Buffer.from(readers[0].point);
    bad[64] ^= 1;
    const points = [...readers.slice(0, 5).map((r) => r.point), bad];
    expect(() => startKeyAgreements(points).finish()).toThrow();
  });
});
