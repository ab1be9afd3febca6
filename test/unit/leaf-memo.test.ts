/** The verifier's memo of parsed login certificates (src/status/leaf-memo.ts): by DER bytes, bounded, least recently used out first. */
import { describe, expect, it } from "vitest";
import type { CertificateIdentity } from "../../src/status/certificate-identity.ts";
import { LeafMemo } from "../../src/status/leaf-memo.ts";
import type { ParsedCertificate } from "../../src/pki/x509-parse.ts";

const entry = (n: number) => ({ leaf: { der: new Uint8Array([n]) } as ParsedCertificate, identity: { subscriberId: `S${n}` } as CertificateIdentity });
const der = (n: number) => new Uint8Array([0x30, n]);

describe("LeafMemo", () => {
  it("answers by the bytes, not the object", () => {
    const m = new LeafMemo(4);
    m.set(der(1), entry(1));
    expect(m.get(new Uint8Array([0x30, 1]))?.identity.subscriberId).toBe("S1");
    expect(m.get(der(2))).toBeUndefined();
  });

  it("keeps at most max entries, dropping the least recently used", () => {
    const m = new LeafMemo(2);
    m.set(der(1), entry(1));
    m.set(der(2), entry(2));
    m.get(der(1)); // 1 is now the most recently used
    m.set(der(3), entry(3));
    expect(m.size).toBe(2);
    expect(m.get(der(2))).toBeUndefined();
    expect(m.get(der(1))?.identity.subscriberId).toBe("S1");
    expect(m.get(der(3))?.identity.subscriberId).toBe("S3");
  });
});
