/**
 * The relying party's OCSP pieces without a database: the request encoder (read back by our parser
 * and by `openssl ocsp -reqin`), verifyOcspResponse on responses crafted here with software keys
 * (signed by the CA, by a delegated responder, by keys that may not sign; CertIDs for this and
 * other serials; stale, future, nonce mismatch, error statuses), and OcspFallback over real HTTP
 * against a node:http server that serves such responses (cache, shared lookups, timeouts).
 * The question asked is the status of the issuing CA certificate of a software test chain, whose
 * issuer (the root) signs or delegates.
 */
import { createHash, sign as nodeSign } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCertificate } from "../../src/pki/certificate.ts";
import { octetString } from "../../src/pki/der.ts";
import { encodeHpkiName } from "../../src/pki/name.ts";
import { encodeOcspRequest, ocspNonceExtnValue, parseOcspRequest } from "../../src/pki/ocsp-request.ts";
import { buildResponderTbsCertificate } from "../../src/pki/ocsp-responder-certificate.ts";
import {
  encodeCertId,
  encodeOcspResponse,
  encodeResponseData,
  issuerHashes,
  ocspErrorResponse,
  subjectPublicKeyBits,
  type OcspCertStatus,
} from "../../src/pki/ocsp-response.ts";
import { OcspResponseError, verifyOcspResponse, type OcspQuestion, type OcspVerifyOptions } from "../../src/pki/ocsp-verify.ts";
import { TrustStore } from "../../src/pki/path-validation.ts";
import type { CertIdHashAlgorithm } from "../../src/pki/ocsp-request.ts";
import { parseCertificate } from "../../src/pki/x509-parse.ts";
import { OcspFallback } from "../../src/status/ocsp-fallback.ts";
import { buildTestChain, openssl, tempDir, testKey, type TestKey } from "./helpers/pki-fixtures.ts";

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const { root, ca } = buildTestChain(new Date(now.getTime() - 86_400_000));
const store = new TrustStore([root.cert], [ca.cert]);
const caCert = parseCertificate(ca.cert);
const q: OcspQuestion = { certificate: caCert, issuer: store.issuersOf(caCert)[0] };
const work = tempDir();
const hour = 3_600_000;
const opts = (o: Partial<OcspVerifyOptions> = {}): OcspVerifyOptions => ({ at: now, skewMs: 120_000, maxAgeWithoutNextUpdateMs: hour, ...o });

/** A delegated responder certificate issued by `issuerKey` under the root's name (with OCSPSigning and ocsp-nocheck). */
function responderCert(key: TestKey, issuerKey: TestKey, notAfter = new Date(now.getTime() + 30 * 86_400_000)): Buffer {
  const tbs = buildResponderTbsCertificate({
    issuerName: root.issuer.name,
    issuerKeyIdentifier: root.issuer.keyIdentifier,
    signatureAlgorithm: issuerKey.alg,
    serialNumber: Buffer.from([0x7a, 0x01]),
    subjectName: encodeHpkiName({ o: "hpki-ca test", cn: "Test Root OCSP Responder" }),
    subjectPublicKeyInfo: key.spki,
    notBefore: new Date(now.getTime() - hour),
    notAfter,
  });
  return encodeCertificate(tbs, issuerKey.alg, nodeSign("sha256", tbs, issuerKey.privateKey));
}

interface Craft {
  signer?: TestKey;
  certs?: Buffer[];
  status?: OcspCertStatus;
  serial?: Uint8Array;
  hash?: CertIdHashAlgorithm;
  thisUpdate?: Date;
  nextUpdate?: Date | null;
  nonce?: Uint8Array;
  tamper?: boolean;
}

/** An OCSPResponse about the CA certificate (or `serial`), signed by `signer` (default the root's key). */
function craft(c: Craft = {}): Buffer {
  const signer = c.signer ?? root.key;
  const hash = c.hash ?? "sha1";
  const h = issuerHashes(hash, caCert.issuer, parseCertificate(root.cert).spki);
  const thisUpdate = c.thisUpdate ?? now;
  const tbs = encodeResponseData({
    responderKeyHash: createHash("sha1").update(subjectPublicKeyBits(signer.spki)).digest(),
    producedAt: thisUpdate,
    nonce: c.nonce ? ocspNonceExtnValue(c.nonce) : null,
    responses: [{
      certId: encodeCertId(hash, h.issuerNameHash, h.issuerKeyHash, c.serial ?? caCert.serial),
      status: c.status ?? { kind: "good" },
      thisUpdate,
      nextUpdate: c.nextUpdate === null ? undefined : (c.nextUpdate ?? new Date(thisUpdate.getTime() + 24 * hour)),
    }],
  });
  const sig = nodeSign("sha256", tbs, signer.privateKey);
  if (c.tamper) sig[sig.length - 1] ^= 1;
  return encodeOcspResponse(tbs, signer.alg, sig, c.certs ?? []);
}

const refusal = (f: () => unknown) => {
  try {
    f();
    return "accepted";
  } catch (e) {
    expect(e).toBeInstanceOf(OcspResponseError);
    return (e as Error).message;
  }
};

describe("encodeOcspRequest", () => {
  it("round-trips through parseOcspRequest and is read by openssl ocsp -reqin", () => {
    const h = issuerHashes("sha256", caCert.issuer, parseCertificate(root.cert).spki);
    const certId = encodeCertId("sha256", h.issuerNameHash, h.issuerKeyHash, caCert.serial);
    const nonce = Buffer.alloc(32, 0xab);
    const der = encodeOcspRequest([certId], nonce);
    const back = parseOcspRequest(der);
    expect(back.requests).toHaveLength(1);
    expect(back.requests[0]).toMatchObject({ hashAlgorithm: "sha256", serialHex: Buffer.from(caCert.serial).toString("hex").toUpperCase() });
    expect(Buffer.from(back.requests[0].der).equals(certId)).toBe(true);
    expect(Buffer.from(back.nonce!).equals(ocspNonceExtnValue(nonce))).toBe(true);
    expect(parseOcspRequest(encodeOcspRequest([certId])).nonce).toBeNull();

    const f = path.join(work, "req.der");
    fs.writeFileSync(f, der);
    const text = openssl(["ocsp", "-reqin", f, "-req_text"]);
    expect(text.status).toBe(0);
    expect(text.output).toContain("Hash Algorithm: sha256");
    expect(text.output).toContain(`Issuer Name Hash: ${h.issuerNameHash.toString("hex").toUpperCase()}`);
    expect(text.output).toContain(`Serial Number: ${Buffer.from(caCert.serial).toString("hex").toUpperCase()}`);
    expect(text.output).toMatch(new RegExp(`OCSP Nonce: \\s+0420${"AB".repeat(32)}`));
    expect(() => encodeOcspRequest([])).toThrow(RangeError);
    expect(() => encodeOcspRequest([certId], Buffer.alloc(33))).toThrow(RangeError);
  });
});

describe("verifyOcspResponse", () => {
  const responderKey = testKey("p256", true);
  const delegated = responderCert(responderKey, root.key);

  it("accepts good and revoked answers signed by the issuing CA itself, SHA-1 and SHA-256 CertIDs", () => {
    expect(verifyOcspResponse(craft(), q, opts())).toMatchObject({ status: "good", signer: "CA", thisUpdate: now });
    expect(verifyOcspResponse(craft({ hash: "sha256" }), q, opts()).status).toBe("good");
    const revokedAt = new Date(now.getTime() - 5 * hour);
    expect(verifyOcspResponse(craft({ status: { kind: "revoked", revocationTime: revokedAt, revocationReason: 1 } }), q, opts())).toMatchObject({
      status: "revoked", revocationTime: revokedAt, revocationReason: 1,
    });
    expect(verifyOcspResponse(craft({ status: { kind: "unknown" } }), q, opts()).status).toBe("unknown");
  });

  it("accepts a delegated responder issued by that CA with id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", () => {
    const a = verifyOcspResponse(craft({ signer: responderKey, certs: [delegated] }), q, opts());
    expect(a).toMatchObject({ status: "good", signer: "responder 7A01" });
  });

  it("refuses a responder certificate issued by another key, one without OCSPSigning, an expired one, and one not sent", () => {
    const impostor = responderCert(responderKey, testKey("rsa2048", true));
    expect(refusal(() => verifyOcspResponse(craft({ signer: responderKey, certs: [impostor] }), q, opts()))).toMatch(/no authorised signer.*not issued by the certificate's CA/);
    // The issuing CA's own certificate is issued by the root but may not sign OCSP for it.
    expect(refusal(() => verifyOcspResponse(craft({ signer: ca.key, certs: [ca.cert] }), q, opts()))).toMatch(/lacks id-kp-OCSPSigning/);
    const expired = responderCert(responderKey, root.key, new Date(now.getTime() - 60_000));
    expect(refusal(() => verifyOcspResponse(craft({ signer: responderKey, certs: [expired] }), q, opts()))).toMatch(/outside its validity/);
    expect(refusal(() => verifyOcspResponse(craft({ signer: responderKey }), q, opts()))).toMatch(/no authorised signer/);
  });

  it("refuses a wrong signature, a key the ResponderID does not name, and a response about another serial", () => {
    expect(refusal(() => verifyOcspResponse(craft({ tamper: true }), q, opts()))).toMatch(/no authorised signer/);
    expect(refusal(() => verifyOcspResponse(craft({ signer: testKey("rsa2048", true) }), q, opts()))).toMatch(/no authorised signer/);
    expect(refusal(() => verifyOcspResponse(craft({ serial: Buffer.from([0x05]) }), q, opts()))).toMatch(/no SingleResponse for this certificate/);
  });

  it("refuses stale answers, answers from the future, and answers without nextUpdate older than the max age", () => {
    expect(refusal(() => verifyOcspResponse(craft({ thisUpdate: new Date(now.getTime() - 26 * hour) }), q, opts()))).toMatch(/stale answer: nextUpdate/);
    expect(refusal(() => verifyOcspResponse(craft({ thisUpdate: new Date(now.getTime() + 10 * 60_000) }), q, opts()))).toMatch(/in the future/);
    // Within the skew allowance: accepted.
    expect(verifyOcspResponse(craft({ thisUpdate: new Date(now.getTime() + 60_000) }), q, opts()).status).toBe("good");
    expect(verifyOcspResponse(craft({ nextUpdate: null, thisUpdate: new Date(now.getTime() - 30 * 60_000) }), q, opts()).nextUpdate).toBeUndefined();
    expect(refusal(() => verifyOcspResponse(craft({ nextUpdate: null, thisUpdate: new Date(now.getTime() - 2 * hour) }), q, opts()))).toMatch(/without nextUpdate has passed/);
  });

  it("checks the nonce when the response echoes one; accepts a response that echoes none", () => {
    const nonce = Buffer.alloc(32, 7);
    expect(verifyOcspResponse(craft({ nonce }), q, opts({ nonce })).status).toBe("good");
    expect(verifyOcspResponse(craft(), q, opts({ nonce })).status).toBe("good");
    expect(refusal(() => verifyOcspResponse(craft({ nonce: Buffer.alloc(32, 8) }), q, opts({ nonce })))).toMatch(/nonce in the response differs/);
  });

  it("refuses unsuccessful statuses and what is not one OCSPResponse", () => {
    expect(refusal(() => verifyOcspResponse(ocspErrorResponse("unauthorized"), q, opts()))).toBe("responder answered unauthorized");
    expect(refusal(() => verifyOcspResponse(ocspErrorResponse("tryLater"), q, opts()))).toBe("responder answered tryLater");
    expect(refusal(() => verifyOcspResponse(Buffer.concat([craft(), Buffer.from([0])]), q, opts()))).toMatch(/not one ASN\.1 value/);
    expect(refusal(() => verifyOcspResponse(octetString(Buffer.from("x")), q, opts()))).toMatch(/OCSPResponse/);
  });
});

describe("OcspFallback over HTTP", () => {
  let server: http.Server;
  let url: string;
  let requests = 0;
  /** What the server answers next: a body, or "hang" (never answers). */
  let answer: () => Buffer | "hang" = () => craft();
  const hanging: http.ServerResponse[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        requests++;
        parseOcspRequest(Buffer.concat(chunks)); // the client's request must be well formed
        const a = answer();
        if (a === "hang") return void hanging.push(res);
        res.writeHead(200, { "Content-Type": "application/ocsp-response" }).end(a);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ocsp`;
  });
  afterAll(async () => {
    for (const res of hanging) res.destroy();
    await new Promise((r) => server.close(r));
  });

  it("caches a verified answer until min(nextUpdate, fetched + maxAge); concurrent lookups share one request", async () => {
    let clock = now;
    const f = new OcspFallback({ responders: [url], nonce: false, maxAgeMs: hour, now: () => clock });
    const k = q.issuer.keyId;
    expect(f.status(k, caCert.serial, clock)).toBe("unknown");
    answer = () => craft({ nextUpdate: new Date(now.getTime() + 30 * 60_000) });
    requests = 0;
    expect(await Promise.all([f.lookup(q), f.lookup(q), f.lookup(q)])).toEqual([undefined, undefined, undefined]);
    expect(requests).toBe(1);
    expect(f.status(k, caCert.serial, clock)).toBe("good");
    clock = new Date(now.getTime() + 31 * 60_000); // past nextUpdate
    expect(f.status(k, caCert.serial, clock)).toBe("unknown");
    // A long-lived answer is still relied on only for maxAge after it was fetched.
    answer = () => craft({ thisUpdate: clock, nextUpdate: new Date(clock.getTime() + 24 * hour) });
    expect(await f.lookup(q)).toBeUndefined();
    expect(f.status(k, caCert.serial, new Date(clock.getTime() + hour - 1000))).toBe("good");
    expect(f.status(k, caCert.serial, new Date(clock.getTime() + hour + 1000))).toBe("unknown");
    // "revoked" is cached too.
    answer = () => craft({ thisUpdate: clock, status: { kind: "revoked", revocationTime: now } });
    expect(await f.lookup(q)).toBeUndefined();
    expect(f.status(k, caCert.serial, clock)).toBe("revoked");
  });

  it("sends a nonce by default and refuses an answer that echoes another; unknown, bad answers and timeouts are no answer", async () => {
    const f = new OcspFallback({ responders: [url], timeoutMs: 300 });
    answer = () => craft({ nonce: Buffer.alloc(32, 1) });
    expect(await f.lookup(q)).toMatch(/nonce in the response differs/);
    answer = () => craft({ status: { kind: "unknown" } });
    expect(await f.lookup(q)).toMatch(/does not know the certificate/);
    answer = () => craft({ signer: testKey("p256", true) });
    expect(await f.lookup(q)).toMatch(/no authorised signer/);
    answer = () => "hang";
    expect(await f.lookup(q)).toMatch(/aborted|timeout/i);
    expect(f.status(q.issuer.keyId, caCert.serial, now)).toBe("unknown");
    expect(await new OcspFallback({ responders: ["http://127.0.0.1:1/ocsp"] }).lookup(q)).toMatch(/127\.0\.0\.1:1\/ocsp: fetch failed/);
    expect(await new OcspFallback().lookup(q)).toMatch(/no responder/);
    expect(() => new OcspFallback({ responders: ["ldap://x"] })).toThrow(/http/);
  });
});
