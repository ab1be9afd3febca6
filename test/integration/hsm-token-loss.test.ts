/**
 * Issue 10 §3: the CA and OCSP token directories moved away and back while a real `hpki serve
 * --role ia,repo` runs. While away: CRL generation answers 503 with a clear message, live OCSP
 * answers tryLater, /healthz says degraded. Back: both work again without a restart, /healthz
 * says ok, and each outage is audited once (not per failed request); the audit chain is intact.
 * The time to recover is printed (the figure is `npm run bench -- faults-hsm`; no timed assertion).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { msUntil, sleep, startFaultServer, tokenDirectories, type FaultServer } from "../helpers/hsm-faults.ts";

const OCSP_SUCCESSFUL = 0;
const OCSP_TRY_LATER = 3;

describe("HSM token directories moved away and back under hpki serve", { timeout: 300_000 }, () => {
  let cli: CliHarness;
  let server: FaultServer | undefined;
  beforeAll(async () => {
    cli = await openCliHarness("hpki-hsm-loss-");
    server = await startFaultServer(cli);
  });
  afterAll(async () => {
    await server?.stop();
    await cli?.cleanup();
  });

  it("answers 503 / tryLater while the tokens are away, recovers without a restart, audits each transition once", async () => {
    const s = server!;
    const cfg = loadConfig({ HPKI_HOME: cli.home });
    expect((await s.generateCrl()).status).toBe(200);
    expect(await s.liveOcsp()).toBe(OCSP_SUCCESSFUL);
    expect(await s.health()).toMatchObject({ status: "ok" });

    const dirs = tokenDirectories(cli.home);
    dirs.moveAway();
    // Several requests while away: each answers (no hang), none is a 500 / internalError.
    for (let i = 0; i < 5; i++) {
      const crl = await s.generateCrl();
      expect(crl.status, JSON.stringify(crl.body)).toBe(503);
      expect(crl.body).toMatchObject({ code: "hsm_unavailable" });
      expect(crl.retryAfter).toBe("1");
      expect(crl.body.error).toContain(`HSM token "${cfg.caTokenLabel}" is unavailable`);
      expect(crl.body.errorJa).toContain("利用できません");
      expect(await s.liveOcsp()).toBe(OCSP_TRY_LATER);
      await sleep(300);
    }
    const degraded = await s.health();
    expect(degraded.status).toBe("degraded");
    const byToken = new Map(degraded.hsm.map((h) => [h.token, h]));
    expect(byToken.get(cfg.caTokenLabel)).toMatchObject({ state: "degraded", lastError: expect.any(String) });
    expect(byToken.get(cfg.ocspTokenLabel)).toMatchObject({ state: "degraded" });

    const back = Date.now();
    dirs.moveBack();
    // No request needed: the background probe brings the tokens back and /healthz says so.
    const healthyMs = await msUntil(async () => (await s.health()).status === "ok", back, "health ok again");
    const crlMs = await msUntil(async () => (await s.generateCrl()).status === 200, back, "CRL generation");
    const ocspMs = await msUntil(async () => (await s.liveOcsp()) === OCSP_SUCCESSFUL, back, "live OCSP");
    process.stdout.write(`time to recover after the tokens returned: /healthz ok ${healthyMs} ms, CRL ${crlMs} ms, live OCSP ${ocspMs} ms\n`);
    expect((await s.health()).hsm.every((h) => h.state === "ok")).toBe(true);

    // A second outage, to show the state machine goes round again.
    dirs.moveAway();
    expect((await s.generateCrl()).status).toBe(503);
    dirs.moveBack();
    await msUntil(async () => (await s.generateCrl()).status === 200, Date.now(), "CRL generation after the 2nd outage");

    await s.stop();
    server = undefined;
    const db = await openDatabase(loadConfig({ HPKI_HOME: cli.home, ...(cli.dbUrl ? { DATABASE_URL: cli.dbUrl } : {}) }));
    try {
      const rows = await db("audit_log").whereIn("action", ["hsm.token-lost", "hsm.token-restored"]).orderBy("seq").select("role", "action", "object_id", "details");
      const count = (role: string, token: string, action: string) => rows.filter((r) => r.role === role && r.object_id === token && r.action === action).length;
      // Two outages of the CA token seen by the IA: two "lost", two "restored" — not one per failed request.
      expect(count("ia", cfg.caTokenLabel, "hsm.token-lost")).toBe(2);
      expect(count("ia", cfg.caTokenLabel, "hsm.token-restored")).toBe(2);
      // The repository's live OCSP met the first outage (the second was over before it asked).
      expect(count("repo", cfg.ocspTokenLabel, "hsm.token-lost")).toBeGreaterThanOrEqual(1);
      expect(count("repo", cfg.ocspTokenLabel, "hsm.token-restored")).toBe(count("repo", cfg.ocspTokenLabel, "hsm.token-lost"));
      const restored = rows.find((r) => r.action === "hsm.token-restored")!;
      expect(restored.details).toMatchObject({ downMs: expect.any(Number), error: expect.any(String) });
      expect((await verifyAuditChain(db)).ok).toBe(true);
    } finally {
      await db.destroy();
    }
  });
});
