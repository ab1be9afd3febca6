/**
 * Card and certificate lifecycles (issue 13 §1): the migration maps existing card statuses and
 * certificates onto the lifecycles; transitions check role, scope and state, write card_events
 * and the audit log; replacement cards are linked both ways.
 */
import knexFactory, { type Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import {
  applyCardTransition, CARD_STATES, cardLifecycle, cardRecord, linkReplacementCard,
} from "../../src/pipeline/card-lifecycle.ts";
import { certificateLifecycle } from "../../src/pipeline/certificate-lifecycle.ts";
import { lifecycleTransitionsFrom } from "../../src/pipeline/lifecycle.ts";
import { migrationSource } from "../../src/store/migrations.ts";
import { freshDatabaseUrl } from "../helpers/db.ts";

const IA = { actor: "test-ia", role: "ia_operator" };
const RA = { actor: "test-ra", role: "ra_officer" };

describe("card lifecycle (issue 13 §1)", () => {
  let db: Knex;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl();
    cleanup = fresh.cleanup;
    db = knexFactory({ client: "pg", connection: fresh.url, pool: { min: 0, max: 4 } });
    // Schema as before the lifecycle, rows in the old statuses, then the lifecycle migration.
    const all = await migrationSource.getMigrations([]);
    const before = { ...migrationSource, getMigrations: async () => all.filter((n) => n < "0160") };
    await db.migrate.latest({ migrationSource: before });
    await db("cards").insert([
      { label: "card-A", card_serial: "A", status: "blank" },
      { label: "card-B", card_serial: "B", status: "personalized" },
      { label: "card-C", card_serial: "C", status: "inspect" },
      { label: "card-D", card_serial: "D", status: "void" },
      { label: "card-E", card_serial: "E", status: "shipped" },
      { label: "card-F", card_serial: "F", status: "active" },
      { label: "card-G", card_serial: "G", status: "odd" },
    ]);
    await db.migrate.latest({ migrationSource });
  });
  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  it("maps the old statuses onto the lifecycle and starts each card's history", async () => {
    const by = Object.fromEntries((await db("cards").select("label", "status")).map((r) => [r.label, r.status]));
    expect(by).toEqual({
      "card-A": "blank", "card-B": "personalised", "card-C": "spoiled", "card-D": "blank", "card-E": "shipped", "card-F": "active", "card-G": "spoiled",
    });
    const ev = await db("card_events").join("cards", "cards.id", "card_events.card_id").where("cards.label", "card-C").first("card_events.*");
    expect(ev).toMatchObject({ transition: "migrated", to_state: "spoiled", details: { previousStatus: "inspect" } });
    await expect(db("cards").where({ label: "card-A" }).update({ status: "personalized" })).rejects.toThrow(/cards_status/);
  });

  it("every state is reachable and only destroyed is final", () => {
    const reached = new Set<string>(["blank"]);
    for (let i = 0; i < CARD_STATES.length; i++) for (const t of Object.values(cardLifecycle.transitions)) if (t.from.some((f) => reached.has(f))) reached.add(t.to);
    expect([...reached].sort()).toEqual([...CARD_STATES].sort());
    const leaving = new Set(Object.values(cardLifecycle.transitions).flatMap((t) => t.from as readonly string[]));
    expect(CARD_STATES.filter((s) => !leaving.has(s))).toEqual(["destroyed"]);
    expect(lifecycleTransitionsFrom(cardLifecycle, "pin_locked", "ia_operator")).toContain("pin_unblock");
    expect(lifecycleTransitionsFrom(cardLifecycle, "pin_locked", "ra_officer")).not.toContain("pin_unblock");
    expect(Object.values(certificateLifecycle.transitions).map((t) => t.to).sort()).toEqual(["expired", "issued", "on_hold", "revoked", "revoked", "superseded"]);
  });

  it("runs transitions with role, state and guard checks, history and audit", async () => {
    await db.transaction((trx) => applyCardTransition(trx, "ship", "card-B", IA));
    await expect(db.transaction((trx) => applyCardTransition(trx, "ship", "card-B", IA))).rejects.toMatchObject({ status: 409 });
    await expect(db.transaction((trx) => applyCardTransition(trx, "hand_over", "card-B", IA))).rejects.toMatchObject({ status: 403 });
    // An LRA operator sees only its own association's cards: a card bound to none is not found.
    await expect(db.transaction((trx) => applyCardTransition(trx, "hand_over", "card-B", { actor: "l", role: "lra_reviewer", lraId: 1 }))).rejects.toMatchObject({ status: 404 });
    await db.transaction((trx) => applyCardTransition(trx, "hand_over", "card-B", RA));
    await db.transaction((trx) => applyCardTransition(trx, "activate", "card-B", RA));
    await db.transaction((trx) => applyCardTransition(trx, "pin_lock", "card-B", RA, { details: { source: "reported" } }));
    await db.transaction((trx) => applyCardTransition(trx, "pin_unblock", "card-B", IA));
    await expect(db.transaction((trx) => applyCardTransition(trx, "destroy", "card-C", { actor: "x", role: "ia_operator" }))).rejects.toMatchObject({ status: 400 });
    await db.transaction((trx) => applyCardTransition(trx, "destroy", "card-C", IA, { details: { reason: "shredded" } }));
    await db.transaction((trx) => applyCardTransition(trx, "spoil", "card-A", IA, { details: { reason: "personalisation failed" } }));
    const rec = await cardRecord(db, "card-B");
    expect(rec!.state).toBe("active");
    expect(rec!.history.map((h) => h.transition)).toEqual(["migrated", "ship", "hand_over", "activate", "pin_lock", "pin_unblock"]);
    expect(rec!.history[4]).toMatchObject({ from: "active", to: "pin_locked", actor: "test-ra", details: { source: "reported" } });
    const audit = await db("audit_log").where({ object_type: "card", object_id: "card-B" }).orderBy("seq").pluck("action");
    expect(audit).toEqual(["card.shipped", "card.handed_over", "card.activated", "card.pin_locked", "card.pin_unblocked"]);
    expect((await verifyAuditChain(db)).ok).toBe(true);
  });

  it("links a replacement card both ways", async () => {
    await db.transaction((trx) => linkReplacementCard(trx, "card-F", "card-E", RA, "loss"));
    expect((await cardRecord(db, "card-F"))!.replacedByLabel).toBe("card-E");
    expect((await cardRecord(db, "card-E"))!.replacesLabel).toBe("card-F");
    await expect(db.transaction((trx) => linkReplacementCard(trx, "card-F", "card-D", RA, "loss"))).rejects.toMatchObject({ status: 409 });
  });
});
