/**
 * The IA role server (`hpki serve --role ia`, DESIGN §1): the issuing authority's console — the
 * issuance queue with background issuance jobs, deliveries with their packing lists and receipt
 * forms, CAs and CRLs — on the console foundation (src/web/console). It opens the IA runtime (HSM
 * sessions, card station, policies) on the shared database and runs the IA's background work in
 * process (DESIGN §9, embedded default): the revocation worker (approved revocation requests
 * executed, src/ia/revocation-worker.ts), the status scheduler (CRLs daily and within one poll
 * of a revocation, OCSP responders and pre-signed responses, src/ia/crl-scheduler.ts) and the
 * expiry notices (src/notices). All stop when the server closes, after any running issuance job.
 */
import { auditTokenTransitions } from "../audit/hsm-transitions.ts";
import { createMailer } from "../notices/mailer.ts";
import { startExpiryNoticeLoop } from "../notices/expiry.ts";
import { loadOcspPolicy } from "../ocsp/responders.ts";
import type { RoleDeps, RoleServer } from "../web/role.ts";
import { consoleRoleServer, createConsoleRouter } from "../web/console/router.ts";
import { roleLogger } from "../web/role-log.ts";
import { openIaContext } from "./context.ts";
import { CrlScheduler } from "./crl-scheduler.ts";
import { loadCrlPolicy } from "./crl-generation.ts";
import { IssuanceJobRunner } from "./issuance-jobs.ts";
import { startRevocationWorker } from "./revocation-worker.ts";
import { refreshStatusAfterRevocation } from "./status-after-revocation.ts";
import { mountIaRoutes } from "./routes/index.ts";
import { migrateSoPinSlips } from "./card-pins.ts";

/**
 * Creates the IA console: sign-in for ia_operator (plus auditor, read-only, and admin, who may
 * see no IA page), routes mounted at /ia. @throws when the HSM, the CA token's PIN, the policies
 * or the CRL policy cannot be loaded (nothing is left open).
 */
export async function createIaServer(deps: RoleDeps): Promise<RoleServer> {
  const ctx = await openIaContext(deps.cfg, { db: deps.db });
  try {
    const crlPolicy = loadCrlPolicy();
    const log = roleLogger(deps, "hpki-ia");
    const jobs = new IssuanceJobRunner(ctx, { log });
    // SO PIN slip files of earlier versions: sealed under the IA token's key and deleted (issue 13 §2).
    const slips = await migrateSoPinSlips(ctx, { actor: "system:ia-start", role: "ia" });
    if (slips.sealed.length || slips.unknown.length) log.info({ sealed: slips.sealed.length, unknown: slips.unknown }, "SO PIN slips sealed");
    const router = createConsoleRouter(deps, {
      console: "ia",
      roles: ["ia_operator"],
      logger: log,
      mount: (r, kit) => mountIaRoutes(r, kit, { ctx, jobs, crlPolicy }),
    });
    const server = consoleRoleServer("ia", router);
    const hsmAuditFailed = (err: unknown) => log.error({ err }, "audit of an HSM token transition failed");
    auditTokenTransitions(ctx.db, ctx.pool.health, "ia", hsmAuditFailed);
    auditTokenTransitions(ctx.db, ctx.ocspKeys().pool.health, "ia", hsmAuditFailed);
    const revocations = startRevocationWorker(ctx, {
      onRun: (r) => {
        if (r.executed.length || r.failed.length) log.info({ executed: r.executed.length, failed: r.failed.length }, "revocation requests executed");
      },
      onError: (err) => log.error({ err }, "revocation worker run failed"),
      afterRevocations: async (changed) => {
        const done = await refreshStatusAfterRevocation(
          { db: ctx.db, keys: ctx.keys, crlPolicy, ocsp: () => ({ keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() }) },
          changed, { actor: "ia-revocation-worker", role: "ia" });
        for (const d of done) log.info({ caName: d.caName, ocsp: d.ocsp, crl: d.crl }, "status refreshed after revocations");
      },
    });
    const status = new CrlScheduler({
      db: ctx.db, keys: ctx.keys, crlPolicy, ocsp: { keys: ctx.ocspKeys().keys, policy: loadOcspPolicy() },
      by: { actor: "ia-scheduler", role: "ia" },
      onError: (err, what) => log.error({ err, what }, "status scheduler"),
    });
    status.start({ unref: true });
    const notices = startExpiryNoticeLoop(ctx.db, createMailer(deps.cfg), {
      onRun: (r) => {
        if (r.sent.length || r.failed.length) log.info({ sent: r.sent.length, failed: r.failed.length }, "expiry notices");
      },
      onError: (err) => log.error({ err }, "expiry notices failed"),
    });
    return {
      ...server,
      health: () => ({ hsm: ctx.hsmHealth() }),
      async close() {
        await revocations.stop();
        await status.stop();
        await notices.stop();
        await jobs.idle();
        await server.close();
        await ctx.close();
      },
    };
  } catch (e) {
    await ctx.close();
    throw e;
  }
}
