/**
 * Operators for tests (and for scripts driving the consoles over HTTP): create regional
 * associations and operators through the real service, and compute TOTP codes that sign-in
 * accepts — each code from a time step later than the last accepted one (replay protection).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { hasOperatorSecrets, useOperatorSecrets } from "../../src/operators/operator-secrets.ts";
import { addLra, addOperator, totpCodeAt } from "../../src/operators/operators.ts";
import type { Operator, OperatorRole } from "../../src/pipeline/operator.ts";
import type { Db } from "../../src/store/db.ts";

const TEST_ACTOR = { actor: "test", role: "admin" };
const PERIOD_MS = 30_000;

export interface TestOperator {
  operator: Operator;
  username: string;
  password: string;
  totpSecret: string;
  /**
   * A TOTP code sign-in will accept now: from the earliest step in the ±1 window after the last
   * accepted step (read from the database). Waits for the next 30 s step when the window is used up.
   */
  nextCode(): Promise<string>;
  /** The code of the current time step (no look at the database; may be a replay). */
  currentCode(): Promise<string>;
}

/** Creates the regional association `code` unless it exists; returns its id. */
export async function ensureTestLra(db: Db, code = "13-001", name = "東京都テスト医師会"): Promise<number> {
  const row = await db("lras").where({ code }).first("id");
  if (row) return Number(row.id);
  return (await addLra(db, { code, name }, TEST_ACTOR)).id;
}

let counter = 0;

/**
 * Opens the operators' sealing key for `db` unless a console (or an earlier call) did: on the
 * SoftHSM configuration this process already uses (an IA test's $HPKI_HOME), else in a fresh
 * temporary $HPKI_HOME. Kept open for the rest of the test process.
 */
export async function ensureTestOperatorSecrets(db: Db): Promise<void> {
  if (hasOperatorSecrets(db)) return;
  const conf = process.env.SOFTHSM2_CONF;
  const home = conf && path.basename(conf) === "softhsm2.conf" ? path.dirname(path.dirname(conf)) : fs.mkdtempSync(path.join(os.tmpdir(), "hpki-ops-"));
  await useOperatorSecrets(loadConfig({ HPKI_HOME: home }), db);
}

/**
 * Creates an operator with role `role` (LRA roles get association `lraCode`, created if missing,
 * default "13-001"). Username defaults to "<role>-<n>"; the password is generated.
 */
export async function createTestOperator(
  db: Db,
  role: OperatorRole,
  opts: { username?: string; lraCode?: string; displayName?: string } = {},
): Promise<TestOperator> {
  const lra = role === "lra_reviewer" || role === "lra_manager";
  const lraCode = lra ? (opts.lraCode ?? "13-001") : undefined;
  if (lraCode) await ensureTestLra(db, lraCode);
  const username = opts.username ?? `${role.replace("_", "-")}-${++counter}-${process.pid}`;
  await ensureTestOperatorSecrets(db);
  const r = await addOperator(db, { username, role, lraCode, displayName: opts.displayName }, TEST_ACTOR);
  return {
    operator: r.operator,
    username: r.operator.username,
    password: r.password,
    totpSecret: r.totpSecret,
    nextCode: () => nextTotpCode(db, r.operator.id, r.totpSecret),
    currentCode: () => totpCodeAt(r.totpSecret),
  };
}

/** See TestOperator.nextCode. */
export async function nextTotpCode(db: Db, operatorId: number, secret: string): Promise<string> {
  const row = await db("operators").where({ id: operatorId }).first("totp_last_counter");
  const last = row?.totp_last_counter == null ? -Infinity : Number(row.totp_last_counter);
  for (;;) {
    const now = Date.now();
    const current = Math.floor(now / PERIOD_MS);
    const step = Math.max(last + 1, current - 1);
    // Keep a second of margin at the window's edges so the server sees the same window.
    const msIntoStep = now - current * PERIOD_MS;
    const usable = step <= current + 1 && !(step === current - 1 && msIntoStep > PERIOD_MS - 1500);
    if (usable) return totpCodeAt(secret, new Date(step * PERIOD_MS + 1000));
    await new Promise((r) => setTimeout(r, PERIOD_MS - msIntoStep + 50));
  }
}
