/**
 * Read queries of the application pages shared by the LRA and RA consoles: search, one
 * application, its documents. Scope is applied here, on the server: an LRA operator's queries are
 * restricted to its own regional association (rows of another association are refused with
 * ForbiddenError, as the pipeline services do); RA roles and the auditor see every application.
 * Writes go through the pipeline services (src/pipeline/applications.ts), never through here.
 */
import { APPLICATION_STATES, applicationMachine } from "../pipeline/application.ts";
import { NotFoundError } from "../pipeline/errors.ts";
import { canonicalRegistrationNumber } from "../pipeline/licence-check.ts";
import { nameMatches } from "../pipeline/name-search.ts";
import { assertScope, type Row } from "../pipeline/machine.ts";
import { isLraRole, type Operator } from "../pipeline/operator.ts";
import type { Knex } from "knex";
import { keysetPage, type KeysetPage, type PageCursor } from "./keyset.ts";
import type { Db } from "../store/db.ts";

/** Most rows a search returns (newest first); the page says when there may be more. */
export const SEARCH_LIMIT = 200;

export interface ApplicationSearch {
  /** Free text: part of the kanji or kana name, a licence number, or an application number. */
  q?: string;
  /** One of APPLICATION_STATES; anything else is ignored. */
  state?: string;
  /** Direct (RA desk/mail) applications only, or LRA ones only. */
  channel?: "lra" | "direct";
  limit?: number;
}

/**
 * Applications visible to `op` matching `s`, newest first. The text matches a name written in
 * kanji or kana through the stored search key (name-search.ts: 異体字, width, spaces and
 * hiragana/katakana ignored; indexed), the licence number (leading zeros, full-width digits and
 * 「第…号」 ignored) or the application number.
 */
export async function searchApplications(db: Db, op: Operator, s: ApplicationSearch = {}): Promise<Row[]> {
  return (await applicationSearchQuery(db, op, s).orderBy("id", "desc").limit(Math.min(s.limit ?? SEARCH_LIMIT, SEARCH_LIMIT)).select("*")) as Row[];
}

/**
 * The filter of searchApplications as a query without order, limit or columns (the paginated
 * list pages it with keysetPage, src/registration/keyset.ts). Scope applied as there.
 */
export function applicationSearchQuery(db: Db, op: Operator, s: ApplicationSearch = {}): Knex.QueryBuilder {
  const query = db("applications");
  if (isLraRole(op.role)) query.where({ lra_id: op.lraId });
  if (s.state && (APPLICATION_STATES as readonly string[]).includes(s.state)) query.where({ state: s.state });
  if (s.channel === "lra") query.where({ channel: "lra" });
  if (s.channel === "direct") query.whereNot({ channel: "lra" });
  const q = (s.q ?? "").normalize("NFC").trim();
  if (q) {
    const compact = q.replace(/[\s\u3000]+/gu, "");
    const licence = canonicalRegistrationNumber(q);
    query.where((w) => {
      nameMatches(w, "search_key", q);
      if (licence) w.orWhere({ licence_number: licence });
      w.orWhereRaw("upper(application_no) = ?", [compact.normalize("NFKC").toUpperCase()]);
    });
  }
  return query;
}

/**
 * One application as `op` may see it. @throws NotFoundError; ForbiddenError when an LRA operator
 * asks for another association's application.
 */
export async function readApplication(db: Db, op: Operator, id: number): Promise<Row> {
  const row = Number.isSafeInteger(id) && id > 0 ? ((await db("applications").where({ id }).first()) as Row | undefined) : undefined;
  if (!row) throw new NotFoundError(`application ${id} not found`, "申込が見つかりません");
  assertScope(applicationMachine, row, op);
  return row;
}

/** The scanned documents of an application (metadata only, oldest first). Scope: call readApplication first. */
export async function listDocuments(db: Db, applicationId: number): Promise<Row[]> {
  return (await db("application_documents")
    .where({ application_id: applicationId })
    .orderBy("id")
    .select("id", "application_id", "kind", "filename", "media_type", "size_bytes", "sha256", "uploaded_by", "created_at")) as Row[];
}

/** The regional association names by id (for lists that show where an application came from). */
export async function lraNames(db: Db): Promise<Map<number, { code: string; name: string }>> {
  const rows = await db("lras").select("id", "code", "name");
  return new Map(rows.map((r: { id: number; code: string; name: string }) => [Number(r.id), { code: r.code, name: r.name }]));
}

/** Display names of operators by id (creator / approver columns). */
export async function operatorNames(db: Db, ids: unknown[]): Promise<Map<number, { username: string; displayName: string }>> {
  const wanted = [...new Set(ids.filter((x) => x != null).map(Number))];
  if (!wanted.length) return new Map();
  const rows = await db("operators").whereIn("id", wanted).select("id", "username", "display_name");
  return new Map(rows.map((r: { id: number; username: string; display_name: string | null }) => [Number(r.id), { username: r.username, displayName: r.display_name ?? r.username }]));
}

/**
 * LRA batches with their applications, newest first (open batches first). `lraId` restricts to one
 * association (the LRA console passes its operator's); `states` to some batch states (the RA sees
 * forwarded and received ones).
 */
export async function listLraBatches(db: Db, filter: { lraId?: number | null; states?: string[]; limit?: number }): Promise<{ batch: Row; applications: Row[] }[]> {
  const q = lraBatchQuery(db, filter).orderByRaw("(state = 'open') desc, id desc").limit(filter.limit ?? 100);
  return withBatchApplications(db, (await q.select("*")) as Row[]);
}

/**
 * One page of an association's batches, newest first (the open batch is the newest), with the
 * true total (keyset.ts; issue 12 §3), each with its applications.
 */
export async function pageLraBatches(db: Db, filter: { lraId?: number | null }, cursor: PageCursor): Promise<{ list: { batch: Row; applications: Row[] }[]; page: KeysetPage }> {
  const page = await keysetPage(lraBatchQuery(db, filter), "id", "desc", cursor);
  return { list: await withBatchApplications(db, page.rows), page };
}

function lraBatchQuery(db: Db, filter: { lraId?: number | null; states?: string[] }): Knex.QueryBuilder {
  const q = db("lra_batches");
  if (filter.lraId != null) q.where({ lra_id: filter.lraId });
  if (filter.states) q.whereIn("state", filter.states);
  return q;
}

async function withBatchApplications(db: Db, batches: Row[]): Promise<{ batch: Row; applications: Row[] }[]> {
  if (!batches.length) return [];
  const apps = (await db("applications").whereIn("lra_batch_id", batches.map((b) => b.id)).orderBy("id").select("*")) as Row[];
  return batches.map((batch) => ({ batch, applications: apps.filter((a) => Number(a.lra_batch_id) === Number(batch.id)) }));
}
