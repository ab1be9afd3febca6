/**
 * Read queries of the RA console's own pages: issuance requests and receipts with their
 * applications. RA roles and the auditor see every association's rows (the RA serves them all).
 */
import type { Row } from "../pipeline/machine.ts";
import type { Db } from "../store/db.ts";
import { keysetPage, type KeysetPage, type PageCursor } from "../registration/keyset.ts";

/**
 * One page of the issuance requests in `state` (every state when undefined) with their
 * applications, oldest first (work is done in order), and the true total (keyset.ts).
 */
export async function listIssuanceRequests(db: Db, state: string | undefined, cursor: PageCursor): Promise<{ list: { request: Row; application: Row }[]; page: KeysetPage }> {
  const q = db("issuance_requests");
  if (state) q.where({ state });
  const page = await keysetPage(q, "id", "asc", cursor);
  return { list: await withApplications(db, page.rows, (request, application) => ({ request, application })), page };
}

/** The issuance request of an application, if one was created. */
export async function issuanceRequestForApplication(db: Db, applicationId: number): Promise<Row | undefined> {
  return (await db("issuance_requests").where({ application_id: applicationId }).first()) as Row | undefined;
}

/** One page of the receipts in `state` (every state when undefined) with their applications, oldest first, and the total. */
export async function listReceipts(db: Db, state: string | undefined, cursor: PageCursor): Promise<{ list: { receipt: Row; application: Row }[]; page: KeysetPage }> {
  const q = db("receipts");
  if (state) q.where({ state });
  const page = await keysetPage(q, "id", "asc", cursor);
  return { list: await withApplications(db, page.rows, (receipt, application) => ({ receipt, application })), page };
}

async function withApplications<T>(db: Db, rows: Row[], pair: (row: Row, application: Row) => T): Promise<T[]> {
  if (!rows.length) return [];
  const apps = (await db("applications").whereIn("id", rows.map((r) => Number(r.application_id))).select("*")) as Row[];
  const byId = new Map(apps.map((a) => [Number(a.id), a]));
  return rows.map((r) => pair(r, byId.get(Number(r.application_id))!));
}
