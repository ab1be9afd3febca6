/**
 * The SSO center's CardLoginVerifier on a real database: the revocation index follows the
 * revocations table (incremental and full reads, holds and their release), fails closed when its
 * read is stale, and loads foreign CAs' CRLs (the real MEDIS CRL and the MHLW ARL) for foreign
 * anchors. No timers: refreshes are triggered, the clock is injected.
 */
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeCertificate } from "../../src/ia/revocation.ts";
import { SIGNATURE_POLICY } from "../../src/pki/path-validation.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { CardLoginVerifier } from "../../src/status/certificate-verifier.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";

const by = { actor: "test", role: "ia" };
const FIX = fileURLToPath(new URL("../fixtures/hpki-real/", import.meta.url));
const code = async (f: () => Promise<unknown>) => {
  try {
    await f();
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
};

let ia: TestIa;
let cert: Buffer;
let serialHex: string;

beforeAll(async () => {
  ia = await openTestIa("sso-verifier");
  await runDemoCeremony(ia.ctx, by);
  const profile = ia.ctx.policies.profiles.get("auth-person")!;
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const issued = await ia.ctx.issuance.issue({
    profile: "auth-person",
    subject: parseSubscriberSubject({ hcRole: "Dentist", subscriberId: "VER0001", name: { latin: "Jiro Tanaka", kanji: "田中　次郎" }, organization: { latin: "Kobe Dental", kanji: "神戸歯科" } }, profile, ia.ctx.policies.hcRoles),
    subjectPublicKeyInfo: publicKey.export({ format: "der", type: "spki" }),
  }, by);
  cert = issued.der;
  serialHex = issued.serialHex;
});
afterAll(async () => ia?.cleanup());

describe("CardLoginVerifier on our CAs", () => {
  it("follows revocations, holds and releases, and fails closed when its read is stale", async () => {
    let now = new Date();
    const v = await CardLoginVerifier.open({ db: ia.ctx.db, refreshIntervalMs: 0, maxStalenessMs: 60_000, fullRefreshEvery: 1000, now: () => now });
    const id = (await v.verify(cert)).identity;
    expect(id).toMatchObject({ hcRole: "Dentist", subscriberId: "VER0001", nameKanji: "田中　次郎", organizationKanji: "神戸歯科", nameLatin: "Jiro Tanaka" });
    expect(id.issuer).toContain("HPKI-01-DemoAuthCA-forAuthentication-forIndividual");

    now = new Date(now.getTime() + 61_000);
    expect(await code(() => v.verify(cert))).toBe("revocation-unknown");
    await v.refresh();
    expect(await code(() => v.verify(cert))).toBe("ok");

    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex, reason: "certificateHold" }, by);
    expect(await code(() => v.verify(cert))).toBe("ok"); // not read yet
    await v.refresh();
    expect(await code(() => v.verify(cert))).toBe("revoked");

    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex, reason: "removeFromCRL" }, by);
    await v.refresh();
    expect(await code(() => v.verify(cert))).toBe("revoked"); // a release is only seen by a full read (errs on the safe side)
    await v.refresh({ full: true });
    expect(await code(() => v.verify(cert))).toBe("ok");

    // Revoking again reuses the released row (same id): the incremental read still sees it.
    await revokeCertificate(ia.ctx.db, { caName: "demo-auth-ca", serialHex, reason: "keyCompromise" }, by);
    await v.refresh();
    expect(await code(() => v.verify(cert))).toBe("revoked");
    v.close();
  });
});

describe("CardLoginVerifier with foreign HPKI CAs", () => {
  it("loads foreign CRLs for configured anchors (file or HTTP) and fails closed past their nextUpdate", async () => {
    let now = new Date("2022-09-07T00:00:00Z");
    let fetches = 0;
    const crlServer = http.createServer((_req, res) => {
      fetches++;
      res.end(readFileSync(`${FIX}crls/medis-sign-ca2-2022-09-06.crl`));
    });
    await new Promise<void>((r) => crlServer.listen(0, "127.0.0.1", () => r()));
    const crlUrl = `http://127.0.0.1:${(crlServer.address() as { port: number }).port}/crl-sign2.crl`;
    const v = await CardLoginVerifier.open({
      db: ia.ctx.db,
      refreshIntervalMs: 0,
      policy: SIGNATURE_POLICY,
      foreignAnchors: [readFileSync(`${FIX}certs/mhlw-hpki-root-ca-v2.der`)],
      foreignCas: [readFileSync(`${FIX}certs/medis-sign-ca2.der`)],
      foreignCrls: [crlUrl, `${FIX}crls/mhlw-root-v2-arl-2022-09-05.crl`, `${FIX}crls/jma-sign-ca-jv2-2022-09-05.crl`],
      now: () => now,
      onError: () => {},
    });
    const medis = readFileSync(`${FIX}certs/medis-ee-sign-doctor-015e.der`);
    expect((await v.verify(medis)).identity).toMatchObject({ hcRole: "Medical Doctor" });
    // JMA's CA is not configured: its CRL was refused and its certificates are untrusted.
    expect(await code(() => v.verify(readFileSync(`${FIX}certs/jma-ee-sign-doctor-8090.der`)))).toBe("untrusted-issuer");
    // A CRL source is fetched again only after foreignCrlRefreshMs (default 15 min).
    expect(fetches).toBe(1);
    await v.refresh();
    expect(fetches).toBe(1);
    now = new Date(now.getTime() + 16 * 60_000);
    await v.refresh();
    expect(fetches).toBe(2);
    now = new Date("2022-09-11T00:00:00Z");
    expect(await code(() => v.verify(medis))).toBe("revocation-unknown");
    v.close();
    crlServer.close();
  });
});
