/**
 * What the IA console's route modules share: their dependencies, id parsing, the Japanese name
 * of a qualification, and the RA desk as a delivery destination.
 */
import type { RequestHandler, Response } from "express";
import { NotFoundError } from "../../pipeline/errors.ts";
import type { CrlPolicy } from "../../pki/crl-policy.ts";
import type { Policies } from "../../policies.ts";
import type { IaContext } from "../context.ts";
import type { IssuanceJobRunner } from "../issuance-jobs.ts";

/** The IA runtime the console routes work with. */
export interface IaRouteDeps {
  ctx: IaContext;
  jobs: IssuanceJobRunner;
  crlPolicy: CrlPolicy;
}

/** Role guards of the IA routes: `read` ia_operator or auditor, `write` ia_operator only. */
export interface IaGuards {
  read: RequestHandler;
  write: RequestHandler;
}

/**
 * The destination of cards from applications the RA took directly (no regional association,
 * lra_id NULL): the RA's own desk.
 */
export const RA_DESK = { code: "RA", name: "登録局窓口（直接申込）", nameEn: "RA desk (direct applications)" } as const;

/** A positive integer route parameter; anything else is a 404 (no such object). */
export function idParam(v: unknown): number {
  const n = typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new NotFoundError();
  return n;
}

/**
 * The qualification of an application in Japanese from the hcRole table (`ja`), with the manager
 * role after it when there is one ("医師・病院長"); the code itself when the table lacks it.
 */
export function qualificationJa(hcRoles: Policies["hcRoles"], qualification: unknown, managerRole?: unknown): string {
  const name = (code: unknown) => (typeof code === "string" ? (hcRoles.get(code)?.ja ?? code) : "");
  return managerRole ? `${name(qualification)}・${name(managerRole)}` : name(qualification);
}

/** Sends `body` as JSON with `status` (POST answers; GETs go through kit.render). */
export function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).json(body);
}
