/**
 * The state-machine engine of the registration pipeline (DESIGN §3). A machine is data: its
 * states and, per transition, the states it leaves from, the state it enters, the roles that may
 * take it, an optional guard and the audit event it writes. `applyTransition` runs one transition
 * inside the caller's transaction:
 *
 *   1. lock the row (SELECT … FOR UPDATE): a second officer acting at the same moment waits here
 *      and then sees the new state, so exactly one of them succeeds;
 *   2. role, then scope (an LRA operator acts only on its own association's rows), then state,
 *      then the guard — each failure a typed error (Forbidden / Conflict / Validation);
 *   3. UPDATE state (+ patch), version + 1; append the audit record.
 *
 * A failure throws before anything is written, and the caller's transaction rolls back.
 */
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "./errors.ts";
import { auditActor, isLraRole, type Operator, type OperatorRole } from "./operator.ts";

/** A row of a pipeline table as read (snake_case columns). */
export type Row = Record<string, unknown> & { id: number | string; state: string; version: number };

export interface Transition<S extends string> {
  from: readonly S[];
  to: S;
  roles: readonly OperatorRole[];
  /** Audit action, "<entity>.<past tense>", e.g. "application.lra_approved". */
  event: string;
  /** Japanese label of the action for consoles and messages, e.g. "承認". */
  labelJa: string;
  /** Extra checks on the locked row; throw ValidationError / ConflictError to refuse. */
  guard?: (row: Row, op: Operator, trx: Knex.Transaction) => Promise<void> | void;
}

export interface Machine<S extends string, T extends string> {
  /** Entity name used in audit records and messages ("application", "lra_batch", …). */
  entity: string;
  /** Japanese name of the entity, for messages ("申込", "受付バッチ", …). */
  entityJa: string;
  table: string;
  states: readonly S[];
  /** Japanese label of each state for consoles. */
  stateJa: Record<S, string>;
  transitions: Record<T, Transition<S>>;
  /** Column holding the regional association the row belongs to (scope of LRA roles), if any. */
  lraColumn?: string;
  /** For rows that reach their association through another table: reads it (inside the lock). */
  lraOf?: (row: Row, trx: Knex.Transaction) => Promise<number | null>;
  /** Human-facing number of a row (application_no, batch_no) for messages. */
  numberColumn?: string;
}

export interface ApplyOptions {
  /** Further columns to set with the state change (snake_case). */
  patch?: Record<string, unknown>;
  /** Extra audit details (never secrets). */
  details?: Record<string, unknown>;
  /** When set, the row's version must still be this (optimistic check for forms shown earlier). */
  expectedVersion?: number;
}

/**
 * Locks row `id` of `m.table` for the rest of `trx` and checks that `op` may see it (scope).
 * @throws NotFoundError when there is no such row; ForbiddenError when it belongs to another
 *   regional association than an LRA operator's.
 */
export async function lockRow<S extends string, T extends string>(
  trx: Knex.Transaction,
  m: Machine<S, T>,
  id: number | string,
  op: Operator,
): Promise<Row> {
  const row = (await trx(m.table).where({ id }).forUpdate().first()) as Row | undefined;
  if (!row) throw new NotFoundError(`${m.entity} ${id} not found`, `${m.entityJa}が見つかりません（${id}）`);
  if (m.lraOf && isLraRole(op.role)) assertScope({ ...m, lraColumn: "lra_id" }, { ...row, lra_id: await m.lraOf(row, trx) }, op);
  else assertScope(m, row, op);
  return row;
}

/** @throws ForbiddenError when an LRA-scoped operator reaches a row of another association. */
export function assertScope<S extends string, T extends string>(m: Machine<S, T>, row: Record<string, unknown>, op: Operator): void {
  if (!isLraRole(op.role)) return;
  if (!m.lraColumn || row[m.lraColumn] == null || Number(row[m.lraColumn]) !== op.lraId) {
    throw new ForbiddenError(
      `${m.entity} ${rowNumber(m, row)} belongs to another regional association`,
      `この${m.entityJa}は他の地域受付審査局のものです`,
    );
  }
}

/**
 * Runs transition `name` of machine `m` on row `id` for operator `op` inside `trx` (see the
 * module comment for the order of checks). Returns the updated row.
 */
export async function applyTransition<S extends string, T extends string>(
  trx: Knex.Transaction,
  m: Machine<S, T>,
  name: T,
  id: number | string,
  op: Operator,
  opts: ApplyOptions = {},
): Promise<Row> {
  const t = m.transitions[name];
  if (!t.roles.includes(op.role)) {
    throw new ForbiddenError(
      `role ${op.role} may not ${name} a ${m.entity}`,
      `この操作（${m.entityJa}の${t.labelJa}）を行う権限がありません`,
    );
  }
  const row = await lockRow(trx, m, id, op);
  if (!t.from.includes(row.state as S)) {
    throw new ConflictError(
      `${m.entity} ${rowNumber(m, row)} is ${row.state}; "${name}" needs ${t.from.join(" or ")} (someone may have acted on it already)`,
      `${m.entityJa} ${rowNumber(m, row)} は「${m.stateJa[row.state as S] ?? row.state}」のため${t.labelJa}できません（他の担当者が先に処理した可能性があります）`,
    );
  }
  if (opts.expectedVersion !== undefined && opts.expectedVersion !== row.version) {
    throw new ConflictError(
      `${m.entity} ${rowNumber(m, row)} changed since it was shown (version ${row.version}, expected ${opts.expectedVersion})`,
      `${m.entityJa} ${rowNumber(m, row)} は表示後に更新されています。再読み込みしてください`,
    );
  }
  if (t.guard) await t.guard(row, op, trx);
  const [updated] = (await trx(m.table)
    .where({ id: row.id })
    .update({ ...opts.patch, state: t.to, version: row.version + 1, updated_at: trx.fn.now() })
    .returning("*")) as Row[];
  await appendAudit(trx, [{
    ...auditActor(op),
    action: t.event,
    objectType: m.entity,
    objectId: String(rowNumber(m, row)),
    details: { from: row.state, to: t.to, ...opts.details },
  }]);
  return updated;
}

/** The transitions of `m` that `op` could take on a row in `state` (for console buttons). */
export function availableTransitions<S extends string, T extends string>(m: Machine<S, T>, state: string, op: Operator): T[] {
  return (Object.keys(m.transitions) as T[]).filter((n) => {
    const t = m.transitions[n];
    return t.from.includes(state as S) && t.roles.includes(op.role);
  });
}

function rowNumber<S extends string, T extends string>(m: Machine<S, T>, row: Record<string, unknown>): string {
  return String((m.numberColumn && row[m.numberColumn]) || row.id);
}
