/**
 * The IA runtime on throwaway state for tests and benches: a temp $HPKI_HOME (SoftHSM tokens,
 * repo/), a scratch directory, a fresh database (see db.ts) and, on request, the demo hierarchy.
 */
import fs from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { issueOntoCard } from "../../src/ia/cards.ts";
import { readCeremonyFile } from "../../src/ia/ceremony-file.ts";
import { runCeremony, type CeremonyOutcome } from "../../src/ia/ceremony.ts";
import { openIaContext, type IaContext } from "../../src/ia/context.ts";
import type { Actor } from "../../src/audit/actor.ts";
import { parseSubscriberSubject } from "../../src/pki/subject.ts";
import { POLICIES_DIR } from "../../src/policies.ts";
import { openTestDatabase, type TestDb } from "./db.ts";
import { tempDir } from "./openssl.ts";

export const DEMO_CEREMONY = path.join(POLICIES_DIR, "ceremony.demo.yaml");

/** Runs policies/ceremony.demo.yaml on `ctx` (root + sign, auth-person, auth-org CAs). */
export function runDemoCeremony(ctx: IaContext, by: Actor): Promise<CeremonyOutcome[]> {
  return runCeremony(
    { db: ctx.db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: ctx.cfg.repoDir },
    readCeremonyFile(DEMO_CEREMONY),
    by,
  );
}

/**
 * A blank SoftHSM card with an auth-person certificate issued onto it for `subject` (the input
 * parseSubscriberSubject takes: hcRole, subscriberId, name, organization …); needs the demo CAs.
 */
export async function issueAuthCard(ctx: IaContext, subject: Record<string, unknown>, by: Actor): Promise<{ label: string; pin: string }> {
  const [blank] = await ctx.cards.provisionBlankCards(1);
  const profile = ctx.policies.profiles.get("auth-person")!;
  const parsed = parseSubscriberSubject(subject, profile, ctx.policies.hcRoles);
  await issueOntoCard(ctx.db, ctx.cards, ctx.issuance, { cardLabel: blank.label, pin: blank.userPin, profile: "auth-person", subject: parsed }, by);
  return { label: blank.label, pin: blank.userPin };
}

export interface TestIa {
  ctx: IaContext;
  home: string;
  /** Scratch directory for files a test writes (PEMs, CSRs, CRLs). */
  work: string;
  /** URL of the fresh Postgres database (for child processes). */
  databaseUrl: string | undefined;
  /** Path of a CA's PEM in $HPKI_HOME/repo. */
  pem(caName: string): string;
  /** Row count of `table`. */
  count(table: string): Promise<number>;
  cleanup(): Promise<void>;
}

/** Opens the IA on fresh state; `prefix` names the temp directories. Call cleanup() in afterAll. */
export async function openTestIa(prefix: string): Promise<TestIa> {
  const home = tempDir(`${prefix}-home-`);
  const work = tempDir(`${prefix}-work-`);
  const t: TestDb = await openTestDatabase();
  const ctx = await openIaContext(loadConfig({ HPKI_HOME: home }), { db: t.db, poolSize: 4 });
  return {
    ctx,
    home,
    work,
    databaseUrl: t.url,
    pem: (caName) => path.join(ctx.cfg.repoDir, `${caName}.pem`),
    count: async (table) => Number((await ctx.db(table).count({ n: "*" }).first())?.n),
    cleanup: async () => {
      await ctx.close();
      await t.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
}
