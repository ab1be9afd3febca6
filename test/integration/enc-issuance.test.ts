/**
 * Issue 15 §1 through the IA: the demo ceremony's encryption CA (demo-enc-ca, ours) issues an enc
 * certificate onto a card beside the signature certificate — EC P-256 key made on the card with
 * CKA_DERIVE, sensitive and never extractable — which passes `openssl verify` and our lint, and an
 * envelope sealed to it opens on the card; and an enc-org certificate for a facility's CSR key.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardKeyAgent } from "../../src/hsm/card-decrypt.ts";
import { cardKeyLabel, issueOntoCard, provisionCards } from "../../src/ia/cards.ts";
import type { IaContext } from "../../src/ia/context.ts";
import { csrKeyPolicy } from "../../src/ia/csr-policy.ts";
import { requestedProfiles } from "../../src/pipeline/issuance-requests.ts";
import { checkCsrKey, parseCertificationRequest } from "../../src/pki/csr.ts";
import { openEnvelope, sealEnvelope, softwareKeyAgent } from "../../src/pki/envelope.ts";
import { extractHcRoles } from "../../src/pki/hcrole.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { opensslText, opensslVerify, writePems } from "../helpers/openssl.ts";

const by = { actor: "test", role: "ia" };
const doctor = {
  hcRole: "Medical Doctor",
  subscriberId: "TEST000015",
  name: { latin: "Hanako Suzuki", kanji: "鈴木　花子" },
  organization: { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" },
};
const OUR_ENC_POLICY = "2.25.57087179820280253529867260599402626756.1.1";

describe("enc certificates through the IA (issue 15 §1)", () => {
  let ia: TestIa;
  let ctx: IaContext;
  let work: string;
  beforeAll(async () => {
    ia = await openTestIa("hpki");
    ({ ctx, work } = ia);
    await runDemoCeremony(ctx, by);
  });
  afterAll(async () => ia?.cleanup());

  it("an application with request_enc asks for the enc profile beside sign/auth", () => {
    expect(requestedProfiles({ request_sign: true, request_auth: true, request_enc: true })).toEqual(["sign", "auth-person", "enc"]);
    expect(requestedProfiles({ request_sign: true, request_auth: false, request_enc: false })).toEqual(["sign"]);
    expect(cardKeyLabel("enc")).toBe("enc");
  });

  it("issues sign and enc onto one card; enc verifies, carries hcRole and our policy; the card opens an envelope", async () => {
    const [card] = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, 1, by);
    const pin = /PIN: (\d+)/.exec(fs.readFileSync(card.pinMailer, "utf8"))![1];
    const certs: Record<string, Buffer> = {};
    const keyIds: Record<string, Buffer> = {};
    for (const profileName of ["sign", "enc"]) {
      const subject = parseSubscriberSubject(doctor, ctx.policies.profiles.get(profileName)!, ctx.policies.hcRoles);
      const c = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: card.label, pin, profile: profileName, subject }, by);
      expect(c.caName).toBe(profileName === "enc" ? "demo-enc-ca" : "demo-sign-ca");
      certs[profileName] = c.der;
    }
    const files = writePems(work, { enc: certs.enc });
    expect(opensslVerify(ia.pem("demo-root"), ia.pem("demo-enc-ca"), files.enc).output).toMatch(/: OK$/);
    const text = opensslText(files.enc);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\s/);
    expect(text).toContain(`Policy: ${OUR_ENC_POLICY}`);
    expect(text).toContain("ASN1 OID: prime256v1");
    expect(extractHcRoles(certs.enc).map((r) => r.codeDataFreeText)).toEqual(["Medical Doctor"]);

    const session = await ctx.cards.openCard(card.label, pin);
    try {
      for (const c of await session.listCertificates()) keyIds[c.der.equals(certs.enc) ? "enc" : "sign"] = c.id;
      expect(Object.keys(keyIds).sort()).toEqual(["enc", "sign"]);
      expect(await session.keyAttributes(keyIds.enc)).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true, local: true });
      const pair = (await session.keyPairs()).find((k) => k.id.equals(keyIds.enc))!;
      expect(pair).toMatchObject({ label: "enc", hasPrivateKey: true });
      const env = await sealEnvelope(Buffer.from("紹介状 marker-enc-ia"), [certs.enc]);
      expect(Buffer.from(await openEnvelope(env, cardKeyAgent(session, keyIds.enc, certs.enc))).toString()).toBe("紹介状 marker-enc-ia");
      // The signature key cannot do key agreement.
      await expect(session.ecdh(keyIds.sign, Buffer.alloc(65, 4))).rejects.toThrow();
    } finally {
      session.close();
    }
  });

  it("issues enc-org for a facility's CSR key (P-256), from the same encryption CA", async () => {
    const key = path.join(work, "facility.key");
    const csrFile = path.join(work, "facility.csr");
    execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=pharmacy box", "-out", csrFile], { stdio: "ignore" });
    const csr = await parseCertificationRequest(fs.readFileSync(csrFile));
    const profile = ctx.policies.profiles.get("enc-org")!;
    checkCsrKey(csr, csrKeyPolicy(profile));
    const subject = parseSubscriberSubject({ subscriberId: "ORG0015", name: { latin: "Chuo Pharmacy PO box" }, organization: { latin: "Chuo Pharmacy", kanji: "中央薬局" } }, profile, ctx.policies.hcRoles);
    const cert = await ctx.issuance.issue({ profile: "enc-org", subject, subjectPublicKeyInfo: csr.subjectPublicKeyInfo, requestKey: "csr:enc-org-1" }, by);
    expect(cert.caName).toBe("demo-enc-ca");
    const files = writePems(work, { org: cert.der });
    expect(opensslVerify(ia.pem("demo-root"), ia.pem("demo-enc-ca"), files.org).output).toMatch(/: OK$/);
    expect(opensslText(files.org)).toContain("Policy: 2.25.57087179820280253529867260599402626756.1.2");
    const pkcs8 = execFileSync("openssl", ["pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER"]);
    const env = await sealEnvelope(Buffer.from("処方箋"), [cert.der]);
    expect(Buffer.from(await openEnvelope(env, await softwareKeyAgent(cert.der, pkcs8))).toString()).toBe("処方箋");
  });
});
