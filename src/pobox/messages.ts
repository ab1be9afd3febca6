/**
 * Envelopes at the PO box (issue 15 §5, §6): send, inbox, fetch, read receipts, forwards and the
 * retention sweep. The box stores the envelope DER and the minimum metadata (sender, recipients,
 * size, times, state); it never receives a plaintext or a key. Every state change runs in one
 * transaction with its audit record (src/audit/log.ts).
 */
import { randomUUID } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { ensureAccount, type Account, type Addressee } from "./accounts.ts";
import { addedReaders, envelopeFacts, NotAnEnvelopeError, type EnvelopeFacts } from "./envelope-facts.ts";
import { PoboxError } from "./errors.ts";
import { patientRegistered } from "./patients.ts";

export interface PoboxLimits {
  /** Bytes of envelopes one inbox may hold. */
  quotaBytes: number;
  maxEnvelopeBytes: number;
  retentionDays: number;
}

export interface SendInput {
  recipients: Addressee[];
  /** Document class (referral, prescription, diagnosis, …): designations are per class (§7). */
  documentClass: string;
  /** The sender may forbid forwarding (§6). */
  forwardAllowed: boolean;
  envelope: Buffer;
}

export interface MessageSummary {
  id: string;
  sender: { kind: string; subscriberId: string; name: string | null };
  documentClass: string;
  size: number;
  createdAt: Date;
  expiresAt: Date;
  erased: boolean;
  forwardAllowed: boolean;
  parentId: string | null;
  /** The reader's own delivery (inbox), or every recipient's (sent): delivery and read receipts. */
  deliveries: { subscriberId: string; kind: string; state: string; deliveredAt: Date; readAt: Date | null }[];
}

const ROLE = "pobox";
const MAX_RECIPIENTS = 100;

function actor(a: Account): string {
  return `${a.kind}:${a.subscriberId}`;
}

function factsOf(envelope: Buffer, limits: PoboxLimits): EnvelopeFacts {
  if (envelope.length > limits.maxEnvelopeBytes) {
    throw new PoboxError("TOO_LARGE", `envelope of ${envelope.length} bytes exceeds the limit of ${limits.maxEnvelopeBytes}`, `暗号化文書が大きすぎます（${envelope.length} バイト、上限 ${limits.maxEnvelopeBytes} バイト）`);
  }
  try {
    return envelopeFacts(envelope);
  } catch (e) {
    if (e instanceof NotAnEnvelopeError) throw new PoboxError("NOT_AN_ENVELOPE", e.message, e.messageJa);
    throw e;
  }
}

/** Refuses addressees the envelope cannot serve: more addressees than recipient infos; a facility without its organisation recipient. */
async function checkAddressees(trx: Knex.Transaction, recipients: Account[], facts: EnvelopeFacts): Promise<void> {
  if (recipients.length === 0 || recipients.length > MAX_RECIPIENTS) {
    throw new PoboxError("RECIPIENTS_MISSING", `between 1 and ${MAX_RECIPIENTS} recipients`, `宛先は1〜${MAX_RECIPIENTS}件で指定してください`);
  }
  if (recipients.length > facts.recipientCount) {
    throw new PoboxError("RECIPIENTS_MISSING", `the envelope has ${facts.recipientCount} recipient infos for ${recipients.length} addressees`, `暗号化文書の受信者情報（${facts.recipientCount}件）が宛先の数より少なくなっています`);
  }
  for (const pt of recipients.filter((r) => r.kind === "patient")) {
    if (!(await patientRegistered(trx, pt.id))) {
      throw new PoboxError("PATIENT_NOT_REGISTERED", `patient ${pt.subscriberId} has registered no encryption key at the PO box`, `患者 ${pt.subscriberId} は私書箱に暗号化用の鍵を登録していません`);
    }
  }
  for (const f of recipients.filter((r) => r.kind === "facility")) {
    const key = await trx("pobox_facilities").where({ account_id: f.id }).first("pre_public_key");
    if (!key || !facts.organisation || !Buffer.from(key.pre_public_key).equals(Buffer.from(facts.organisation.facilityKey))) {
      throw new PoboxError("RECIPIENTS_MISSING", `facility ${f.subscriberId}: the envelope has no organisation recipient for its published key`, `施設 ${f.subscriberId}: 公開された組織暗号鍵あての受信者情報がありません`);
    }
  }
}

/** Refuses when a recipient's inbox would exceed the quota. */
async function checkQuota(trx: Knex.Transaction, recipients: Account[], size: number, quotaBytes: number): Promise<void> {
  const used = await trx("pobox_deliveries as d").join("pobox_messages as m", "m.id", "d.message_id")
    .whereIn("d.recipient_id", recipients.map((r) => r.id)).whereNull("m.erased_at")
    .groupBy("d.recipient_id").select("d.recipient_id", trx.raw("sum(m.size)::bigint as used"));
  for (const u of used) {
    if (Number(u.used) + size > quotaBytes) {
      const who = recipients.find((r) => r.id === u.recipient_id)!;
      throw new PoboxError("QUOTA_EXCEEDED", `the inbox of ${who.subscriberId} is full (${u.used} of ${quotaBytes} bytes)`, `${who.subscriberId} の私書箱が容量の上限に達しています`);
    }
  }
}

async function insertMessage(trx: Knex.Transaction, p: { sender: Account; recipients: Account[]; documentClass: string; forwardAllowed: boolean; envelope: Buffer; facts: EnvelopeFacts; parentId: string | null; rootId: string | null; retentionDays: number }): Promise<{ id: string; createdAt: Date; expiresAt: Date }> {
  const id = randomUUID();
  const createdAt = new Date();
  const expiresAt = new Date(createdAt.getTime() + p.retentionDays * 86_400_000);
  await trx("pobox_messages").insert({
    id, sender_id: p.sender.id, document_class: p.documentClass, size: p.envelope.length, content_sha256: p.facts.contentSha256,
    envelope: p.envelope, forward_allowed: p.forwardAllowed, parent_id: p.parentId, root_id: p.rootId ?? id, created_at: createdAt, expires_at: expiresAt,
  });
  await trx("pobox_deliveries").insert(p.recipients.map((r) => ({ message_id: id, recipient_id: r.id, state: "delivered", delivered_at: createdAt })));
  return { id, createdAt, expiresAt };
}

/**
 * Stores an envelope for `recipients` (issue 15 §5): checks it is an AuthEnvelopedData with enough
 * recipient infos (a facility's organisation recipient for its published key), the size limit and
 * each recipient's quota; records the delivery. Returns the message id.
 * @throws PoboxError (TOO_LARGE, NOT_AN_ENVELOPE, RECIPIENTS_MISSING, QUOTA_EXCEEDED).
 */
export async function sendMessage(db: Knex, sender: Account, input: SendInput, limits: PoboxLimits): Promise<{ id: string; expiresAt: Date }> {
  const facts = factsOf(input.envelope, limits);
  return db.transaction(async (trx) => {
    const recipients = await uniqueAccounts(trx, input.recipients);
    await checkAddressees(trx, recipients, facts);
    await checkQuota(trx, recipients, input.envelope.length, limits.quotaBytes);
    const m = await insertMessage(trx, { sender, recipients, documentClass: input.documentClass, forwardAllowed: input.forwardAllowed, envelope: input.envelope, facts, parentId: null, rootId: null, retentionDays: limits.retentionDays });
    await appendAudit(trx, [{
      actor: actor(sender), role: ROLE, action: "pobox.message.sent", objectType: "pobox_message", objectId: m.id,
      details: { size: input.envelope.length, documentClass: input.documentClass, forwardAllowed: input.forwardAllowed, contentSha256: facts.contentSha256.toString("hex"), recipients: recipients.map(actor) },
    }]);
    return { id: m.id, expiresAt: m.expiresAt };
  });
}

async function uniqueAccounts(trx: Knex.Transaction, list: Addressee[]): Promise<Account[]> {
  const seen = new Map<string, Addressee>();
  for (const a of list) seen.set(`${a.kind}:${a.subscriberId}`, a);
  const out: Account[] = [];
  for (const a of seen.values()) out.push(await ensureAccount(trx, a));
  return out;
}

/** The message row `id`, locked for update when `trx` asks. @throws PoboxError NOT_FOUND. */
async function messageRow(db: Knex | Knex.Transaction, id: string, lock = false): Promise<Record<string, any>> {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound(id);
  const q = db("pobox_messages").where({ id }).first();
  const r = await (lock ? q.forUpdate() : q);
  if (!r) throw notFound(id);
  return r;
}

const notFound = (id: string) => new PoboxError("NOT_FOUND", `no message ${id} for you`, `該当する文書はありません（${id}）`);

/** Whether `reader` may fetch message `m`: a recipient, the sender, or designated for a facility recipient's document class. */
async function mayRead(db: Knex | Knex.Transaction, reader: Account, m: Record<string, any>): Promise<"recipient" | "sender" | "designee" | undefined> {
  if (await db("pobox_deliveries").where({ message_id: m.id, recipient_id: reader.id }).first()) return "recipient";
  if (m.sender_id === reader.id) return "sender";
  const d = await activeDesignationFor(db, reader, m);
  return d ? "designee" : undefined;
}

/** The reader's active designation for a facility this message is addressed to, for its document class. */
export async function activeDesignationFor(db: Knex | Knex.Transaction, reader: Account, m: Record<string, any>): Promise<Record<string, any> | undefined> {
  return db("pobox_designations as g").join("pobox_deliveries as d", "d.recipient_id", "g.facility_id")
    .where({ "d.message_id": m.id, "g.account_id": reader.id, "g.document_class": m.document_class })
    .whereNull("g.revoked_at").first("g.*");
}

/**
 * The envelope DER of message `id` for `reader` (a recipient, the sender, or a designee of the
 * facility recipient). Audited (who fetched what). @throws PoboxError NOT_FOUND, ERASED.
 */
export async function fetchEnvelope(db: Knex, reader: Account, id: string): Promise<{ envelope: Buffer; documentClass: string; as: string }> {
  return db.transaction(async (trx) => {
    const m = await messageRow(trx, id);
    const as = await mayRead(trx, reader, m);
    if (!as) throw notFound(id);
    if (!m.envelope) throw new PoboxError("ERASED", `message ${id} was erased at the end of its retention period`, `文書 ${id} は保存期間の満了により消去されました`);
    await appendAudit(trx, [{ actor: actor(reader), role: ROLE, action: "pobox.message.fetched", objectType: "pobox_message", objectId: id, details: { as } }]);
    return { envelope: Buffer.from(m.envelope), documentClass: m.document_class, as };
  });
}

/** Read receipt: the reader's delivery becomes 'read' (idempotent). Audited once. @throws PoboxError NOT_FOUND. */
export async function markRead(db: Knex, reader: Account, id: string): Promise<{ readAt: Date }> {
  return db.transaction(async (trx) => {
    const m = await messageRow(trx, id);
    const d = await trx("pobox_deliveries").where({ message_id: m.id, recipient_id: reader.id }).forUpdate().first();
    if (!d) throw notFound(id);
    if (d.state === "read") return { readAt: d.read_at };
    const readAt = new Date();
    await trx("pobox_deliveries").where({ message_id: m.id, recipient_id: reader.id }).update({ state: "read", read_at: readAt });
    await appendAudit(trx, [{ actor: actor(reader), role: ROLE, action: "pobox.message.read", objectType: "pobox_message", objectId: id, details: {} }]);
    return { readAt };
  });
}

/**
 * Forward (転送, issue 15 §6): `forwarder`, a recipient of message `parentId`, uploads the same
 * envelope with recipient infos added for `recipients`. The box checks that the sender allowed
 * forwarding, that the encrypted content is byte-identical (SHA-256 of the encrypted content
 * octets) and that the envelope still carries at least the earlier recipient infos, then records
 * the forward as a new message whose parent is the forwarded one (the chain).
 * @throws PoboxError NOT_FOUND, FORWARD_FORBIDDEN, CONTENT_CHANGED, RECIPIENTS_MISSING, QUOTA_EXCEEDED.
 */
export async function forwardMessage(db: Knex, forwarder: Account, parentId: string, input: { recipients: Addressee[]; envelope: Buffer }, limits: PoboxLimits): Promise<{ id: string; rootId: string }> {
  const facts = factsOf(input.envelope, limits);
  return db.transaction(async (trx) => {
    const parent = await messageRow(trx, parentId, true);
    const as = await mayRead(trx, forwarder, parent);
    if (as !== "recipient" && as !== "designee") throw notFound(parentId);
    if (!parent.forward_allowed) throw new PoboxError("FORWARD_FORBIDDEN", "the sender does not allow this document to be forwarded", "送信者がこの文書の転送を許可していません");
    if (!Buffer.from(parent.content_sha256).equals(facts.contentSha256)) {
      throw new PoboxError("CONTENT_CHANGED", "the forwarded envelope's encrypted content differs from the original: a forward may only add recipient infos", "転送する文書の暗号化本文が元の文書と異なります（転送では受信者情報の追加のみ可能です）");
    }
    if (!parent.envelope) throw new PoboxError("ERASED", `message ${parentId} was erased at the end of its retention period`, `文書 ${parentId} は保存期間の満了により消去されました`);
    let added: number;
    try {
      added = addedReaders(parent.envelope, input.envelope);
    } catch (e) {
      throw new PoboxError("CONTENT_CHANGED", `a forward may only add recipient infos: ${(e as Error).message}`, "転送では受信者情報の追加のみ可能です（暗号化本文・認証符号・既存の受信者情報が変更されています）");
    }
    const recipients = await uniqueAccounts(trx, input.recipients);
    if (recipients.length > added) {
      throw new PoboxError("RECIPIENTS_MISSING", `the forward adds ${added} recipient infos for ${recipients.length} new addressees`, `追加された受信者情報（${added}件）が新しい宛先の数より少なくなっています`);
    }
    await checkAddressees(trx, recipients, facts);
    await checkQuota(trx, recipients, input.envelope.length, limits.quotaBytes);
    const m = await insertMessage(trx, { sender: forwarder, recipients, documentClass: parent.document_class, forwardAllowed: parent.forward_allowed, envelope: input.envelope, facts, parentId, rootId: parent.root_id, retentionDays: limits.retentionDays });
    await appendAudit(trx, [{
      actor: actor(forwarder), role: ROLE, action: "pobox.message.forwarded", objectType: "pobox_message", objectId: m.id,
      details: { parentId, rootId: parent.root_id, size: input.envelope.length, contentSha256: facts.contentSha256.toString("hex"), recipients: recipients.map(actor) },
    }]);
    return { id: m.id, rootId: parent.root_id };
  });
}

function summaries(rows: Record<string, any>[], deliveries: Record<string, any>[]): MessageSummary[] {
  return rows.map((r) => ({
    id: r.id, sender: { kind: r.sender_kind, subscriberId: r.sender_subscriber_id, name: r.sender_name }, documentClass: r.document_class,
    size: r.size, createdAt: r.created_at, expiresAt: r.expires_at, erased: r.erased_at !== null, forwardAllowed: r.forward_allowed, parentId: r.parent_id,
    deliveries: deliveries.filter((d) => d.message_id === r.id).map((d) => ({ subscriberId: d.subscriber_id, kind: d.kind, state: d.state, deliveredAt: d.delivered_at, readAt: d.read_at })),
  }));
}

const MESSAGE_COLUMNS = ["m.id", "m.document_class", "m.size", "m.created_at", "m.expires_at", "m.erased_at", "m.forward_allowed", "m.parent_id", "s.kind as sender_kind", "s.subscriber_id as sender_subscriber_id", "s.display_name as sender_name"];

/** The reader's inbox, newest first (envelopes addressed to them and, for a designee, to their facility in the designated classes). */
export async function listInbox(db: Knex, reader: Account, limit = 200): Promise<MessageSummary[]> {
  const designated = db("pobox_designations as g").join("pobox_deliveries as fd", "fd.recipient_id", "g.facility_id")
    .join("pobox_messages as fm", "fm.id", "fd.message_id").where("g.account_id", reader.id).whereNull("g.revoked_at")
    .whereRaw("fm.document_class = g.document_class").select("fm.id");
  const rows = await db("pobox_messages as m").join("pobox_accounts as s", "s.id", "m.sender_id")
    .where((q) => q.whereIn("m.id", db("pobox_deliveries").where({ recipient_id: reader.id }).select("message_id")).orWhereIn("m.id", designated))
    .orderBy("m.created_at", "desc").limit(limit).select(MESSAGE_COLUMNS);
  const deliveries = await deliveriesOf(db, rows.map((r) => r.id), reader.id);
  return summaries(rows, deliveries);
}

/** What the sender sent, newest first, with every recipient's delivery and read receipt. */
export async function listSent(db: Knex, sender: Account, limit = 200): Promise<MessageSummary[]> {
  const rows = await db("pobox_messages as m").join("pobox_accounts as s", "s.id", "m.sender_id").where("m.sender_id", sender.id)
    .orderBy("m.created_at", "desc").limit(limit).select(MESSAGE_COLUMNS);
  return summaries(rows, await deliveriesOf(db, rows.map((r) => r.id)));
}

async function deliveriesOf(db: Knex, ids: string[], onlyRecipient?: number): Promise<Record<string, any>[]> {
  if (ids.length === 0) return [];
  const q = db("pobox_deliveries as d").join("pobox_accounts as a", "a.id", "d.recipient_id").whereIn("d.message_id", ids)
    .select("d.message_id", "d.state", "d.delivered_at", "d.read_at", "a.subscriber_id", "a.kind");
  return onlyRecipient === undefined ? q : q.where("d.recipient_id", onlyRecipient);
}

/** The forward chain of message `id`'s root: every message with its parent, for the sender and recipients along it. */
export async function forwardChain(db: Knex, reader: Account, id: string): Promise<{ id: string; parentId: string | null; forwarder: string; createdAt: Date; recipients: string[] }[]> {
  const m = await messageRow(db, id);
  if (!(await mayRead(db, reader, m))) throw notFound(id);
  const rows = await db("pobox_messages as m").join("pobox_accounts as s", "s.id", "m.sender_id").where("m.root_id", m.root_id).orderBy("m.created_at").select("m.id", "m.parent_id", "m.created_at", "s.kind", "s.subscriber_id");
  const ds = await deliveriesOf(db, rows.map((r) => r.id));
  return rows.map((r) => ({ id: r.id, parentId: r.parent_id, forwarder: `${r.kind}:${r.subscriber_id}`, createdAt: r.created_at, recipients: ds.filter((d) => d.message_id === r.id).map((d) => `${d.kind}:${d.subscriber_id}`) }));
}

/** Retention (issue 15 §5): erases the envelopes whose period ended; metadata and receipts stay. Audited per message. */
export async function eraseExpired(db: Knex, now = new Date(), batch = 500): Promise<number> {
  return db.transaction(async (trx) => {
    const ids: string[] = (await trx("pobox_messages").whereNull("erased_at").where("expires_at", "<=", now).orderBy("expires_at").limit(batch).forUpdate().skipLocked().select("id")).map((r) => r.id);
    if (ids.length === 0) return 0;
    await trx("pobox_messages").whereIn("id", ids).update({ envelope: null, erased_at: now });
    await appendAudit(trx, ids.map((id) => ({ actor: "system", role: ROLE, action: "pobox.message.erased", objectType: "pobox_message", objectId: id, details: { reason: "retention" } })));
    return ids.length;
  });
}
