/**
 * Issue 15 §1 and §3: an enc certificate (policies/profiles/enc.yaml) for a P-256 key generated on
 * a SoftHSM card passes the lint and `openssl verify`; an envelope sealed to it is opened on the card
 * after PIN login (CKM_ECDH1_DERIVE), the key staying sensitive and non-extractable; `openssl cms
 * -decrypt` cannot be used here (the key never leaves the card), so OpenSSL seals and the card opens.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pkcs11 from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardKeyAgent } from "../../src/hsm/card-decrypt.ts";
import { CardStation, type CardSession } from "../../src/hsm/cards.ts";
import { Pkcs11Module } from "../../src/hsm/module.ts";
import { lintTbsCertificate } from "../../src/pki/lint.ts";
import { envelopeSummary, openEnvelope, sealEnvelope } from "../../src/pki/envelope.ts";
import { toPem } from "../../src/pki/pem.ts";
import { compileTbsTemplate } from "../../src/pki/tbs.ts";
import { computeValidity } from "../../src/pki/validity.ts";
import { MEDIS_LIKE_SUBJECT, buildTestChain, loadProfile, signTbs } from "../unit/helpers/pki-fixtures.ts";
import { SOFTHSM2_MODULE, makeTempSoftHsm, type TempSoftHsm } from "./helpers/softhsm.ts";

let hsm: TempSoftHsm;
let mod: Pkcs11Module;
let card: CardSession;
let encId: Buffer;
let encCert: Buffer;
let pem: Record<string, string>;
const chain = buildTestChain();
const MARKER = "診断書 diagnosis marker-c4rd";

beforeAll(async () => {
  hsm = makeTempSoftHsm();
  mod = Pkcs11Module.open(SOFTHSM2_MODULE);
  const station = new CardStation(mod);
  const [blank] = await station.provisionBlankCards(1);
  card = await station.openCard(blank.label, blank.userPin);
  await card.generateKeyPair("sign", "RSA-2048");
  const enc = await card.generateKeyPair("enc", "P-256", undefined, "decrypt");
  encId = enc.id;
  const profile = loadProfile("enc");
  const tbs = compileTbsTemplate(profile, chain.ca.issuer)({
    serialNumber: Buffer.from("0e0c0001", "hex"),
    subject: { kind: "subscriber", subject: MEDIS_LIKE_SUBJECT },
    subjectPublicKeyInfo: enc.spki,
    validity: computeValidity(profile, new Date()),
  });
  expect(lintTbsCertificate(tbs, profile, chain.ca.issuer)).toEqual([]);
  encCert = signTbs(tbs, chain.ca.key);
  await card.writeCertificate(encId, encCert, "enc");
  pem = {};
  for (const [name, der] of Object.entries({ root: chain.root.cert, ca: chain.ca.cert, enc: encCert })) {
    pem[name] = path.join(hsm.dir, `${name}.pem`);
    fs.writeFileSync(pem[name], toPem(der));
  }
});
afterAll(() => {
  card?.close();
  mod?.close();
  hsm?.cleanup();
});

describe("enc certificate on the card (issue 15 §1)", () => {
  it("passes openssl verify and shows keyAgreement (critical), hcRole and our policy OID", () => {
    const out = execFileSync("openssl", ["verify", "-x509_strict", "-CAfile", pem.root, "-untrusted", pem.ca, pem.enc], { encoding: "utf8" });
    expect(out.trim()).toMatch(/: OK$/);
    const text = execFileSync("openssl", ["x509", "-in", pem.enc, "-noout", "-text"], { encoding: "utf8" });
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\s/);
    expect(text).toContain("Policy: 2.25.57087179820280253529867260599402626756.1.1");
    expect(text).toContain("ASN1 OID: prime256v1");
  });

  it("the card holds the EC key: sensitive, never extractable, derive-only", async () => {
    expect(await card.keyAttributes(encId)).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true, local: true });
    expect((await card.listCertificates()).map((c) => c.label).sort()).toEqual(["enc"]);
    // The signing key cannot derive, the enc key cannot sign (separate keys, HPKI-PROFILE §12).
    await expect(card.sign(encId, Buffer.from("x"))).rejects.toThrow(/CKR_KEY_(FUNCTION_NOT_PERMITTED|TYPE_INCONSISTENT)/);
  });
});

describe("decryption on the card (issue 15 §3)", () => {
  it("opens an envelope we sealed to the card's enc certificate, after PIN login", async () => {
    const content = Buffer.from(`${MARKER} ${"x".repeat(5000)}`);
    const env = await sealEnvelope(content, [encCert]);
    expect(envelopeSummary(env).recipients).toHaveLength(1);
    expect(Buffer.from(await openEnvelope(env, cardKeyAgent(card, encId, encCert))).equals(content)).toBe(true);
  });

  it("opens what openssl cms -encrypt -aes-256-gcm sealed to the card certificate", async () => {
    const file = path.join(hsm.dir, "plain.txt");
    fs.writeFileSync(file, MARKER);
    const env = execFileSync("openssl", ["cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER", "-in", file, "-recip", pem.enc, "-keyopt", "ecdh_kdf_md:sha256"]);
    expect(Buffer.from(await openEnvelope(env, cardKeyAgent(card, encId, encCert))).toString()).toBe(MARKER);
  });

  it("the derived shared secret is a session object, gone after the operation", async () => {
    const env = await sealEnvelope(Buffer.from(MARKER), [encCert]);
    await openEnvelope(env, cardKeyAgent(card, encId, encCert));
    const slot = mod.findSlotByTokenLabel(card.label)!;
    const s = slot.open(4 /* CKF_SERIAL_SESSION */);
    try {
      s.lib.C_FindObjectsInit(s.handle, [{ type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY }]);
      const found = s.lib.C_FindObjects(s.handle, 10);
      s.lib.C_FindObjectsFinal(s.handle);
      expect(found).toHaveLength(0);
    } finally {
      s.close();
    }
  });
});

describe("RSA-OAEP decryption on a card key", () => {
  it("decrypts an OAEP-SHA-1 content key with CKM_RSA_PKCS_OAEP; SoftHSM 2.6.1 refuses OAEP-SHA-256", async () => {
    const rsa = await card.generateKeyPair("enc-rsa", "RSA-2048", undefined, "decrypt");
    const { createPublicKey, publicEncrypt, constants, randomBytes } = await import("node:crypto");
    const key = randomBytes(32);
    const pub = createPublicKey({ key: rsa.spki, format: "der", type: "spki" });
    const sha1 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, key);
    expect((await card.rsaOaepDecrypt(rsa.id, sha1, "SHA-1")).equals(key)).toBe(true);
    const sha256 = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, key);
    // SoftHSM 2.6.1 accepts only hashAlg CKM_SHA_1 in CK_RSA_PKCS_OAEP_PARAMS; a card with SHA-256
    // OAEP runs the same call. Hence enc keys on cards are EC P-256 (policies/profiles/enc.yaml).
    await expect(card.rsaOaepDecrypt(rsa.id, sha256, "SHA-256")).rejects.toThrow(/CKR_ARGUMENTS_BAD/);
  });
});
