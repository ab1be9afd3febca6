/**
 * IC cards as PKCS#11 tokens: blank-card provisioning (token + PINs), then per-card sessions for
 * on-card key generation, certificate storage and signing. SoftHSM2 tokens stand in for cards in
 * tests and the embedded default; a card reader's module (e.g. OpenSC) runs the same code.
 */
import { randomBytes } from "node:crypto";
import graphene from "graphene-pk11";
import { ecdhDeriveOn, rsaOaepDecryptOn } from "./card-decrypt.ts";
import { certificateTemplate, readCertificates } from "./cert-object.ts";
import { HsmError, toHsmError } from "./errors.ts";
import pkcs11 from "pkcs11js";
import {
  findKeyPair, findObjects, generateKeyPairOn, getAttributes, keyAlgorithmOf, objectsWithLabel, privateKeyFlags, publicKeySpki, signOn,
  type KeyPurpose, type PrivateKeyFlags,
} from "./keys.ts";
import { assertLoggedIn, loginUser } from "./login.ts";
import type { Pkcs11Module } from "./module.ts";
import { randomAlphanumeric, randomDigits } from "./softhsm.ts";
import type { KeyAlgorithm } from "./spki.ts";

/** Token labels of cards start with this. */
export const CARD_LABEL_PREFIX = "card-";

/** A freshly initialised card. PINs are returned once, for the PIN mailer: never store them in clear. */
export interface BlankCard {
  /** Token label, "card-<cardSerial>" (17 bytes, within the 32-byte CK_TOKEN_INFO label). */
  label: string;
  /** 12 upper-case hex digits from the CSPRNG. */
  cardSerial: string;
  /** 8 decimal digits. */
  userPin: string;
  /** 16 characters [A-Za-z0-9]. */
  soPin: string;
}

/** A logged-in session on one card. Operations on one card run one at a time (one session). */
export interface CardSession {
  readonly label: string;
  /**
   * Generates a key pair ON the card (private: CKA_TOKEN, CKA_SENSITIVE, not extractable; sign only,
   * or with `purpose` "decrypt" derive/decrypt only — the "enc" key of issue 15 §1) labelled
   * `keyLabel` (e.g. "sign", "auth", "enc") with CKA_ID `id` or 20 random bytes.
   * RSA-2048 (e = 65537) is the HPKI subscriber key; P-256 the encryption key.
   * @returns the CKA_ID and the SubjectPublicKeyInfo DER.
   * @throws HsmError "KEY_EXISTS" when an object labelled `keyLabel` or a key with `id` exists.
   */
  generateKeyPair(keyLabel: string, algorithm: KeyAlgorithm, id?: Buffer, purpose?: KeyPurpose): Promise<{ id: Buffer; spki: Buffer }>;
  /**
   * ECDH on the card's P-256 key `id` with the peer point 04‖X‖Y (CKM_ECDH1_DERIVE, CKD_NULL): the
   * shared secret Z for the envelope KDF (issue 15 §3, RFC 5753 §3.1.2).
   * @throws HsmError "KEY_NOT_FOUND", or the card's CKR_* (e.g. CKR_KEY_TYPE_INCONSISTENT for a signing key).
   */
  ecdh(id: Buffer, publicPoint: Uint8Array): Promise<Buffer>;
  /** RSAES-OAEP decryption with the card's RSA key `id` (CKM_RSA_PKCS_OAEP, MGF1 over `hash`, empty label). */
  rsaOaepDecrypt(id: Buffer, encrypted: Uint8Array, hash: string): Promise<Buffer>;
  /**
   * Stores `der` as a CKO_CERTIFICATE / CKC_X_509 token object with CKA_ID `id`, CKA_LABEL `label`
   * and CKA_SUBJECT / CKA_ISSUER / CKA_SERIAL_NUMBER from the certificate (v2.40 §4.6.3).
   * @throws HsmError "BAD_CERTIFICATE" when `der` does not parse.
   */
  writeCertificate(id: Buffer, der: Uint8Array, label: string): Promise<void>;
  /** All X.509 certificates on the card. */
  listCertificates(): Promise<{ id: Buffer; label: string; der: Buffer }[]>;
  /** Protection attributes of the private key with CKA_ID `id`. @throws HsmError "KEY_NOT_FOUND". */
  keyAttributes(id: Buffer): Promise<PrivateKeyFlags>;
  /**
   * Signs `data` (the message, not a hash) with the card's private key `id`: RSA → PKCS#1 v1.5 with
   * SHA-256 (CKM_SHA256_RSA_PKCS); P-256 → ECDSA-SHA256 as DER Ecdsa-Sig-Value.
   * @throws HsmError "KEY_NOT_FOUND".
   */
  sign(id: Buffer, data: Uint8Array): Promise<Buffer>;
  /**
   * The key objects on the card, for personalisation recovery: one entry per CKA_ID with its
   * CKA_LABEL, whether a private key exists and the SubjectPublicKeyInfo DER of the public key
   * (null when the public key object is missing).
   */
  keyPairs(): Promise<{ id: Buffer; label: string; hasPrivateKey: boolean; spki: Buffer | null }[]>;
  /**
   * Destroys every key and certificate object with CKA_ID `id` (C_DestroyObject, v2.40 §5.7): used
   * to remove a key pair personalisation made and cannot use. @returns how many objects were destroyed.
   */
  removeObjectsWithId(id: Buffer): Promise<number>;
  /** Logs out and closes the session; the card can then be opened again. Idempotent. */
  close(): void;
}

/** A card personalisation station: provisions blank cards and opens them by label. */
export class CardStation {
  /** Labels of cards with an open CardSession in this process. */
  private readonly open = new Set<string>();

  constructor(private readonly mod: Pkcs11Module) {}

  /**
   * Initialises `count` blank cards (C_InitToken on free slots + C_InitPIN, v2.40 §5.6), each with a
   * fresh card serial, 8-digit user PIN and 16-character SO PIN.
   * @throws HsmError "NO_FREE_SLOT" when the module has no blank token left (cards already made stay).
   */
  async provisionBlankCards(count: number): Promise<BlankCard[]> {
    const cards: BlankCard[] = [];
    for (let i = 0; i < count; i++) {
      let cardSerial: string;
      do cardSerial = randomBytes(6).toString("hex").toUpperCase();
      while (this.mod.findSlotByTokenLabel(CARD_LABEL_PREFIX + cardSerial));
      const card = { label: CARD_LABEL_PREFIX + cardSerial, cardSerial, userPin: randomDigits(8), soPin: randomAlphanumeric(16) };
      this.mod.initToken(card.label, card.soPin, card.userPin);
      cards.push(card);
      // Token init is synchronous; yield so a long batch does not starve the event loop.
      await new Promise((r) => setImmediate(r));
    }
    return cards;
  }

  /** Labels of all initialised tokens whose label starts with "card-". */
  listCards(): string[] {
    return this.mod.listTokenLabels().filter((l) => l.startsWith(CARD_LABEL_PREFIX));
  }

  /**
   * Opens a logged-in RW session on the card labelled `label`.
   * @throws HsmError "CARD_NOT_FOUND"; code "CKR_PIN_INCORRECT" with message
   *   `card "…": PIN incorrect (CKR_PIN_INCORRECT)`; "CKR_PIN_LOCKED"; "CARD_BUSY" when this process
   *   already has the card open (a second login would be accepted without checking the PIN).
   */
  async openCard(label: string, pin: string): Promise<CardSession> {
    if (!label.startsWith(CARD_LABEL_PREFIX)) throw new HsmError(`card not found: "${label}" is not a card label`, "CARD_NOT_FOUND");
    const slot = this.mod.findSlotByTokenLabel(label);
    if (!slot) throw new HsmError(`card not found: "${label}"`, "CARD_NOT_FOUND");
    if (this.open.has(label)) throw new HsmError(`card "${label}" is already open in this process`, "CARD_BUSY");
    let session: graphene.Session;
    try {
      session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    } catch (err) {
      throw toHsmError(err, `card "${label}"`);
    }
    try {
      loginUser(session, pin, `card "${label}"`);
    } catch (err) {
      session.close();
      throw toHsmError(err, `card "${label}"`);
    }
    this.open.add(label);
    return new Card(this.mod, session, label, () => this.open.delete(label));
  }
}

class Card implements CardSession {
  private closed = false;
  /** One operation at a time on the card's single session. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Module generation at open: after a re-initialisation the handle may belong to someone else. */
  private readonly generation: number;

  constructor(
    private readonly mod: Pkcs11Module,
    private readonly session: graphene.Session,
    readonly label: string,
    private readonly onClose: () => void,
  ) {
    this.generation = mod.generation;
  }

  private exec<T>(fn: (s: graphene.Session) => T | Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.closed) throw new HsmError(`card "${this.label}" session is closed`, "CKR_SESSION_CLOSED");
      if (this.mod.generation !== this.generation) {
        throw new HsmError(`card "${this.label}": the PKCS#11 module was re-initialised; open the card again`, "CKR_SESSION_HANDLE_INVALID");
      }
      try {
        return await this.mod.track(() => fn(this.session));
      } catch (err) {
        throw toHsmError(err, `card "${this.label}"`);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private privateKey(s: graphene.Session, id: Buffer) {
    const found = findKeyPair(s, { id });
    if (!found) assertLoggedIn(s, `card "${this.label}"`);
    if (!found) throw new HsmError(`no private key with id ${id.toString("hex")} on card "${this.label}"`, "KEY_NOT_FOUND");
    return found;
  }

  generateKeyPair(keyLabel: string, algorithm: KeyAlgorithm, id: Buffer = randomBytes(20), purpose: KeyPurpose = "sign"): Promise<{ id: Buffer; spki: Buffer }> {
    return this.exec(async (s) => {
      if (objectsWithLabel(s, keyLabel).length > 0 || findKeyPair(s, { id })) {
        throw new HsmError(`card "${this.label}" already has a key labelled "${keyLabel}" or with id ${id.toString("hex")}`, "KEY_EXISTS");
      }
      const keys = await generateKeyPairOn(s, keyLabel, id, algorithm, purpose);
      return { id, spki: publicKeySpki(s, keys.publicKey!, algorithm) };
    });
  }

  writeCertificate(id: Buffer, der: Uint8Array, label: string): Promise<void> {
    return this.exec((s) => {
      s.lib.C_CreateObject(s.handle, certificateTemplate(id, der, label));
    });
  }

  listCertificates(): Promise<{ id: Buffer; label: string; der: Buffer }[]> {
    return this.exec((s) => readCertificates(s));
  }

  keyAttributes(id: Buffer): Promise<PrivateKeyFlags> {
    return this.exec((s) => privateKeyFlags(s, this.privateKey(s, id).privateKey));
  }

  sign(id: Buffer, data: Uint8Array): Promise<Buffer> {
    return this.exec((s) => {
      const key = this.privateKey(s, id);
      return signOn(s, key.privateKey, key.algorithm, data);
    });
  }

  ecdh(id: Buffer, publicPoint: Uint8Array): Promise<Buffer> {
    return this.exec((s) => ecdhDeriveOn(s, this.privateKey(s, id).privateKey, publicPoint));
  }

  rsaOaepDecrypt(id: Buffer, encrypted: Uint8Array, hash: string): Promise<Buffer> {
    return this.exec((s) => rsaOaepDecryptOn(s, this.privateKey(s, id).privateKey, encrypted, hash));
  }

  keyPairs(): Promise<{ id: Buffer; label: string; hasPrivateKey: boolean; spki: Buffer | null }[]> {
    return this.exec((s) => {
      const byId = new Map<string, { id: Buffer; label: string; hasPrivateKey: boolean; spki: Buffer | null }>();
      for (const cls of [pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY]) {
        for (const h of findObjects(s, [{ type: pkcs11.CKA_CLASS, value: cls }])) {
          const [id, label] = getAttributes(s, h, [pkcs11.CKA_ID, pkcs11.CKA_LABEL]);
          const e = byId.get(id.toString("hex")) ?? { id, label: label.toString("utf8"), hasPrivateKey: false, spki: null };
          if (cls === pkcs11.CKO_PRIVATE_KEY) e.hasPrivateKey = true;
          else e.spki = publicKeySpki(s, h, keyAlgorithmOf(s, h));
          byId.set(id.toString("hex"), e);
        }
      }
      return [...byId.values()];
    });
  }

  removeObjectsWithId(id: Buffer): Promise<number> {
    return this.exec((s) => {
      const objects = findObjects(s, [{ type: pkcs11.CKA_ID, value: id }]);
      for (const h of objects) s.lib.C_DestroyObject(s.handle, h);
      return objects.length;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    // Let queued operations finish on the session before it goes away.
    void this.queue.then(() => {
      if (this.mod.generation !== this.generation) return;
      try {
        this.session.logout();
      } catch {
        // Not logged in any more (e.g. module re-initialised): nothing to undo.
      }
      try {
        this.session.close();
      } catch {
        // Already closed.
      }
    });
  }
}

