/**
 * The IA's issuance worker (DESIGN §4, issue 3 item 5): takes approved issuance requests from the
 * pipeline queue and personalises one card per request — a blank card provisioned (PIN mailer
 * written for the subscriber), the signature and/or authentication key pair generated ON the
 * card, each certificate issued from the applicant's registered data and written to the card —
 * then records the card↔applicant binding. One request failing (HSM error, lint refusal) is
 * recorded as failed with its reason and the others go on; a failed request can be retried.
 *
 * Crash safety: the card is bound to the request (issuance_requests.card_label) right after it
 * is provisioned, and every certificate has the request key "ir:<id>:<profile>", so a request
 * left in "issuing" resumes on the same card without a second card or certificate — once it has
 * been idle for ISSUING_STALE_AFTER_MS, so two IA processes never work one request at once. The PIN is
 * read back from the PIN mailer the IA holds until dispatch — the only place it exists.
 */
import fs from "node:fs";
import { appendAudit } from "../audit/log.ts";
import {
  claimIssuanceRequests, completeIssuanceRequest, failIssuanceRequest, resumableIssuanceRequests, type ClaimedRequest,
} from "../pipeline/issuance-requests.ts";
import type { Row } from "../pipeline/machine.ts";
import { auditActor, type Operator } from "../pipeline/operator.ts";
import { parseSubscriberSubject } from "../pki/subject.ts";
import { issueOntoCard, pinMailerPath, provisionCards } from "./cards.ts";
import type { IaContext } from "./context.ts";

export interface PersonalisedCard {
  requestId: number;
  applicationNo: string;
  cardLabel: string;
  certificates: { caName: string; serialHex: string; profile: string }[];
}

export interface FailedPersonalisation {
  requestId: number;
  applicationNo: string;
  error: string;
}

export interface PersonaliseOptions {
  /** Most requests to claim in this run; default 50. */
  limit?: number;
  /** Also resume requests left in "issuing" by a stopped worker (default true). */
  resume?: boolean;
  /** Idle time after which an "issuing" request counts as abandoned (default ISSUING_STALE_AFTER_MS). */
  staleAfterMs?: number;
  /** Called after each request, for progress bars: done so far, total of this run. */
  onProgress?: (done: number, total: number, outcome: PersonalisedCard | FailedPersonalisation) => void;
}

/**
 * Personalises cards for up to `limit` approved issuance requests as IA operator `op`.
 * @returns the cards personalised and the requests that failed (with their error), in order.
 */
export async function personaliseApprovedRequests(
  ctx: IaContext,
  op: Operator,
  opts: PersonaliseOptions = {},
): Promise<{ issued: PersonalisedCard[]; failed: FailedPersonalisation[] }> {
  const resumed = opts.resume === false ? [] : await resumableIssuanceRequests(ctx.db, op, opts.staleAfterMs);
  const claimed = await claimIssuanceRequests(ctx.db, op, opts.limit ?? 50);
  const work = [...resumed, ...claimed];
  const issued: PersonalisedCard[] = [];
  const failed: FailedPersonalisation[] = [];
  for (const item of work) {
    const applicationNo = String(item.application.application_no);
    let outcome: PersonalisedCard | FailedPersonalisation;
    try {
      outcome = await personaliseOne(ctx, op, item);
      issued.push(outcome);
    } catch (e) {
      const error = (e as Error).message;
      await failIssuanceRequest(ctx.db, op, Number(item.request.id), error);
      outcome = { requestId: Number(item.request.id), applicationNo, error };
      failed.push(outcome);
    }
    opts.onProgress?.(issued.length + failed.length, work.length, outcome);
  }
  return { issued, failed };
}

/** The subject of an applicant's certificates, from the registered application (NFC already). */
export function subscriberSubjectJson(app: Row): Record<string, unknown> {
  const org = app.organization_latin || app.organization_kanji
    ? { latin: app.organization_latin ?? undefined, kanji: app.organization_kanji ?? undefined }
    : undefined;
  return {
    hcRole: app.manager_role ?? app.qualification,
    subscriberId: app.subscriber_id,
    name: { latin: app.name_latin, kanji: app.name_kanji },
    ...(org ? { organization: org } : {}),
  };
}

async function personaliseOne(ctx: IaContext, op: Operator, { request, application }: ClaimedRequest): Promise<PersonalisedCard> {
  const by = auditActor(op);
  const requestId = Number(request.id);
  let cardLabel = request.card_label as string | null;
  let pinMailer: string;
  if (cardLabel) {
    pinMailer = pinMailerPath(ctx.cfg.mailDir, cardLabel);
  } else {
    const [card] = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, 1, by);
    cardLabel = card.label;
    pinMailer = card.pinMailer;
    await ctx.db.transaction(async (trx) => {
      await trx("issuance_requests").where({ id: requestId }).update({ card_label: cardLabel });
      await appendAudit(trx, [{
        ...by, action: "issuance_request.card_bound", objectType: "issuance_request", objectId: String(requestId),
        details: { card: cardLabel, application: application.application_no },
      }]);
    });
  }
  const pin = readPinMailer(pinMailer);
  const certificates = [];
  for (const profileName of request.profiles as string[]) {
    const profile = ctx.policies.profiles.get(profileName);
    if (!profile) throw new Error(`profile ${profileName} is not in policies/profiles`);
    const subject = parseSubscriberSubject(subscriberSubjectJson(application), profile, ctx.policies.hcRoles);
    const cert = await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, {
      cardLabel, pin, profile: profileName, subject, requestKey: `ir:${requestId}:${profileName}`,
    }, by);
    certificates.push({ caName: cert.caName, serialHex: cert.serialHex, profile: profileName });
  }
  await completeIssuanceRequest(ctx.db, op, requestId, { cardLabel, certificates });
  return { requestId, applicationNo: String(application.application_no), cardLabel, certificates };
}

/** The user PIN from a PIN mailer written by provisionCards. @throws when the mailer is missing. */
export function readPinMailer(file: string): string {
  const m = /PIN: (\d+)/.exec(fs.readFileSync(file, "utf8"));
  if (!m) throw new Error(`no PIN in ${file}`);
  return m[1];
}
