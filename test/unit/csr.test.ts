import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkCsrKey, CsrError, parseCertificationRequest, type ParsedCsr } from "../../src/pki/csr.ts";

let dir: string;
const pem: Record<string, string> = {};
const der = (name: string) =>
  Buffer.from(pem[name].replace(/-----[^-]+-----/g, "").replace(/\s/g, ""), "base64");

/** `openssl req -new` with a fresh key; extra args select key type and digest. */
function makeCsr(name: string, newkey: string[], extra: string[] = [], subj = "/C=JP/O=Test Clinic/CN=Taro Yamada/serialNumber=T0001") {
  const out = join(dir, `${name}.csr`);
  execFileSync("openssl", ["req", "-new", "-utf8", ...newkey, "-nodes", "-keyout", join(dir, `${name}.key`), "-subj", subj, "-out", out, ...extra], {
    stdio: "pipe",
  });
  pem[name] = readFileSync(out, "utf8");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "hpki-csr-"));
  makeCsr("rsa2048", ["-newkey", "rsa:2048"], [], "/C=JP/O=医療情報大学病院/CN=神楽坂　三十四/serialNumber=Test117120");
  makeCsr("rsa1024", ["-newkey", "rsa:1024"]);
  makeCsr("p256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-addext", "keyUsage=critical,digitalSignature"]);
  makeCsr("p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-sha384"]);
  makeCsr("k256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]);
  makeCsr("ed25519", ["-newkey", "ed25519"]);
  makeCsr("sha1", ["-newkey", "rsa:2048"], ["-sha1"]);
  makeCsr("pss", ["-newkey", "rsa:2048"], ["-sigopt", "rsa_padding_mode:pss"]);
  makeCsr("dsa", ["-newkey", "dsa:" + makeDsaParams()]);
  makeCsr("e3", ["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"]);
}, 120_000);

function makeDsaParams(): string {
  const f = join(dir, "dsa.params");
  execFileSync("openssl", ["genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:1024", "-out", f], { stdio: "pipe" });
  return f;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(input: Uint8Array | string): Promise<CsrError> {
  try {
    await parseCertificationRequest(input);
  } catch (e) {
    expect(e).toBeInstanceOf(CsrError);
    const err = e as CsrError;
    expect(err.message.length).toBeGreaterThan(10);
    expect(err.messageJa).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
    return err;
  }
  throw new Error("expected the CSR to be refused");
}

describe("parseCertificationRequest accepts good requests", () => {
  it("RSA-2048 PEM, SHA-256, kanji subject; DER and Uint8Array PEM give the same result", async () => {
    const c = await parseCertificationRequest(pem.rsa2048);
    expect(c.keyAlgorithm).toBe("RSA");
    expect(c.rsaModulusBits).toBe(2048);
    expect(c.rsaPublicExponent).toBe(65537);
    expect(c.namedCurve).toBeUndefined();
    expect(c.signatureAlgorithm).toBe("1.2.840.113549.1.1.11");
    expect(c.signatureAlgorithmName).toBe("sha256WithRSAEncryption");
    expect(c.subject.text).toBe("C=JP, O=医療情報大学病院, CN=神楽坂　三十四, serialNumber=Test117120");
    expect(c.subject.rdns[2][0]).toMatchObject({ shortName: "CN", value: "神楽坂　三十四", stringType: "UTF8String" });
    // SPKI must be the same bytes openssl derives from the key.
    const spki = execFileSync("openssl", ["pkey", "-in", join(dir, "rsa2048.key"), "-pubout", "-outform", "DER"]);
    expect(c.subjectPublicKeyInfo.equals(spki)).toBe(true);
    expect(c.der.equals(der("rsa2048"))).toBe(true);
    expect(await parseCertificationRequest(der("rsa2048"))).toEqual(c);
    expect(await parseCertificationRequest(Buffer.from(pem.rsa2048))).toEqual(c);
  });

  it("P-256 (ecdsa-with-SHA256) and P-384 (SHA-384)", async () => {
    const p256 = await parseCertificationRequest(pem.p256);
    expect(p256).toMatchObject({ keyAlgorithm: "EC", namedCurve: "P-256", signatureAlgorithm: "1.2.840.10045.4.3.2" });
    expect(p256.rsaModulusBits).toBeUndefined();
    const spki = execFileSync("openssl", ["pkey", "-in", join(dir, "p256.key"), "-pubout", "-outform", "DER"]);
    expect(p256.subjectPublicKeyInfo.equals(spki)).toBe(true);
    expect(p256.attributeTypes).toEqual(["1.2.840.113549.1.9.14"]); // extensionRequest from -addext
    const p384 = await parseCertificationRequest(pem.p384);
    expect(p384).toMatchObject({ namedCurve: "P-384", signatureAlgorithmName: "ecdsa-with-SHA384" });
  });

  it("tolerates explanatory text around the PEM block and the legacy NEW label", async () => {
    const wrapped = `Subject: Taro\nsome junk ~~~ 123\n${pem.p256}\ntrailing junk\n`;
    expect((await parseCertificationRequest(wrapped)).namedCurve).toBe("P-256");
    const legacy = pem.p256.replace(/CERTIFICATE REQUEST/g, "NEW CERTIFICATE REQUEST");
    expect((await parseCertificationRequest(legacy)).namedCurve).toBe("P-256");
  });
});

describe("parseCertificationRequest refuses", () => {
  it("random garbage, empty input and text without PEM as malformed", async () => {
    expect((await refusal(randomBytes(300))).code).toBe("malformed");
    expect((await refusal(Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), randomBytes(256)]))).code).toBe("malformed");
    expect((await refusal(new Uint8Array(0))).code).toBe("malformed");
    expect((await refusal("hello")).code).toBe("malformed");
    expect((await refusal(Buffer.from("300301020304", "hex"))).message).toMatch(/overrun/);
  });

  it("junk inside the PEM base64 as malformed", async () => {
    const lines = pem.rsa2048.split("\n");
    lines.splice(3, 0, "!!junk!!");
    expect((await refusal(lines.join("\n"))).code).toBe("malformed");
    const truncated = pem.rsa2048.replace(/\n[A-Za-z0-9+/=]+\n-----END/, "\n-----END");
    expect((await refusal(truncated)).code).toBe("malformed");
  });

  it("trailing bytes after the DER as malformed", async () => {
    const e = await refusal(Buffer.concat([der("p256"), Buffer.from([0, 0])]));
    expect(e.code).toBe("malformed");
    expect(e.message).toMatch(/trailing/);
  });

  it("BER indefinite-length encoding as malformed", async () => {
    const d = der("p256");
    const header = d[1] & 0x80 ? 2 + (d[1] & 0x7f) : 2; // 30 8n LL…: skip the definite length
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), d.subarray(header), Buffer.from([0, 0])]);
    expect((await refusal(ber)).code).toBe("malformed");
  });

  it("a certificate (valid DER, wrong structure) as malformed", async () => {
    const cert = readFileSync(new URL("../fixtures/hpki-real/certs/medis-sign-ca2.der", import.meta.url));
    expect((await refusal(cert)).code).toBe("malformed");
  });

  it("one flipped signature byte as bad-signature", async () => {
    for (const name of ["rsa2048", "p256"]) {
      const d = Buffer.from(der(name));
      d[d.length - 5] ^= 0x01;
      const e = await refusal(d);
      expect(e.code).toBe("bad-signature");
      expect(e.messageJa).toContain("署名");
    }
  });

  it("ECDSA signature parameters or unused signature bits as malformed", async () => {
    const d = der("p256");
    const ecdsaSha256 = Buffer.from("300a06082a8648ce3d040302", "hex");
    const at = d.lastIndexOf(ecdsaSha256);
    expect(at).toBeGreaterThan(0);
    // Re-frame the outer SEQUENCE after swapping in an AlgorithmIdentifier with a NULL parameter.
    const withNull = Buffer.from("300c06082a8648ce3d0403020500", "hex");
    const body = Buffer.concat([d.subarray(d[1] & 0x80 ? 2 + (d[1] & 0x7f) : 2, at), withNull, d.subarray(at + ecdsaSha256.length)]);
    const reframed = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    expect((await refusal(reframed)).message).toMatch(/parameters/);
    const unused = Buffer.from(d);
    const bitAt = at + ecdsaSha256.length; // 03 LL 00 <ECDSA-Sig-Value>; P-256 signatures are < 128 bytes
    expect(unused[bitAt]).toBe(0x03);
    unused[bitAt + 2] = 1;
    expect((await refusal(unused)).message).toMatch(/unused bits|BIT STRING/);
  });

  it("a tampered subject as bad-signature", async () => {
    const d = Buffer.from(der("p256"));
    const at = d.indexOf(Buffer.from("Taro Yamada"));
    d[at] = "J".charCodeAt(0);
    expect((await refusal(d)).code).toBe("bad-signature");
  });

  it("Ed25519, DSA, secp256k1, SHA-1 and RSA-PSS as unsupported-algorithm", async () => {
    for (const [name, re] of [
      ["ed25519", /ED25519/],
      ["dsa", /dsa-with-SHA256|1\.2\.840\.10040/],
      ["k256", /secp256k1/],
      ["sha1", /sha1WithRSAEncryption/],
      ["pss", /rsassaPss/],
    ] as const) {
      const e = await refusal(pem[name]);
      expect(e.code, name).toBe("unsupported-algorithm");
      expect(e.message, name).toMatch(re);
    }
  });
});

describe("checkCsrKey", () => {
  const policy = [
    { algorithm: "RSA" as const, minBits: 2048 },
    { algorithm: "EC" as const, curves: ["P-256"] },
  ];
  let rsa2048: ParsedCsr, rsa1024: ParsedCsr, p256: ParsedCsr, p384: ParsedCsr, e3: ParsedCsr;
  beforeAll(async () => {
    [rsa2048, rsa1024, p256, p384, e3] = await Promise.all(["rsa2048", "rsa1024", "p256", "p384", "e3"].map((n) => parseCertificationRequest(pem[n])));
  });
  const code = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as CsrError).code;
    }
    return "ok";
  };

  it("accepts keys a rule allows", () => {
    expect(code(() => checkCsrKey(rsa2048, policy))).toBe("ok");
    expect(code(() => checkCsrKey(p256, policy))).toBe("ok");
    expect(code(() => checkCsrKey(rsa2048, [{ algorithm: "RSA", bits: [2048, 4096] }]))).toBe("ok");
  });

  it("refuses RSA-1024, a wrong curve, a small exponent and sizes outside `bits` as weak-key", () => {
    expect(code(() => checkCsrKey(rsa1024, policy))).toBe("weak-key");
    expect(code(() => checkCsrKey(p384, policy))).toBe("weak-key");
    expect(code(() => checkCsrKey(e3, policy))).toBe("weak-key");
    expect(code(() => checkCsrKey(rsa2048, [{ algorithm: "RSA", bits: [4096] }]))).toBe("weak-key");
    expect(() => checkCsrKey(rsa1024, policy)).toThrow(/RSA-1024/);
  });

  it("refuses an algorithm no rule names as unsupported-algorithm", () => {
    expect(code(() => checkCsrKey(p256, [{ algorithm: "RSA", minBits: 2048 }]))).toBe("unsupported-algorithm");
  });
});
