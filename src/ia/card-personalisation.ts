/**
 * The IA's issuance worker (DESIGN §4, issue 3 item 5, issue 10 §1–§2): takes approved issuance
 * requests from the pipeline queue and personalises one card per request — a blank card
 * provisioned (PIN mailer written for the subscriber) and bound to the request, then per profile
 * the key pair generated ON the card, the certificate issued from the applicant's registered data
 * and written to the card (card-saga.ts) — then records the request issued. One request failing
 * (HSM error, lint refusal) is recorded as failed with its reason and the others go on; a failed
 * request can be retried, or its application withdrawn.
 *
 * One worker per request: requests are claimed under a lease (pipeline/issuance-lease.ts) that a
 * heartbeat renews while the run goes on, and every write is fenced by the claim's token. A
 * request whose lease was lost (taken over after expiry) is left alone — reported "lost", never
 * recorded as failed by this worker. Crash safety: every step is recorded before the next, so the
 * worker that takes the request over after the lease expires resumes on the same card with the
 * same key pair and certificates. A card found in a state the records do not explain is put aside
 * for inspection and the request goes on with a new card (once per run). The PIN is read back from
 * the PIN mailer the IA holds until dispatch — the only place it exists.
 */
import fs from "node:fs";
import { auditActor, type Operator } from "../pipeline/operator.ts";
import {
  claimIssuanceRequests, completeIssuanceRequest, failIssuanceRequest, type ClaimedRequest,
} from "../pipeline/issuance-requests.ts";
import { fenced, LeaseKeeper, LeaseLostError, leaseSettingsFromEnv, type LeaseSettings } from "../pipeline/issuance-lease.ts";
import type { Row } from "../pipeline/machine.ts";
import { subscriberSubjectJson } from "../pipeline/subscriber-subject.ts";
import { appendAudit } from "../audit/log.ts";
import { parseSubscriberSubject } from "../pki/subject.ts";
import { CardNeedsInspection, personaliseProfile, setCardAside } from "./card-saga.ts";
import { pinMailerPath, provisionCards } from "./cards.ts";
import { cardPinKey } from "./card-pins.ts";
import type { IaContext } from "./context.ts";
import { faultPoint } from "./fault-hook.ts";

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
  /** True when this worker's lease was lost (another worker took the request over): not recorded as failed. */
  lost?: boolean;
}

export interface PersonaliseOptions {
  /** Most requests to claim in this run; default 50. */
  limit?: number;
  /** Lease and heartbeat; default from the environment (leaseSettingsFromEnv: 30 s / 10 s). */
  lease?: LeaseSettings;
  /** Called after each request, for progress bars: done so far, total of this run. */
  onProgress?: (done: number, total: number, outcome: PersonalisedCard | FailedPersonalisation) => void;
}

/**
 * Claims what this worker can take now (approved requests, and "issuing" ones whose lease has
 * expired) — up to `limit`, each under a new lease. The run's total is exactly this list.
 */
export function claimForPersonalisation(ctx: IaContext, op: Operator, opts: { limit?: number; lease?: LeaseSettings } = {}): Promise<ClaimedRequest[]> {
  const lease = opts.lease ?? leaseSettingsFromEnv();
  return claimIssuanceRequests(ctx.db, op, opts.limit ?? 50, { leaseMs: lease.leaseMs });
}

/**
 * Personalises cards for requests claimed with claimForPersonalisation, one after another, while a
 * heartbeat keeps their leases. @returns the cards personalised and the requests that failed or
 * were lost (with their error), in order.
 */
export async function personaliseClaimed(
  ctx: IaContext,
  op: Operator,
  work: ClaimedRequest[],
  opts: PersonaliseOptions = {},
): Promise<{ issued: PersonalisedCard[]; failed: FailedPersonalisation[] }> {
  const keeper = new LeaseKeeper(ctx.db, opts.lease ?? leaseSettingsFromEnv());
  keeper.start(work.map((w) => w.lease));
  const issued: PersonalisedCard[] = [];
  const failed: FailedPersonalisation[] = [];
  try {
    for (const item of work) {
      const requestId = Number(item.request.id);
      const applicationNo = String(item.application.application_no);
      let outcome: PersonalisedCard | FailedPersonalisation;
      try {
        if (keeper.lost(requestId)) throw new LeaseLostError(requestId);
        outcome = await personaliseOne(ctx, op, item);
        issued.push(outcome);
      } catch (e) {
        outcome = { requestId, applicationNo, error: (e as Error).message };
        if (e instanceof LeaseLostError) outcome.lost = true;
        else {
          try {
            await failIssuanceRequest(ctx.db, op, item.lease, outcome.error);
          } catch (f) {
            if (!(f instanceof LeaseLostError)) throw f;
            outcome.lost = true;
          }
        }
        failed.push(outcome);
      } finally {
        keeper.release(requestId);
      }
      opts.onProgress?.(issued.length + failed.length, work.length, outcome);
    }
  } finally {
    await keeper.stop();
  }
  return { issued, failed };
}

/**
 * Claims up to `limit` requests and personalises their cards as IA operator `op`
 * (claimForPersonalisation + personaliseClaimed).
 */
export async function personaliseApprovedRequests(
  ctx: IaContext,
  op: Operator,
  opts: PersonaliseOptions = {},
): Promise<{ issued: PersonalisedCard[]; failed: FailedPersonalisation[] }> {
  const lease = opts.lease ?? leaseSettingsFromEnv();
  const work = await claimForPersonalisation(ctx, op, { limit: opts.limit, lease });
  return personaliseClaimed(ctx, op, work, { ...opts, lease });
}

/** Request key of a profile's certificate on the request's `generation`-th card (0: the first). */
export function issuanceRequestKey(requestId: number, profile: string, generation: number): string {
  return generation === 0 ? `ir:${requestId}:${profile}` : `ir:${requestId}:${profile}:g${generation}`;
}

async function personaliseOne(ctx: IaContext, op: Operator, { request, application, lease }: ClaimedRequest): Promise<PersonalisedCard> {
  const by = auditActor(op);
  const requestId = Number(request.id);
  let cardLabel = request.card_label as string | null;
  let generation = Number(request.card_generation ?? 0);
  for (let attempt = 0; ; attempt++) {
    if (!cardLabel) {
      const [card] = await provisionCards(ctx.db, ctx.cards, ctx.cfg.mailDir, 1, by, await cardPinKey(ctx));
      cardLabel = card.label;
      await fenced(ctx.db, lease, async (trx) => {
        await trx("issuance_requests").where({ id: requestId }).update({ card_label: cardLabel });
        await appendAudit(trx, [{
          ...by, action: "issuance_request.card_bound", objectType: "issuance_request", objectId: String(requestId),
          details: { card: cardLabel, application: application.application_no, generation },
        }]);
      });
      await faultPoint("after-bind");
    }
    const pin = readPinMailer(pinMailerPath(ctx.cfg.mailDir, cardLabel));
    try {
      const certificates = [];
      for (const profileName of request.profiles as string[]) {
        const profile = ctx.policies.profiles.get(profileName);
        if (!profile) throw new Error(`profile ${profileName} is not in policies/profiles`);
        const subject = parseSubscriberSubject(subscriberSubjectJson(application), profile, ctx.policies.hcRoles);
        const cert = await personaliseProfile(ctx, lease, {
          cardLabel, pin, profile: profileName, subject, requestKey: issuanceRequestKey(requestId, profileName, generation),
        }, by);
        certificates.push({ caName: cert.caName, serialHex: cert.serialHex, profile: profileName });
      }
      await completeIssuanceRequest(ctx.db, op, lease, { cardLabel, certificates });
      return { requestId, applicationNo: String(application.application_no), cardLabel, certificates };
    } catch (e) {
      // A card in an unknown state is set aside once per run; the request goes on with a new card.
      if (!(e instanceof CardNeedsInspection) || attempt > 0) throw e;
      await setCardAside(ctx.db, lease, e.cardLabel, e.reason, by);
      cardLabel = null;
      generation++;
    }
  }
}

/** The user PIN from a PIN mailer written by provisionCards. @throws when the mailer is missing. */
export function readPinMailer(file: string): string {
  const m = /PIN: (\d+)/.exec(fs.readFileSync(file, "utf8"));
  if (!m) throw new Error(`no PIN in ${file}`);
  return m[1];
}
