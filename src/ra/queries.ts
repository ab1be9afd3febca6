/**
 * Read queries of the RA console's own pages: issuance requests and receipts with their
 * applications. RA roles and the auditor see every association's rows (the RA serves them all).
 */
import type { Row } from "../pipeline/machine.ts";
import type { Db } from "../store/db.ts";

/** Most rows a list shows (oldest first, so work is done in order). */
const LIST_LIMIT = 200;

/** Issuance requests in `state` (every state when undefined) with their applications, oldest first. */
export async function listIssuanceRequests(db: Db, state: string | undefined): Promise<{ request: Row; application: Row }[]> {
  const q = db("issuance_requests").orderBy("id").limit(LIST_LIMIT);
  if (state) q.where({ state });
  return withApplications(db, (await q.select("*")) as Row[], (request, application) => ({ request, application }));
}

/** The issuance request of an application, if one was created. */
export async function issuanceRequestForApplication(db: Db, applicationId: number): Promise<Row | undefined> {
  return (await db("issuance_requests").where({ application_id: applicationId }).first()) as Row | undefined;
}

/** Receipts in `state` (every state when undefined) with their applications, oldest first. */
export async function listReceipts(db: Db, state: string | undefined): Promise<{ receipt: Row; application: Row }[]> {
  const q = db("receipts").orderBy("id").limit(LIST_LIMIT);
  if (state) q.where({ state });
  return withApplications(db, (await q.select("*")) as Row[], (receipt, application) => ({ receipt, application }));
}

async function withApplications<T>(db: Db, rows: Row[], pair: (row: Row, application: Row) => T): Promise<T[]> {
  if (!rows.length) return [];
  const apps = (await db("applications").whereIn("id", rows.map((r) => Number(r.application_id))).select("*")) as Row[];
  const byId = new Map(apps.map((a) => [Number(a.id), a]));
  return rows.map((r) => pair(r, byId.get(Number(r.application_id))!));
}
