import { execFileSync } from "node:child_process";
import { createPublicKey, verify } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CardStation, type BlankCard, type CardSession } from "../../src/hsm/cards.ts";
import { HsmError } from "../../src/hsm/errors.ts";
import { Pkcs11Module } from "../../src/hsm/module.ts";
import { SOFTHSM2_MODULE, makeTempSoftHsm, type TempSoftHsm } from "./helpers/softhsm.ts";

let hsm: TempSoftHsm;
let mod: Pkcs11Module;
let station: CardStation;
let cards: BlankCard[];

/** A throw-away self-signed certificate (its key is openssl's, not the card's). */
function selfSignedDer(dir: string, cn: string): Buffer {
  const pem = path.join(dir, `${cn}.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, `${cn}.key`),
    "-out", pem, "-subj", `/C=JP/O=HPKI test/CN=${cn}`, "-days", "1"], { stdio: "pipe" });
  return execFileSync("openssl", ["x509", "-in", pem, "-outform", "DER"]);
}

beforeAll(async () => {
  hsm = makeTempSoftHsm();
  mod = Pkcs11Module.open(SOFTHSM2_MODULE);
  station = new CardStation(mod);
  cards = await station.provisionBlankCards(3);
});
afterAll(() => {
  mod?.close();
  hsm?.cleanup();
});

describe("CardStation", () => {
  it("provisions 3 blank cards with unique serials and well-formed PINs", () => {
    expect(cards).toHaveLength(3);
    for (const c of cards) {
      expect(c.cardSerial).toMatch(/^[0-9A-F]{12}$/);
      expect(c.label).toBe(`card-${c.cardSerial}`);
      expect(Buffer.byteLength(c.label)).toBeLessThanOrEqual(32);
      expect(c.userPin).toMatch(/^\d{8}$/);
      expect(c.soPin).toMatch(/^[A-Za-z0-9]{16}$/);
    }
    expect(new Set(cards.map((c) => c.cardSerial)).size).toBe(3);
    expect(station.listCards().sort()).toEqual(cards.map((c) => c.label).sort());
  });

  it("a wrong PIN gives a clear CKR_PIN_INCORRECT error without the PIN in it", async () => {
    const wrong = cards[0].userPin === "00000000" ? "11111111" : "00000000";
    const err = await station.openCard(cards[0].label, wrong).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HsmError);
    expect(err).toMatchObject({ code: "CKR_PIN_INCORRECT" });
    expect((err as Error).message).toBe(`card "${cards[0].label}": PIN incorrect (CKR_PIN_INCORRECT)`);
  });

  it("an unknown label gives card not found", async () => {
    await expect(station.openCard("card-000000000000", "12345678")).rejects.toMatchObject({ code: "CARD_NOT_FOUND", message: expect.stringContaining("card not found") });
  });

  it("refuses to open a card twice (a 2nd login would skip the PIN check)", async () => {
    const s = await station.openCard(cards[2].label, cards[2].userPin);
    await expect(station.openCard(cards[2].label, "99999999")).rejects.toMatchObject({ code: "CARD_BUSY" });
    s.close();
  });
});

describe("CardSession", () => {
  let card: CardSession;
  let keyId: Buffer;
  let spki: Buffer;
  beforeAll(async () => {
    card = await station.openCard(cards[1].label, cards[1].userPin);
    ({ id: keyId, spki } = await card.generateKeyPair("sign", "RSA-2048"));
  });
  afterAll(() => card?.close());

  it("generates an RSA-2048 key on the card that is sensitive, non-extractable and local", async () => {
    expect(keyId).toHaveLength(20);
    expect(createPublicKey({ key: spki, format: "der", type: "spki" }).asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    expect(await card.keyAttributes(keyId)).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true, local: true });
    await expect(card.generateKeyPair("sign", "P-256")).rejects.toMatchObject({ code: "KEY_EXISTS" });
  });

  it("signs with the card key (RSA and P-256)", async () => {
    const msg = Buffer.from("login challenge 42");
    const pub = createPublicKey({ key: spki, format: "der", type: "spki" });
    expect(verify("sha256", msg, pub, await card.sign(keyId, msg))).toBe(true);
    const auth = await card.generateKeyPair("auth", "P-256");
    const ecPub = createPublicKey({ key: auth.spki, format: "der", type: "spki" });
    expect(verify("sha256", msg, ecPub, await card.sign(auth.id, msg))).toBe(true);
    await expect(card.sign(Buffer.alloc(20), msg)).rejects.toMatchObject({ code: "KEY_NOT_FOUND" });
  });

  it("writes a certificate with the key's CKA_ID and reads it back; pkcs11-tool sees it", async () => {
    const der = selfSignedDer(hsm.dir, "Card Holder");
    await card.writeCertificate(keyId, der, "sign");
    const certs = await card.listCertificates();
    expect(certs).toHaveLength(1);
    expect(certs[0].id.equals(keyId)).toBe(true);
    expect(certs[0].label).toBe("sign");
    expect(certs[0].der.equals(der)).toBe(true);
    await expect(card.writeCertificate(keyId, Buffer.from("junk"), "x")).rejects.toMatchObject({ code: "BAD_CERTIFICATE" });

    const out = execFileSync("pkcs11-tool", ["--module", SOFTHSM2_MODULE, "--token-label", cards[1].label, "--login", "--pin", cards[1].userPin, "--list-objects"], {
      env: { ...process.env, SOFTHSM2_CONF: hsm.conf },
      encoding: "utf8",
    });
    const hexId = keyId.toString("hex");
    expect(out).toMatch(/Certificate Object; type = X\.509 cert/);
    expect(out).toContain("Card Holder");
    // Private key, public key and certificate all carry the same ID.
    expect(out.split(`ID:         ${hexId}`).length - 1).toBe(3);
    expect(out).toMatch(/Private Key Object; RSA[\s\S]*Access:\s+sensitive, always sensitive, never extractable, local/);
  });
});
