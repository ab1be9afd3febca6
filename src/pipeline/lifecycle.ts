/**
 * The lifecycle engine for things that outlive the registration pipeline — IC cards and
 * certificates after issuance (issue 13 §1; DESIGN §3 state machines as data). Like machine.ts, a
 * lifecycle is data: states and, per transition, the states it leaves from, the state it enters,
 * who may take it, an optional guard and the audit event. Two differences from machine.ts:
 *
 *   - the actor may be an operator (with its role and regional association), the IA's CLI or
 *     workers ("ia", "system"): cards change state in the IA's personalisation worker too;
 *   - every transition also appends a row to the entity's history table (card_events,
 *     certificate_events), which the consoles show on the card's page.
 *
 * `applyLifecycle` runs one transition inside the caller's transaction: lock the row (FOR UPDATE),
 * check role, scope (an LRA operator acts only on its own association's cards), state and guard —
 * each failure a typed error, nothing written — then update the state column (+ patch, version),
 * insert the history row and append the audit record.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { Actor } from "../audit/actor.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "./errors.ts";
import { auditActor, isLraRole, type Operator, type OperatorRole } from "./operator.ts";

/**
 * Who may take a lifecycle transition: an operator role, "ia" (the IA host's command line and
 * workers, as cliActor records them) or "system".
 */
export type LifecycleRole = OperatorRole | "ia" | "system";

/** The actor of a transition: audit fields plus, for LRA operators, their regional association. */
export interface LifecycleActor extends Actor {
  /** Regional association of an LRA operator (scope); absent or null for everyone else. */
  lraId?: number | null;
}

/** The lifecycle actor of a console operator (role and regional association). */
export function lifecycleActorOf(op: Operator): LifecycleActor {
  return { ...auditActor(op), lraId: op.lraId };
}

/** A row as read from the lifecycle's table (snake_case columns). */
export type LifecycleRow = Record<string, unknown> & { id: number | string };

export interface LifecycleTransition<S extends string> {
  from: readonly S[];
  to: S;
  roles: readonly LifecycleRole[];
  /** Audit action, "<entity>.<past tense>", e.g. "card.pin_unblocked". */
  event: string;
  labelJa: string;
  labelEn: string;
  /** Extra checks on the locked row; throw a typed error (Validation/Conflict) to refuse. */
  guard?: (row: LifecycleRow, actor: LifecycleActor, trx: Knex.Transaction, details: Record<string, unknown>) => Promise<void> | void;
}

export interface Lifecycle<S extends string, T extends string> {
  /** Entity name in audit records ("card", "certificate"). */
  entity: string;
  entityJa: string;
  table: string;
  /** Column holding the state. */
  stateColumn: string;
  /** Column the callers address rows by ("label" for cards, "id" for certificates). */
  keyColumn: string;
  /** History table and its column referencing the row's id. */
  historyTable: string;
  historyColumn: string;
  /** Optional version column bumped by every transition (optimistic checks in forms). */
  versionColumn?: string;
  /** Optional timestamp column set by every transition. */
  updatedAtColumn?: string;
  states: readonly S[];
  stateJa: Record<S, string>;
  stateEn: Record<S, string>;
  transitions: Record<T, LifecycleTransition<S>>;
  /** The regional association a row belongs to, for LRA scope (inside the lock); null: none. */
  lraOf?: (row: LifecycleRow, trx: Knex.Transaction) => Promise<number | null>;
}

export interface LifecycleOptions {
  /** Further columns to set with the state change (snake_case). */
  patch?: Record<string, unknown>;
  /** Audit and history details (never secrets). */
  details?: Record<string, unknown>;
  /** Audit objectId; default the row's key column. */
  objectId?: string;
}

/** The result of a transition: the updated row and the states it went between. */
export interface LifecycleStep {
  row: LifecycleRow;
  from: string;
  to: string;
}

function stateOf(m: Lifecycle<string, string>, row: LifecycleRow): string {
  return String(row[m.stateColumn]);
}

/**
 * Locks the row of `m.table` whose key column is `key` for the rest of `trx` and checks the
 * actor's scope. @throws NotFoundError (also for another association's row, so nothing leaks).
 */
export async function lockLifecycleRow<S extends string, T extends string>(
  trx: Knex.Transaction,
  m: Lifecycle<S, T>,
  key: string | number,
  actor: LifecycleActor,
): Promise<LifecycleRow> {
  const row = (await trx(m.table).where({ [m.keyColumn]: key }).forUpdate().first()) as LifecycleRow | undefined;
  if (!row) throw new NotFoundError(`${m.entity} ${key} not found`, `${m.entityJa}が見つかりません（${key}）`);
  if (isLraRole(actor.role as OperatorRole)) {
    const lra = m.lraOf ? await m.lraOf(row, trx) : null;
    if (lra == null || actor.lraId == null || lra !== actor.lraId) {
      throw new NotFoundError(`${m.entity} ${key} not found`, `${m.entityJa}が見つかりません（${key}）`);
    }
  }
  return row;
}

/**
 * Runs transition `name` of lifecycle `m` on the row keyed `key` for `actor` inside `trx` (see
 * the module comment for the order of checks). A transition whose `from` includes its `to` (a
 * recorded event without a change of state, e.g. a card released blank) is allowed.
 * @throws ForbiddenError (role), NotFoundError (row or scope), ConflictError (state), guard errors.
 */
export async function applyLifecycle<S extends string, T extends string>(
  trx: Knex.Transaction,
  m: Lifecycle<S, T>,
  name: T,
  key: string | number,
  actor: LifecycleActor,
  opts: LifecycleOptions = {},
): Promise<LifecycleStep> {
  const t = m.transitions[name];
  if (!t) throw new Error(`${m.entity}: no transition "${name}"`);
  if (!t.roles.includes(actor.role as LifecycleRole)) {
    throw new ForbiddenError(
      `role ${actor.role} may not ${name} a ${m.entity}`,
      `この操作（${m.entityJa}の${t.labelJa}）を行う権限がありません`,
    );
  }
  const row = await lockLifecycleRow(trx, m, key, actor);
  const from = stateOf(m as unknown as Lifecycle<string, string>, row);
  if (!t.from.includes(from as S)) {
    throw new ConflictError(
      `${m.entity} ${key} is ${from}; "${name}" needs ${t.from.join(" or ")}`,
      `${m.entityJa} ${key} は「${m.stateJa[from as S] ?? from}」のため${t.labelJa}できません`,
    );
  }
  const details = opts.details ?? {};
  if (t.guard) await t.guard(row, actor, trx, details);
  const update: Record<string, unknown> = { ...opts.patch, [m.stateColumn]: t.to };
  if (m.versionColumn) update[m.versionColumn] = Number(row[m.versionColumn] ?? 0) + 1;
  if (m.updatedAtColumn) update[m.updatedAtColumn] = trx.fn.now();
  const [updated] = (await trx(m.table).where({ id: row.id }).update(update).returning("*")) as LifecycleRow[];
  await trx(m.historyTable).insert({
    [m.historyColumn]: row.id,
    transition: name,
    from_state: from,
    to_state: t.to,
    event: t.event,
    actor: actor.actor,
    role: actor.role,
    details: JSON.stringify(details),
  });
  await appendAudit(trx, [{
    actor: actor.actor,
    role: actor.role,
    action: t.event,
    objectType: m.entity,
    objectId: opts.objectId ?? String(row[m.keyColumn]),
    details: { from, to: t.to, ...details },
  }]);
  return { row: updated, from, to: t.to };
}

/** The transitions of `m` an actor with `role` could take from `state` (console buttons). */
export function lifecycleTransitionsFrom<S extends string, T extends string>(m: Lifecycle<S, T>, state: string, role: string): T[] {
  return (Object.keys(m.transitions) as T[]).filter((n) => {
    const t = m.transitions[n];
    return t.from.includes(state as S) && t.roles.includes(role as LifecycleRole);
  });
}

/** One row of a lifecycle's history, as shown on the consoles. */
export interface LifecycleEvent {
  at: Date;
  transition: string;
  from: string | null;
  to: string;
  event: string;
  actor: string;
  role: string;
  details: Record<string, unknown>;
}

/** The history of row `id` of `m`, oldest first. */
export async function lifecycleHistory<S extends string, T extends string>(db: Knex, m: Lifecycle<S, T>, id: number | string): Promise<LifecycleEvent[]> {
  const rows = await db(m.historyTable).where({ [m.historyColumn]: id }).orderBy([{ column: "at" }, { column: "id" }]);
  return rows.map((r) => ({
    at: new Date(r.at),
    transition: r.transition,
    from: r.from_state ?? null,
    to: r.to_state,
    event: r.event,
    actor: r.actor,
    role: r.role,
    details: (typeof r.details === "string" ? JSON.parse(r.details) : r.details) ?? {},
  }));
}
