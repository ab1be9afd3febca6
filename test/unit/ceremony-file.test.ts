/** Ceremony files (src/ia/ceremony-file.ts): CRL URLs per CA, {repoUrl}-relative or defaulted. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseCeremonyFile } from "../../src/ia/ceremony-file.ts";
import { REPOSITORY_POLICIES_DIR } from "../../src/config.ts";

const demo = fs.readFileSync(path.join(REPOSITORY_POLICIES_DIR, "ceremony.demo.yaml"), "utf8");
const withSignCaUrl = (url: string) =>
  demo.replace("    key: { label: demo-sign-ca-1, algorithm: RSA-2048 }\n", `    key: { label: demo-sign-ca-1, algorithm: RSA-2048 }\n    crlUrl: ${url}\n`);

describe("ceremony file CRL URLs", () => {
  it("the demo file names no URL: every CA defaults to {repoUrl}/crl/<name>.crl at the ceremony", () => {
    const f = parseCeremonyFile(demo, "demo");
    expect(f.root.arlUrl).toBeUndefined();
    expect(f.issuingCAs.map((c) => c.crlUrl)).toEqual([undefined, undefined, undefined, undefined]);
    expect(demo).not.toContain("localhost:8080/");
  });

  it("a CA may name its own URL, absolute or {repoUrl}-relative; anything else is refused", () => {
    expect(parseCeremonyFile(withSignCaUrl("https://crl.example.jp/sign.crl"), "t").issuingCAs[0].crlUrl).toBe("https://crl.example.jp/sign.crl");
    expect(parseCeremonyFile(withSignCaUrl("\"{repoUrl}/rlist/sign2.crl\""), "t").issuingCAs[0].crlUrl).toBe("{repoUrl}/rlist/sign2.crl");
    expect(() => parseCeremonyFile(withSignCaUrl("ftp://crl.example.jp/sign.crl"), "t")).toThrow(/crlUrl: an http\(s\) URL, or \{repoUrl\}/);
  });
});
