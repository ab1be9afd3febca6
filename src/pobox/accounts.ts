/**
 * PO box accounts (issue 15 §5): persons by the subscriber id their certificates carry (the SSO
 * center's `subscriber` claim), facilities by their organisation's subscriber id, patients by the
 * pseudonym of their JPKI registration. An addressee gets an account when the first envelope for
 * them arrives, and their attributes when they first sign in.
 */
import type { Knex } from "knex";
import { z } from "zod";

export const ACCOUNT_KINDS = ["person", "facility", "patient"] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

export interface Account {
  id: number;
  kind: AccountKind;
  subscriberId: string;
  issuer: string | null;
  displayName: string | null;
  hcRole: string | null;
  organization: string | null;
}

/** An addressee as the API names one: `{kind, subscriberId}` (kind defaults to person). */
export const AddresseeSchema = z.strictObject({
  kind: z.enum(ACCOUNT_KINDS).default("person"),
  subscriberId: z.string().trim().min(1).max(64).regex(/^[\x21-\x7e]+$/, "printable ASCII"),
});
export type Addressee = z.infer<typeof AddresseeSchema>;

export function accountFromRow(r: Record<string, any>): Account {
  return { id: r.id, kind: r.kind, subscriberId: r.subscriber_id, issuer: r.issuer, displayName: r.display_name, hcRole: r.hc_role, organization: r.organization };
}

/** The account of `a`, created (without attributes) when missing. */
export async function ensureAccount(trx: Knex | Knex.Transaction, a: Addressee): Promise<Account> {
  const rows = await trx.raw(
    `INSERT INTO pobox_accounts (kind, subscriber_id) VALUES (?, ?)
     ON CONFLICT (kind, subscriber_id) DO UPDATE SET kind = EXCLUDED.kind RETURNING *`,
    [a.kind, a.subscriberId.normalize("NFC")],
  );
  return accountFromRow(rows.rows[0]);
}

/** What the SSO center says of a person who signed in (ID token / userinfo claims). */
export interface SignedInPerson {
  subscriberId: string;
  issuer?: string;
  name?: string;
  hcRole?: string;
  organization?: string;
}

/** Records a sign-in: the person's account with the attributes of this login. */
export async function recordSignIn(trx: Knex.Transaction, p: SignedInPerson, at: Date): Promise<Account> {
  const acc = await ensureAccount(trx, { kind: "person", subscriberId: p.subscriberId });
  const [row] = await trx("pobox_accounts").where({ id: acc.id }).update({
    issuer: p.issuer ?? null, display_name: p.name?.normalize("NFC") ?? null, hc_role: p.hcRole ?? null,
    organization: p.organization?.normalize("NFC") ?? null, last_login_at: at,
  }).returning("*");
  return accountFromRow(row);
}

/** The account with id `id`, or undefined. */
export async function findAccount(db: Knex, id: number): Promise<Account | undefined> {
  const r = await db("pobox_accounts").where({ id }).first();
  return r ? accountFromRow(r) : undefined;
}

/** The account of `a`, or undefined when no envelope and no sign-in ever named it. */
export async function findAddressee(db: Knex, a: Addressee): Promise<Account | undefined> {
  const r = await db("pobox_accounts").where({ kind: a.kind, subscriber_id: a.subscriberId }).first();
  return r ? accountFromRow(r) : undefined;
}
