/**
 * Patients at the PO box (issue 15 §8). A patient proves who they are with the authentication
 * certificate of their My Number card (JPKI 利用者証明用電子証明書): they sign a one-time challenge of
 * the box with the card's authentication key; the box validates the certificate to the J-LIS trust
 * anchors with revocation (jpki-verifier.ts) and binds the patient's own encryption certificate (an
 * EC P-256 key their client generated, self-signed) to a pseudonym keyed-hashed from the JPKI
 * certificate's issuer and serial number (src/pki/jpki.ts). Nothing stored names the patient or
 * holds the 個人番号 (the certificate carries none) or the JPKI certificate.
 *
 * - The patient's account is `{kind: "patient", subscriberId: <pseudonym of the first
 *   registration>}` — the "box number" a patient gives a hospital. A renewed JPKI certificate has a
 *   new serial (and a new pseudonym); registering it while signed in with the old one links it to
 *   the same account, so the box number stays.
 * - Who may look a patient's key up: signed-in professionals (a person account with an hcRole, i.e.
 *   an HPKI card sign-in through the SSO center), by the exact box number only (no search, no list);
 *   every look-up is audited. Patients and facilities may not.
 *
 * Every state change (challenge consumed, registration, key replaced, sign-in, refusal) is audited
 * in its transaction; issuing a challenge is not (anonymous, 5 minutes, no effect until used).
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { checkPatientEncryptionCertificate, challengeSignatureValid, jpkiPseudonym, PatientKeyError, patientChallengeMessage } from "../pki/jpki.ts";
import { formatName } from "../pki/name-decode.ts";
import { PathValidationError, type ValidatedPath } from "../pki/path-validation.ts";
import { accountFromRow, ensureAccount, type Account } from "./accounts.ts";
import { PoboxError } from "./errors.ts";
import type { JpkiVerifier } from "./jpki-verifier.ts";
import { issueApiToken } from "./sso-rp.ts";

const ROLE = "pobox";
const CHALLENGE_MS = 5 * 60_000;
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest();

/** A fresh one-time challenge (base64url, 32 random octets), valid 5 minutes. */
export async function issuePatientChallenge(db: Knex): Promise<{ challenge: string; expiresAt: Date }> {
  const challenge = randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + CHALLENGE_MS);
  await db("pobox_patient_challenges").insert({ id: randomUUID(), challenge_sha256: sha256(challenge), expires_at: expiresAt });
  await db("pobox_patient_challenges").where("expires_at", "<", new Date(Date.now() - CHALLENGE_MS)).del();
  return { challenge, expiresAt };
}

export interface PatientProof {
  challenge: string;
  /** The JPKI 利用者証明用電子証明書 (DER). */
  jpkiCertificate: Buffer;
  /** Its key's signature over patientChallengeMessage (PKCS #1 v1.5 SHA-256 for the card's RSA key). */
  signature: Buffer;
}

export interface PatientContext {
  db: Knex;
  verifier: JpkiVerifier;
  /** The box's public URL (…/pobox): part of the signed message. */
  box: string;
}

const refusal = (code: string, en: string, ja: string) => new PoboxError(code, en, ja);

/**
 * Records a refused attempt (its own transaction: the refused request changes nothing else): the
 * reason code only — a path error's detail names the JPKI serial number, which the box does not keep.
 */
async function auditRefusal(db: Knex, action: string, code: string): Promise<void> {
  await db.transaction((trx) => appendAudit(trx, [{ actor: "anonymous", role: ROLE, action, objectType: "pobox_account", objectId: "patient", details: { code } }]));
}

/** Checks the proof: the JPKI path (anchors, revocation, policy) and the signature over the message. */
async function verifyProof(ctx: PatientContext, proof: PatientProof, encryptionCertificate: Buffer | undefined, action: string): Promise<ValidatedPath> {
  let path: ValidatedPath;
  try {
    path = await ctx.verifier.verify(proof.jpkiCertificate);
  } catch (e) {
    if (!(e instanceof PathValidationError)) throw e;
    await auditRefusal(ctx.db, action, e.code);
    throw refusal("JPKI_REFUSED", `JPKI certificate refused: ${e.code}`, `マイナンバーカードの利用者証明用電子証明書を確認できません: ${e.messageJa}`);
  }
  const message = patientChallengeMessage({ box: ctx.box, challenge: proof.challenge, encryptionCertificate });
  if (!challengeSignatureValid(path.leaf, message, proof.signature)) {
    await auditRefusal(ctx.db, action, "bad-challenge-signature");
    throw refusal("JPKI_REFUSED", "the signature over the challenge does not verify with the JPKI certificate", "チャレンジへの署名を利用者証明用電子証明書で検証できません");
  }
  return path;
}

/** Marks the challenge used (inside the caller's transaction). @throws PoboxError CHALLENGE_INVALID. */
async function consumeChallenge(trx: Knex.Transaction, challenge: string, at: Date): Promise<void> {
  const n = await trx("pobox_patient_challenges").where({ challenge_sha256: sha256(challenge) }).whereNull("used_at").where("expires_at", ">", at).update({ used_at: at });
  if (n !== 1) throw refusal("CHALLENGE_INVALID", "the challenge is unknown, used or expired; ask for a new one", "チャレンジが無効か使用済みか期限切れです。もう一度やり直してください");
}

async function pseudonymKey(trx: Knex.Transaction): Promise<Buffer> {
  const r = await trx("pobox_pseudonym_keys").where({ id: 1 }).first("key");
  return Buffer.from(r.key);
}

const actorOf = (a: Account) => `${a.kind}:${a.subscriberId}`;

/**
 * Registers (or replaces) a patient's encryption certificate after the JPKI proof. `current` is the
 * patient signed in with an earlier JPKI certificate (bearer token): a new certificate's pseudonym
 * is then linked to that account (renewal). Returns the account (box number), a bearer token.
 * @throws PoboxError JPKI_REFUSED, CHALLENGE_INVALID, BAD_INPUT (encryption certificate), FORBIDDEN.
 */
export async function registerPatient(ctx: PatientContext, proof: PatientProof, encryptionCertificate: Buffer, current?: Account): Promise<{ account: Account; token: string }> {
  const at = new Date();
  let encryptionKey: Uint8Array;
  try {
    encryptionKey = checkPatientEncryptionCertificate(encryptionCertificate, at).spki;
  } catch (e) {
    if (e instanceof PatientKeyError) throw refusal("BAD_INPUT", e.message, `暗号化用の鍵（証明書）が正しくありません: ${e.message}`);
    throw e;
  }
  const path = await verifyProof(ctx, proof, encryptionCertificate, "pobox.patient.registration-refused");
  return ctx.db.transaction(async (trx) => {
    await consumeChallenge(trx, proof.challenge, at);
    const pseudonym = jpkiPseudonym(await pseudonymKey(trx), path.leaf);
    const known = await trx("pobox_patient_identities").where({ pseudonym }).first();
    if (current && current.kind !== "patient") throw refusal("FORBIDDEN", "only a patient can link a JPKI certificate", "利用者証明用電子証明書を関連付けられるのは患者本人だけです");
    if (known && current && known.account_id !== current.id) throw refusal("FORBIDDEN", "this JPKI certificate belongs to another box number", "この利用者証明用電子証明書は別の私書箱番号に登録されています");
    const account = known ? accountFromRow(await trx("pobox_accounts").where({ id: known.account_id }).first())
      : current ?? await ensureAccount(trx, { kind: "patient", subscriberId: pseudonym });
    const issuer = formatName(path.leaf.issuer);
    if (!known) await trx("pobox_patient_identities").insert({ pseudonym, account_id: account.id, jpki_issuer: issuer, not_after: path.leaf.notAfter, registered_at: at });
    const keySha256 = sha256(encryptionCertificate);
    const previous = await trx("pobox_patient_keys").where({ account_id: account.id }).first("spki_sha256");
    await trx("pobox_patient_keys").insert({ account_id: account.id, certificate: encryptionCertificate, spki_sha256: sha256(encryptionKey), registered_at: at })
      .onConflict("account_id").merge();
    await trx("pobox_accounts").where({ id: account.id }).update({ last_login_at: at });
    const token = await issueApiToken(trx, account, at);
    await appendAudit(trx, [{
      actor: actorOf(account), role: ROLE, action: "pobox.patient.registered", objectType: "pobox_account", objectId: actorOf(account),
      details: { via: "jpki", jpkiIssuer: issuer, jpkiNotAfter: path.leaf.notAfter.toISOString(), linkedCertificate: !known && current !== undefined, newCertificate: !known, keyReplaced: previous !== undefined, encryptionCertificateSha256: keySha256.toString("hex") },
    }]);
    return { account, token };
  });
}

/** Sign-in of a registered patient with the JPKI proof: a bearer token. @throws PoboxError (NOT_FOUND when not registered). */
export async function signInPatient(ctx: PatientContext, proof: PatientProof): Promise<{ account: Account; token: string }> {
  const at = new Date();
  const path = await verifyProof(ctx, proof, undefined, "pobox.patient.sign-in-refused");
  return ctx.db.transaction(async (trx) => {
    await consumeChallenge(trx, proof.challenge, at);
    const pseudonym = jpkiPseudonym(await pseudonymKey(trx), path.leaf);
    const known = await trx("pobox_patient_identities").where({ pseudonym }).first();
    if (!known) throw refusal("NOT_FOUND", "this JPKI certificate is not registered at the PO box; register first", "この利用者証明用電子証明書は私書箱に登録されていません。先に登録してください");
    const account = accountFromRow(await trx("pobox_accounts").where({ id: known.account_id }).first());
    await trx("pobox_accounts").where({ id: account.id }).update({ last_login_at: at });
    const token = await issueApiToken(trx, account, at);
    await appendAudit(trx, [{ actor: actorOf(account), role: ROLE, action: "pobox.signed-in", objectType: "pobox_account", objectId: actorOf(account), details: { via: "jpki", client: "cli" } }]);
    return { account, token };
  });
}

/**
 * A patient's encryption certificate for a sender. Only a signed-in professional (person with an
 * hcRole) may look up, by the exact box number; audited. @throws PoboxError FORBIDDEN, NOT_FOUND.
 */
export async function patientKeyFor(db: Knex, requester: Account, boxNumber: string): Promise<{ subscriberId: string; certificate: Buffer; registeredAt: Date }> {
  if (requester.kind !== "person" || !requester.hcRole) {
    throw refusal("FORBIDDEN", "only healthcare professionals signed in with their HPKI card may look patients up", "患者の鍵を参照できるのは HPKI カードでサインインした医療従事者だけです");
  }
  return db.transaction(async (trx) => {
    const r = await trx("pobox_patient_keys as k").join("pobox_accounts as a", "a.id", "k.account_id").where({ "a.kind": "patient", "a.subscriber_id": boxNumber }).first("k.certificate", "k.registered_at");
    if (!r) throw refusal("NOT_FOUND", `no patient ${boxNumber} registered at the PO box`, `私書箱番号 ${boxNumber} の患者は登録されていません`);
    await appendAudit(trx, [{ actor: actorOf(requester), role: ROLE, action: "pobox.patient.key-looked-up", objectType: "pobox_account", objectId: `patient:${boxNumber}`, details: { hcRole: requester.hcRole } }]);
    return { subscriberId: boxNumber, certificate: Buffer.from(r.certificate), registeredAt: r.registered_at };
  });
}

/** Whether a patient account has a registered encryption key (a sender may address only those). */
export async function patientRegistered(trx: Knex | Knex.Transaction, accountId: number): Promise<boolean> {
  return (await trx("pobox_patient_keys").where({ account_id: accountId }).first("account_id")) !== undefined;
}
