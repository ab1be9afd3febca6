/**
 * Card lifecycle at the IA: provisioning blank cards (tokens) with PIN mailers, and
 * personalisation — key pair made on the card, certificate issued and written back to it.
 */
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { KeyAlgorithm } from "../hsm/ca-keys.ts";
import type { CardStation } from "../hsm/cards.ts";
import type { KeyPurpose } from "../hsm/keys.ts";
import type { SubscriberSubject } from "../pki/subject.ts";
import type { Actor, IssuanceService, IssuedCertificate } from "./issuance.ts";

export interface ProvisionedCard {
  label: string;
  cardSerial: string;
  /** Path of the PIN mailer (user PIN, for the subscriber); the PIN itself is never returned. */
  pinMailer: string;
  /** Path of the card's SO PIN slip for the issuing office (PIN unblock). */
  soPinSlip: string;
}

/**
 * Creates `count` blank cards, records them (status blank) and writes one PIN mailer per card
 * under `mailDir` (mode 0600). PINs are in the mailers only: not in the database, logs or output.
 */
export async function provisionCards(
  db: Knex,
  station: CardStation,
  mailDir: string,
  count: number,
  by: Actor,
): Promise<ProvisionedCard[]> {
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new Error("--count must be an integer from 1 to 1000");
  fs.mkdirSync(mailDir, { recursive: true, mode: 0o700 });
  const blanks = await station.provisionBlankCards(count);
  const out: ProvisionedCard[] = [];
  await db.transaction(async (trx) => {
    await trx("cards").insert(blanks.map((c) => ({ label: c.label, card_serial: c.cardSerial, status: "blank" })));
    await appendAudit(trx, blanks.map((c) => ({
      ...by, action: "card.provisioned", objectType: "card", objectId: c.label, details: { cardSerial: c.cardSerial },
    })));
  });
  for (const c of blanks) {
    const pinMailer = pinMailerPath(mailDir, c.label);
    const soPinSlip = path.join(mailDir, `so-pin-${c.label}.txt`);
    writeSecretFile(pinMailer, pinMailerText(c.label, c.cardSerial, c.userPin));
    writeSecretFile(soPinSlip, [
      "HPKI card SO PIN (issuing office only / 発行局保管用 — PIN ロック解除用)",
      `card: ${c.label}`, `card serial: ${c.cardSerial}`, `SO PIN: ${c.soPin}`, "",
    ].join("\n"));
    out.push({ label: c.label, cardSerial: c.cardSerial, pinMailer, soPinSlip });
  }
  return out;
}

/** Where provisionCards writes the PIN mailer of card `label`. */
export function pinMailerPath(mailDir: string, label: string): string {
  return path.join(mailDir, `pin-mailer-${label}.txt`);
}

function writeSecretFile(file: string, text: string): void {
  // "wx": never overwrite an existing mailer; mode 0600: owner only.
  fs.writeFileSync(file, text, { mode: 0o600, flag: "wx" });
}

function pinMailerText(label: string, cardSerial: string, pin: string): string {
  return [
    "HPKI カード 暗証番号（PIN）通知書 / HPKI card PIN mailer",
    "",
    `カード番号 / card serial: ${cardSerial}`,
    `カードラベル / card label: ${label}`,
    `暗証番号 / PIN: ${pin}`,
    "",
    "この通知書は他人に見せず、カードとは別に保管してください。",
    "Keep this notice secret and store it apart from the card.",
    "",
  ].join("\n");
}

export interface PersonaliseRequest {
  cardLabel: string;
  pin: string;
  profile: string;
  subject: SubscriberSubject;
  keyAlgorithm?: KeyAlgorithm;
  caName?: string;
  /** Default `card:<label>:<profile>`: a card holds at most one certificate per profile. */
  requestKey?: string;
}

/** Key label on the card per profile: separate sign, auth and enc keys (JAHIS card guideline; issue 15 §1). */
export function cardKeyLabel(profile: string): string {
  return profile === "sign" ? "sign" : profile === "enc" ? "enc" : "auth";
}

/**
 * The key pair a profile needs on the card: RSA-2048 signing keys for sign and auth (HPKI), an
 * EC P-256 key with CKA_DERIVE and no CKA_SIGN for enc (HPKI-PROFILE §12: ECDH on the card).
 */
export function cardKeySpec(profile: string): { label: string; algorithm: KeyAlgorithm; purpose: KeyPurpose } {
  return profile === "enc"
    ? { label: "enc", algorithm: "P-256", purpose: "decrypt" }
    : { label: cardKeyLabel(profile), algorithm: "RSA-2048", purpose: "sign" };
}

/**
 * Issues a certificate onto a card: opens it with the PIN (wrong PIN → HsmError, nothing
 * changed), generates the key pair ON the card (sensitive, never extractable), issues the
 * certificate for its public key, writes it to the card as CKO_CERTIFICATE with the key's CKA_ID,
 * and marks the card personalised. A retry with the same request returns the same certificate
 * and writes it to the card if it is not there yet.
 */
export async function issueOntoCard(
  db: Knex,
  station: CardStation,
  issuance: IssuanceService,
  req: PersonaliseRequest,
  by: Actor,
): Promise<IssuedCertificate> {
  const card = await station.openCard(req.cardLabel, req.pin);
  try {
    const requestKey = req.requestKey ?? `card:${req.cardLabel}:${req.profile}`;
    const keyLabel = cardKeyLabel(req.profile);
    const prior = await db("certificates").where({ request_key: requestKey }).first();
    let keyId: Buffer;
    let spki: Buffer;
    if (prior?.card_key_id) {
      // Retry: the key already exists on the card; its public key is read back from the card.
      keyId = Buffer.from(prior.card_key_id);
      const onCard = (await card.keyPairs()).find((k) => k.id.equals(keyId));
      if (!onCard?.spki || !onCard.hasPrivateKey) {
        throw new Error(`card "${req.cardLabel}" no longer holds the key pair (CKA_ID ${keyId.toString("hex")}) of request "${requestKey}"; inspect the card`);
      }
      spki = onCard.spki;
    } else {
      const spec = cardKeySpec(req.profile);
      ({ id: keyId, spki } = await card.generateKeyPair(keyLabel, req.keyAlgorithm ?? spec.algorithm, undefined, spec.purpose));
    }
    const cert = await issuance.issue(
      { profile: req.profile, subject: req.subject, subjectPublicKeyInfo: spki, requestKey, caName: req.caName, card: { label: req.cardLabel, keyId } },
      by,
    );
    const onCard = await card.listCertificates();
    if (!onCard.some((c) => c.der.equals(cert.der))) {
      await card.writeCertificate(keyId, cert.der, `${keyLabel}-certificate`);
    }
    await db.transaction(async (trx) => {
      const n = await trx("cards").where({ label: req.cardLabel }).update({ status: "personalized", personalized_at: trx.fn.now() });
      await appendAudit(trx, [{
        ...by, action: "card.certificate-written", objectType: "card", objectId: req.cardLabel,
        details: { ca: cert.caName, serial: cert.serialHex, profile: req.profile, cardKnown: n === 1 },
      }]);
    });
    return cert;
  } finally {
    card.close();
  }
}
