/**
 * Return and destruction of a card (返却・廃棄, issue 13 §6; HPKI CP §4.9.1 cessation of use).
 * Returning records who took the card back and when (card transition "return", card_events +
 * audit) and, in the same transaction, files a revocation request for the card's certificates
 * still valid with reason cessationOfOperation — the existing revocation path: a second officer
 * approves it and the IA's revocation worker revokes them (src/ia/revocation.ts). Destruction
 * (card transition "destroy", reason required) is recorded on the card page's events.
 */
import type { Knex } from "knex";
import { z } from "zod";
import { applyCardTransition } from "./card-lifecycle.ts";
import { parseInput } from "./errors.ts";
import { lifecycleActorOf } from "./lifecycle.ts";
import type { Row } from "./machine.ts";
import { isLraRole, type Operator } from "./operator.ts";
import { createRevocationRequest } from "./revocation-requests.ts";

const returnSchema = z.object({
  reason: z.string().max(500).optional(),
});

/**
 * Records card `cardLabel` returned by its holder at `op`'s desk and files the revocation request
 * (cessationOfOperation) for its valid certificates, if any. @returns the revocation request or null.
 * @throws as applyCardTransition (role, scope, state) and createRevocationRequest.
 */
export async function returnCard(db: Knex, op: Operator, cardLabel: string, input: unknown): Promise<{ revocationRequest: Row | null }> {
  const v = parseInput(returnSchema, input);
  const reason = v.reason?.trim() || "card returned by the holder (返却)";
  return db.transaction(async (trx) => {
    await applyCardTransition(trx, "return", cardLabel, lifecycleActorOf(op), { details: { reason, receivedBy: op.username } });
    const valid = await trx("certificates").where({ card_label: cardLabel, status: "issued" }).whereIn("lifecycle_state", ["issued", "on_hold"]).first("id");
    if (!valid) return { revocationRequest: null };
    const revocationRequest = await createRevocationRequest(trx, op, {
      targetKind: "card", cardLabel, channel: isLraRole(op.role) ? "subscriber_lra" : "subscriber_ra", reason: "cessationOfOperation",
      grounds: `カード返却 / card returned: ${reason}`,
    });
    return { revocationRequest };
  });
}
