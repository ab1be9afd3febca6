/**
 * Persons and their per-service accounts (issue 5 §3). A person is (issuer DN, subscriber id):
 * renewing the card keeps both, so the person and their links survive renewal. The person asks for
 * a link ("my account at service A is AAA"); the service confirms it with its client credentials
 * or an administrator does on the CLI. Each change is one transaction with its audit record.
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { prepared, runPrepared } from "../store/prepared.ts";
import { SsoRequestError } from "./errors.ts";
import type { CertificateIdentity } from "../status/certificate-identity.ts";

/** A person: the identity of their last login certificate (without its serial) and our id. */
export interface Person extends Omit<CertificateIdentity, "serialHex"> {
  id: string;
}

export interface AccountLink {
  personId: string;
  clientId: string;
  accountId: string;
  status: "requested" | "confirmed";
  requestedAt: Date;
  confirmedAt: Date | null;
}

/** Refused link operations; nothing was written. */
export class AccountLinkError extends SsoRequestError<"NO_SUCH_LINK" | "ACCOUNT_TAKEN" | "BAD_ACCOUNT_ID"> {
  override name = "AccountLinkError";
}

/** A sso_persons row as a Person. */
export function personFromRow(r: Record<string, any>): Person {
  return {
    id: r.id, issuer: r.issuer, subscriberId: r.subscriber_id, nameLatin: r.name_latin, nameKanji: r.name_kanji,
    organizationLatin: r.organization_latin, organizationKanji: r.organization_kanji, hcRole: r.hc_role,
  };
}

/**
 * Finds or creates the person of `identity` inside `trx` and refreshes their names, hcRole and
 * organisation from the certificate just used; sets last_login_at. Returns the person id.
 */
export async function upsertPerson(trx: Knex.Transaction, identity: CertificateIdentity, at: Date): Promise<string> {
  const fields = {
    name_latin: identity.nameLatin, name_kanji: identity.nameKanji, organization_latin: identity.organizationLatin,
    organization_kanji: identity.organizationKanji, hc_role: identity.hcRole, last_login_at: at,
  };
  // One statement: a new person gets a fresh id, a known one keeps theirs (unique issuer + subscriber id).
  const [row] = (await runPrepared(trx, UPSERT_PERSON, [`p-${randomBytes(12).toString("hex")}`, identity.issuer, identity.subscriberId,
    fields.name_latin, fields.name_kanji, fields.organization_latin, fields.organization_kanji, fields.hc_role, fields.last_login_at])).rows;
  return String(row.id);
}

const UPSERT_PERSON = prepared("sso_person_upsert", `INSERT INTO sso_persons
    (id, issuer, subscriber_id, name_latin, name_kanji, organization_latin, organization_kanji, hc_role, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (issuer, subscriber_id) DO UPDATE SET name_latin = excluded.name_latin, name_kanji = excluded.name_kanji,
    organization_latin = excluded.organization_latin, organization_kanji = excluded.organization_kanji, hc_role = excluded.hc_role, last_login_at = excluded.last_login_at
  RETURNING id`);
const PERSON_BY_ID = prepared("sso_person_by_id", "SELECT * FROM sso_persons WHERE id = $1");

/** The person `id`, or undefined (a named statement, src/store/prepared.ts). */
export async function findPerson(db: Knex, id: string): Promise<Person | undefined> {
  const [r] = (await runPrepared(db, PERSON_BY_ID, [id])).rows;
  return r ? personFromRow(r) : undefined;
}

/** A person by the stable key (issuer DN, subscriber id). */
export async function findPersonBySubscriber(db: Knex, issuer: string, subscriberId: string): Promise<Person | undefined> {
  const r = await db("sso_persons").where({ issuer, subscriber_id: subscriberId.normalize("NFC") }).first();
  return r ? personFromRow(r) : undefined;
}

/**
 * The person asks that `clientId` know them as `accountId`. Replaces an earlier unconfirmed
 * request; a confirmed link is replaced too (the service must confirm again).
 * @throws AccountLinkError BAD_ACCOUNT_ID (empty or > 200 characters).
 */
export async function requestLink(db: Knex, personId: string, clientId: string, accountId: string, at: Date = new Date()): Promise<void> {
  const account = accountId.normalize("NFC").trim();
  if (!account || account.length > 200) throw new AccountLinkError("BAD_ACCOUNT_ID", "account id must be 1–200 characters", "アカウントIDは1〜200文字で入力してください");
  await db.transaction(async (trx) => {
    await trx("sso_account_links").where({ person_id: personId, client_id: clientId }).delete();
    await trx("sso_account_links").insert({ person_id: personId, client_id: clientId, account_id: account, status: "requested", requested_at: at });
    await appendAudit(trx, [{ actor: personId, role: "sso", action: "sso.link-requested", objectType: "sso-link", objectId: `${clientId}:${personId}`, details: { accountId: account } }]);
  });
}

/**
 * The service (or an administrator) confirms the link of `personId` at `clientId`.
 * @throws AccountLinkError NO_SUCH_LINK (nothing requested) or ACCOUNT_TAKEN (the account id is
 *   already confirmed for another person).
 */
export async function confirmLink(db: Knex, clientId: string, personId: string, by: { actor: string; role: string }, at: Date = new Date()): Promise<AccountLink> {
  return db.transaction(async (trx) => {
    const link = await trx("sso_account_links").where({ person_id: personId, client_id: clientId }).forUpdate().first();
    if (!link) throw new AccountLinkError("NO_SUCH_LINK", `no link requested by ${personId} for ${clientId}`, "連携の申請がありません");
    const taken = await trx("sso_account_links").where({ client_id: clientId, account_id: link.account_id, status: "confirmed" }).whereNot({ person_id: personId }).first("id");
    if (taken) throw new AccountLinkError("ACCOUNT_TAKEN", `account ${link.account_id} is linked to another person`, "このアカウントは既に別の方と連携されています");
    await trx("sso_account_links").where({ id: link.id }).update({ status: "confirmed", confirmed_at: at, confirmed_by: by.actor });
    await appendAudit(trx, [{ ...by, action: "sso.link-confirmed", objectType: "sso-link", objectId: `${clientId}:${personId}`, details: { accountId: link.account_id } }]);
    return { personId, clientId, accountId: link.account_id, status: "confirmed", requestedAt: new Date(link.requested_at), confirmedAt: at };
  });
}

/**
 * The service links the person it knows (by sub, resolved by the caller) to its own account
 * `accountId`, confirmed at once; replaces an earlier request or link of that person there.
 * Audited "sso.link-confirmed" with `by` (the client).
 * @throws AccountLinkError BAD_ACCOUNT_ID or ACCOUNT_TAKEN (confirmed for another person).
 */
export async function linkByService(db: Knex, clientId: string, personId: string, accountId: string, by: { actor: string; role: string }, at: Date = new Date()): Promise<AccountLink> {
  const account = accountId.normalize("NFC").trim();
  if (!account || account.length > 200) throw new AccountLinkError("BAD_ACCOUNT_ID", "account id must be 1–200 characters", "アカウントIDは1〜200文字で入力してください");
  return db.transaction(async (trx) => {
    const taken = await trx("sso_account_links").where({ client_id: clientId, account_id: account }).whereNot({ person_id: personId }).forUpdate().first("id");
    if (taken) throw new AccountLinkError("ACCOUNT_TAKEN", `account ${account} is linked to another person`, "このアカウントは既に別の方と連携されています");
    await trx("sso_account_links").where({ person_id: personId, client_id: clientId }).delete();
    await trx("sso_account_links").insert({ person_id: personId, client_id: clientId, account_id: account, status: "confirmed", requested_at: at, confirmed_at: at, confirmed_by: by.actor });
    await appendAudit(trx, [{ ...by, action: "sso.link-confirmed", objectType: "sso-link", objectId: `${clientId}:${personId}`, details: { accountId: account, by: "service" } }]);
    return { personId, clientId, accountId: account, status: "confirmed" as const, requestedAt: at, confirmedAt: at };
  });
}

/**
 * Removes the link (requested or confirmed) of `personId` at `clientId`: the person unlinks in the
 * portal, or an administrator rejects a request or removes a link. From then on `sub` at that
 * client is the pairwise pseudonym again. Audited "sso.link-removed" with who and the account id.
 * @throws AccountLinkError NO_SUCH_LINK.
 */
export async function removeLink(db: Knex, clientId: string, personId: string, by: { actor: string; role: string }): Promise<AccountLink> {
  return db.transaction(async (trx) => {
    const link = await trx("sso_account_links").where({ person_id: personId, client_id: clientId }).forUpdate().first();
    if (!link) throw new AccountLinkError("NO_SUCH_LINK", `no link of ${personId} at ${clientId}`, "この連携はありません");
    await trx("sso_account_links").where({ id: link.id }).delete();
    await appendAudit(trx, [{ ...by, action: "sso.link-removed", objectType: "sso-link", objectId: `${clientId}:${personId}`, details: { accountId: link.account_id, status: link.status } }]);
    return linkFromRow(link);
  });
}

/** Every link of a person (portal). */
export async function linksOf(db: Knex, personId: string): Promise<AccountLink[]> {
  const rows = await db("sso_account_links").where({ person_id: personId }).orderBy("client_id");
  return rows.map(linkFromRow);
}

/** Every link at a client with its person (administration): requested first, then by request time. */
export async function linksAt(db: Knex, clientId: string): Promise<(AccountLink & { person: Person })[]> {
  const rows = await db("sso_account_links as l").join("sso_persons as p", "p.id", "l.person_id").where({ "l.client_id": clientId })
    .orderByRaw("l.status = 'confirmed', l.requested_at").select("l.*", "p.id as p_id", "p.issuer", "p.subscriber_id", "p.name_latin", "p.name_kanji", "p.organization_latin", "p.organization_kanji", "p.hc_role");
  return rows.map((r) => ({ ...linkFromRow(r), person: personFromRow({ ...r, id: r.p_id }) }));
}

function linkFromRow(r: Record<string, any>): AccountLink {
  return {
    personId: r.person_id, clientId: r.client_id, accountId: r.account_id, status: r.status, requestedAt: new Date(r.requested_at),
    confirmedAt: r.confirmed_at ? new Date(r.confirmed_at) : null,
  };
}

/**
 * The service's own account id for the person (claim `service_account_id`): the confirmed link at
 * a client that maps accounts ("linked"), else undefined. `sub` never carries it (subjects.ts).
 */
export async function serviceAccountId(db: Knex, personId: string, client: { clientId: string; accountMapping: string }): Promise<string | undefined> {
  if (client.accountMapping !== "linked") return undefined;
  const link = await db("sso_account_links").where({ person_id: personId, client_id: client.clientId, status: "confirmed" }).first("account_id");
  return link?.account_id;
}
