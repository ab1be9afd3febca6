/**
 * One profile (key pair + certificate) personalised onto a request's card as a recoverable saga
 * (issue 10 §1). Each step is recorded in issuance_card_keys — under the worker's lease (fenced
 * writes) and audited — before the next is taken:
 *
 *   planned  the CKA_ID (20 random bytes) chosen for the key pair, before it is generated
 *   made     the key pair generated ON the card; its public key (SPKI) read back and recorded
 *   signed   the certificate issued for that public key (request key "ir:<id>:<profile>")
 *   written  the certificate stored on the card next to its key
 *   removed  the key pair deleted again because no certificate can be issued for it
 *
 * A retry (after a crash, an HSM outage, a lost lease) reads the card and the record and resumes:
 * a key pair with the recorded CKA_ID (and, once recorded, the same public key) is reused — it was
 * made by this request, on this card, and its private key never left it; a planned key that is
 * not on the card is generated under the same CKA_ID; a certificate already issued is returned by
 * the request key and written only if the card lacks it. Anything else — a key under this
 * profile's label that the request did not make, a public key that differs from the recorded one,
 * a signed certificate whose key has gone — means the card is in a state nobody recorded:
 * CardNeedsInspection, and the caller puts the card aside for a person and takes a new one.
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { KeyAlgorithm } from "../hsm/ca-keys.ts";
import type { CardStation } from "../hsm/cards.ts";
import { fenced, type IssuanceLease } from "../pipeline/issuance-lease.ts";
import type { SubscriberSubject } from "../pki/subject.ts";
import { toBuffer } from "../store/rows.ts";
import { cardKeyLabel, cardKeySpec } from "./cards.ts";
import { faultPoint } from "./fault-hook.ts";
import type { Actor, IssuanceService, IssuedCertificate } from "./issuance.ts";

/** The card is in a state the records do not explain; it must be inspected before any reuse. */
export class CardNeedsInspection extends Error {
  override name = "CardNeedsInspection";
  constructor(
    readonly cardLabel: string,
    readonly reason: string,
  ) {
    super(`card "${cardLabel}" needs inspection: ${reason}`);
  }
}

/** What one profile's personalisation needs. */
export interface ProfileOntoCard {
  cardLabel: string;
  pin: string;
  profile: string;
  subject: SubscriberSubject;
  /** "ir:<id>:<profile>" on the request's first card, "ir:<id>:<profile>:g<n>" on its n-th. */
  requestKey: string;
  keyAlgorithm?: KeyAlgorithm;
}

interface Deps {
  db: Knex;
  cards: CardStation;
  issuance: IssuanceService;
}

type StepRow = { id: number | string; key_id: Uint8Array; spki: Uint8Array | null; step: string; certificate_id: number | string | null };

/**
 * Personalises `p.profile` onto card `p.cardLabel` for the request `lease` holds; see the module
 * comment for the steps and how a retry resumes. Fault points after-keygen, after-sign and
 * after-write (fault-hook.ts) sit between the step and its record.
 * @returns the certificate, on the card.
 * @throws CardNeedsInspection; LeaseLostError (nothing more written); HsmError; issuance errors
 *   (after removing a key pair no certificate was recorded for).
 */
export async function personaliseProfile(d: Deps, lease: IssuanceLease, p: ProfileOntoCard, by: Actor): Promise<IssuedCertificate> {
  const keyLabel = cardKeyLabel(p.profile);
  const where = { request_id: lease.requestId, profile: p.profile, card_label: p.cardLabel };
  const card = await d.cards.openCard(p.cardLabel, p.pin);
  try {
    let row = (await d.db("issuance_card_keys").where(where).whereNotIn("step", ["removed", "abandoned"]).first()) as StepRow | undefined;
    const recordedId = row ? toBuffer(row.key_id) : null;
    const onCard = await card.keyPairs();
    let mine = recordedId ? onCard.find((k) => k.id.equals(recordedId)) : undefined;
    const foreign = onCard.find((k) => k.label === keyLabel && !(recordedId && k.id.equals(recordedId)));
    if (foreign) throw new CardNeedsInspection(p.cardLabel, `a key labelled "${keyLabel}" (CKA_ID ${foreign.id.toString("hex")}) that this request did not make`);
    if (row && mine && row.spki && !(mine.spki && mine.spki.equals(toBuffer(row.spki)))) {
      throw new CardNeedsInspection(p.cardLabel, `the public key with CKA_ID ${recordedId!.toString("hex")} differs from the one recorded`);
    }
    if (row && !mine?.hasPrivateKey && row.step !== "planned") {
      throw new CardNeedsInspection(p.cardLabel, `the recorded key pair (CKA_ID ${recordedId!.toString("hex")}, step ${row.step}) is no longer on the card`);
    }
    let keyId: Buffer;
    let spki: Buffer;
    if (row && mine?.hasPrivateKey && mine.spki) {
      // Made by this request before a crash or failure: reuse it.
      keyId = mine.id;
      spki = mine.spki;
      if (row.step === "planned") await recordStep(d.db, lease, row, { step: "made", spki }, by, "card.key_generated", { card: p.cardLabel, profile: p.profile, resumed: true });
    } else {
      if (mine) await card.removeObjectsWithId(mine.id); // half a key pair (no private key, or no public key): unusable
      if (!row) {
        keyId = randomBytes(20);
        row = await fenced(d.db, lease, async (trx) => {
          const [r] = (await trx("issuance_card_keys").insert({ ...where, key_label: keyLabel, key_id: keyId, step: "planned" }).returning("*")) as StepRow[];
          return r;
        });
      } else {
        keyId = recordedId!;
      }
      const spec = cardKeySpec(p.profile);
      ({ spki } = await card.generateKeyPair(keyLabel, p.keyAlgorithm ?? spec.algorithm, keyId, spec.purpose));
      await faultPoint("after-keygen");
      await recordStep(d.db, lease, row, { step: "made", spki }, by, "card.key_generated", { card: p.cardLabel, profile: p.profile, keyId: keyId.toString("hex") });
    }
    mine = undefined;

    let cert: IssuedCertificate;
    try {
      cert = await d.issuance.issue(
        { profile: p.profile, subject: p.subject, subjectPublicKeyInfo: spki, requestKey: p.requestKey, card: { label: p.cardLabel, keyId } },
        by,
      );
    } catch (e) {
      // No certificate recorded for this key: it can never be used, take it off the card. With an
      // intent recorded, keep it: `hpki issue recover` or the next retry signs that intent.
      const recorded = await d.db("certificates").where({ request_key: p.requestKey }).first("id");
      if (!recorded) {
        try {
          await card.removeObjectsWithId(keyId);
          await recordStep(d.db, lease, row, { step: "removed" }, by, "card.key_removed", { card: p.cardLabel, profile: p.profile, reason: (e as Error).message.slice(0, 300) });
        } catch {
          // Card or database unreachable as well: the record still says "made"; a retry reuses the key.
        }
      }
      throw e;
    }
    await faultPoint("after-sign");
    await recordStep(d.db, lease, row, { step: "signed", certificate_id: cert.id }, by, null, {});
    const certs = await card.listCertificates();
    if (!certs.some((c) => c.der.equals(cert.der))) await card.writeCertificate(keyId, cert.der, `${keyLabel}-certificate`);
    await faultPoint("after-write");
    await fenced(d.db, lease, async (trx) => {
      await trx("issuance_card_keys").where({ id: row!.id }).update({ step: "written", updated_at: trx.fn.now() });
      await trx("cards").where({ label: p.cardLabel }).update({ status: "personalized", personalized_at: trx.fn.now() });
      await appendAudit(trx, [{
        ...by, action: "card.certificate-written", objectType: "card", objectId: p.cardLabel,
        details: { ca: cert.caName, serial: cert.serialHex, profile: p.profile, request: lease.requestId },
      }]);
    });
    return cert;
  } finally {
    card.close();
  }
}

/** Records one step of `row` under the lease, with its audit record when `action` is given. */
async function recordStep(
  db: Knex,
  lease: IssuanceLease,
  row: StepRow,
  patch: Record<string, unknown>,
  by: Actor,
  action: string | null,
  details: Record<string, unknown>,
): Promise<void> {
  await fenced(db, lease, async (trx) => {
    await trx("issuance_card_keys").where({ id: row.id }).update({ ...patch, updated_at: trx.fn.now() });
    if (action) {
      await appendAudit(trx, [{ ...by, action, objectType: "card", objectId: String(details.card), details: { ...details, request: lease.requestId } }]);
    }
  });
  Object.assign(row, patch);
}

/**
 * Puts a card in an unknown state aside (issue 10 §1): status "inspect" (never personalised again
 * until a person has looked), its live records of this request "abandoned", the request unbound
 * from it with its card generation + 1 (so the next card's certificates get new request keys).
 * Certificates already issued onto it are named in the audit record for revocation. Under the lease.
 */
export async function setCardAside(db: Knex, lease: IssuanceLease, cardLabel: string, reason: string, by: Actor): Promise<void> {
  await fenced(db, lease, async (trx) => {
    const issued = await trx("certificates").where({ card_label: cardLabel, status: "issued" }).select("serial_hex", "profile");
    await trx("cards").where({ label: cardLabel }).update({ status: "inspect" });
    await trx("issuance_card_keys").where({ request_id: lease.requestId, card_label: cardLabel }).whereNotIn("step", ["removed", "abandoned"])
      .update({ step: "abandoned", updated_at: trx.fn.now() });
    await trx("issuance_requests").where({ id: lease.requestId }).update({ card_label: null, card_generation: trx.raw("card_generation + 1") });
    await appendAudit(trx, [{
      ...by, action: "card.marked_for_inspection", objectType: "card", objectId: cardLabel,
      details: { request: lease.requestId, reason, certificatesToRevoke: issued.map((c) => ({ serial: c.serial_hex, profile: c.profile })) },
    }]);
  });
}
