/**
 * Organisational encryption at the PO box (組織暗号, issue 15 §7). A facility publishes its
 * organisation key (Umbral) and its key holder's verifying key; its administrators designate staff
 * per document class, uploading the kfrag the key holder made for the designee's PRE key; the box
 * re-encrypts the capsule of an envelope addressed to the facility for a designee — it holds
 * kfrags and capsules, never a secret key, so it cannot open the CEK itself. Revoking a
 * designation erases its kfrag. Every change is audited in its transaction.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { PreUnavailableError, Reencryptor, verifyKfrag } from "../pki/pre.ts";
import { ensureAccount, type Account, type Addressee } from "./accounts.ts";
import { envelopeFacts } from "./envelope-facts.ts";
import { PoboxError } from "./errors.ts";
import { activeDesignationFor } from "./messages.ts";

const ROLE = "pobox";
const who = (a: Account) => `${a.kind}:${a.subscriberId}`;
const forbidden = () => new PoboxError("FORBIDDEN", "you do not administer this facility at the PO box", "この施設の私書箱の管理者ではありません");

/** Adds `member` to `facility` as admin or staff (operator / CLI set-up). Audited with `by`. */
export async function addFacilityMember(db: Knex, facility: string, member: string, role: "admin" | "staff", by: string): Promise<void> {
  await db.transaction(async (trx) => {
    const f = await ensureAccount(trx, { kind: "facility", subscriberId: facility });
    const m = await ensureAccount(trx, { kind: "person", subscriberId: member });
    await trx("pobox_facility_members").insert({ facility_id: f.id, account_id: m.id, role }).onConflict(["facility_id", "account_id"]).merge();
    await appendAudit(trx, [{ actor: by, role: ROLE, action: "pobox.facility.member-set", objectType: "pobox_account", objectId: who(f), details: { member: who(m), role } }]);
  });
}

async function adminOf(trx: Knex.Transaction, admin: Account, facility: string): Promise<Account> {
  const f = await ensureAccount(trx, { kind: "facility", subscriberId: facility });
  const m = await trx("pobox_facility_members").where({ facility_id: f.id, account_id: admin.id, role: "admin" }).first();
  if (!m) throw forbidden();
  return f;
}

/** Publishes (or replaces) the facility's organisation key and key holder's verifying key. Admin only. */
export async function publishFacilityKey(db: Knex, admin: Account, facility: string, keys: { prePublicKey: Buffer; verifyingKey: Buffer }): Promise<void> {
  await db.transaction(async (trx) => {
    const f = await adminOf(trx, admin, facility);
    const at = new Date();
    await trx("pobox_facilities").insert({ account_id: f.id, pre_public_key: keys.prePublicKey, verifying_key: keys.verifyingKey, published_at: at })
      .onConflict("account_id").merge();
    await appendAudit(trx, [{ actor: who(admin), role: ROLE, action: "pobox.facility.key-published", objectType: "pobox_account", objectId: who(f), details: { prePublicKey: keys.prePublicKey.toString("hex"), verifyingKey: keys.verifyingKey.toString("hex") } }]);
  });
}

/** A facility's published keys, or undefined. */
export async function facilityKeys(db: Knex, facility: string): Promise<{ prePublicKey: Buffer; verifyingKey: Buffer } | undefined> {
  const r = await db("pobox_facilities as f").join("pobox_accounts as a", "a.id", "f.account_id").where({ "a.kind": "facility", "a.subscriber_id": facility }).first("f.*");
  return r ? { prePublicKey: Buffer.from(r.pre_public_key), verifyingKey: Buffer.from(r.verifying_key) } : undefined;
}

/**
 * A person registers their PRE public key and their secret key wrapped in an envelope to their
 * card's encryption certificate (opaque to the box). Audited.
 */
export async function registerPreKey(db: Knex, person: Account, input: { publicKey: Buffer; wrappedSecret: Buffer }): Promise<void> {
  envelopeFacts(input.wrappedSecret); // refuses anything but an envelope
  await db.transaction(async (trx) => {
    await trx("pobox_pre_keys").insert({ account_id: person.id, public_key: input.publicKey, wrapped_secret: input.wrappedSecret, created_at: new Date() }).onConflict("account_id").merge();
    await appendAudit(trx, [{ actor: who(person), role: ROLE, action: "pobox.pre-key.registered", objectType: "pobox_account", objectId: who(person), details: { publicKey: input.publicKey.toString("hex") } }]);
  });
}

/** A person's PRE key: public key and the wrapped secret, or undefined. */
export async function preKeyOf(db: Knex, a: Addressee): Promise<{ publicKey: Buffer; wrappedSecret: Buffer } | undefined> {
  const r = await db("pobox_pre_keys as k").join("pobox_accounts as a", "a.id", "k.account_id").where({ "a.kind": a.kind, "a.subscriber_id": a.subscriberId }).first("k.*");
  return r ? { publicKey: Buffer.from(r.public_key), wrappedSecret: Buffer.from(r.wrapped_secret) } : undefined;
}

export interface Designation {
  id: number;
  facility: string;
  documentClass: string;
  designee: string;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
}

/**
 * Designates `designee` (staff of the facility with a registered PRE key) for `documentClass`,
 * holding `kfrag`, which must verify against the facility's keys and the designee's PRE key.
 * Admin only. @throws PoboxError FORBIDDEN, BAD_KFRAG, NOT_DESIGNATED (no PRE key / not staff).
 */
export async function designate(db: Knex, admin: Account, input: { facility: string; documentClass: string; designee: string; kfrag: Buffer }): Promise<Designation> {
  return db.transaction(async (trx) => {
    const f = await adminOf(trx, admin, input.facility);
    const d = await ensureAccount(trx, { kind: "person", subscriberId: input.designee });
    if (!(await trx("pobox_facility_members").where({ facility_id: f.id, account_id: d.id }).first())) {
      throw new PoboxError("NOT_DESIGNATED", `${input.designee} is not staff of ${input.facility}`, `${input.designee} は ${input.facility} の職員として登録されていません`);
    }
    const keys = await trx("pobox_facilities").where({ account_id: f.id }).first();
    const pre = await trx("pobox_pre_keys").where({ account_id: d.id }).first();
    if (!keys || !pre) throw new PoboxError("NOT_DESIGNATED", "the facility key or the designee's PRE key is not registered", "施設の組織暗号鍵または指定者の再暗号化用の鍵が登録されていません");
    try {
      await verifyKfrag(input.kfrag, { verifyingPk: keys.verifying_key, facilityPk: keys.pre_public_key, designeePk: pre.public_key });
    } catch (e) {
      // No Umbral in this installation is the box's limit (503 pre_unavailable), not a bad kfrag.
      if (e instanceof PreUnavailableError) throw e;
      throw new PoboxError("BAD_KFRAG", `the re-encryption key does not verify for this facility and designee: ${(e as Error).message}`, "再暗号化鍵がこの施設と指定者のものとして検証できません");
    }
    const at = new Date();
    await trx("pobox_designations").where({ facility_id: f.id, document_class: input.documentClass, account_id: d.id }).whereNull("revoked_at")
      .update({ revoked_at: at, revoked_by: who(admin), kfrag: null });
    const [row] = await trx("pobox_designations").insert({
      facility_id: f.id, document_class: input.documentClass, account_id: d.id, receiving_public_key: pre.public_key, kfrag: input.kfrag, created_by: who(admin), created_at: at,
    }).returning("*");
    await appendAudit(trx, [{ actor: who(admin), role: ROLE, action: "pobox.designation.created", objectType: "pobox_designation", objectId: String(row.id), details: { facility: input.facility, documentClass: input.documentClass, designee: who(d) } }]);
    return { id: row.id, facility: input.facility, documentClass: input.documentClass, designee: who(d), createdBy: who(admin), createdAt: at, revokedAt: null, revokedBy: null };
  });
}

/** Revokes designation `id`: erases its kfrag; new re-encryptions stop at once. Admin only; audited. */
export async function revokeDesignation(db: Knex, admin: Account, id: number): Promise<void> {
  await db.transaction(async (trx) => {
    const g = await trx("pobox_designations as g").join("pobox_accounts as f", "f.id", "g.facility_id").where("g.id", id).forUpdate().first("g.*", "f.subscriber_id as facility");
    if (!g) throw new PoboxError("NOT_FOUND", `no designation ${id}`, `指定 ${id} はありません`);
    await adminOf(trx, admin, g.facility);
    if (g.revoked_at) return;
    await trx("pobox_designations").where({ id }).update({ kfrag: null, revoked_at: new Date(), revoked_by: who(admin) });
    reencryptors.delete(id);
    await appendAudit(trx, [{ actor: who(admin), role: ROLE, action: "pobox.designation.revoked", objectType: "pobox_designation", objectId: String(id), details: { facility: g.facility, documentClass: g.document_class, kfragErased: true } }]);
  });
}

/** The designations of a facility (admins) or of a person (their own), newest first. */
export async function listDesignations(db: Knex, viewer: Account): Promise<Designation[]> {
  const admin = db("pobox_facility_members").where({ account_id: viewer.id, role: "admin" }).select("facility_id");
  const rows = await db("pobox_designations as g").join("pobox_accounts as f", "f.id", "g.facility_id").join("pobox_accounts as p", "p.id", "g.account_id")
    .where((q) => q.where("g.account_id", viewer.id).orWhereIn("g.facility_id", admin)).orderBy("g.id", "desc")
    .select("g.*", "f.subscriber_id as facility", "p.subscriber_id as designee");
  return rows.map((r) => ({ id: r.id, facility: r.facility, documentClass: r.document_class, designee: `person:${r.designee}`, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at, revokedBy: r.revoked_by }));
}

/** Parsed kfrags by designation id (a revoked designation's entry is dropped; its row has no kfrag anyway). */
const reencryptors = new Map<number, Reencryptor>();

export interface Reencryption {
  capsule: Buffer;
  cfrag: Buffer;
  encryptedKey: Buffer;
  facilityKey: Buffer;
  verifyingKey: Buffer;
}

/**
 * Re-encrypts the organisation capsule of message `id` for `reader` under their active designation
 * (issue 15 §7). Records the designee's delivery as read and audits. @throws PoboxError
 * NOT_DESIGNATED (no active designation: revoked, other class, other facility), NOT_FOUND, ERASED.
 */
export async function reencryptFor(db: Knex, reader: Account, id: string): Promise<Reencryption> {
  return db.transaction(async (trx) => {
    const m = await trx("pobox_messages").where({ id }).first();
    if (!m) throw new PoboxError("NOT_FOUND", `no message ${id}`, `文書 ${id} はありません`);
    const g = await activeDesignationFor(trx, reader, m);
    if (!g || !g.kfrag) throw new PoboxError("NOT_DESIGNATED", "you are not designated for this document class at the addressed facility (or the designation was revoked)", "宛先施設のこの文書種別について指定されていません（または指定が取り消されました）");
    if (!m.envelope) throw new PoboxError("ERASED", `message ${id} was erased`, `文書 ${id} は消去されました`);
    const org = envelopeFacts(m.envelope).organisation;
    const keys = await trx("pobox_facilities").where({ account_id: g.facility_id }).first();
    if (!org || !keys) throw new PoboxError("NOT_DESIGNATED", "the envelope has no organisation recipient", "組織あての受信者情報がありません");
    let r = reencryptors.get(g.id);
    if (!r) reencryptors.set(g.id, (r = await Reencryptor.of(g.kfrag)));
    const cfrag = Buffer.from(r.reencrypt(org.capsule));
    const at = new Date();
    await trx("pobox_deliveries").insert({ message_id: id, recipient_id: reader.id, state: "read", delivered_at: at, read_at: at }).onConflict(["message_id", "recipient_id"]).ignore();
    await appendAudit(trx, [{ actor: who(reader), role: ROLE, action: "pobox.message.reencrypted", objectType: "pobox_message", objectId: id, details: { designation: g.id } }]);
    return { capsule: Buffer.from(org.capsule), cfrag, encryptedKey: Buffer.from(org.encryptedKey), facilityKey: Buffer.from(keys.pre_public_key), verifyingKey: Buffer.from(keys.verifying_key) };
  });
}
