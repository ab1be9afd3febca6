/**
 * Role × route matrix over real HTTP: every route of the LRA, RA and IA consoles and the SSO
 * center's administration console (read from the
 * routers themselves, so a new route cannot escape the table), every role, allowed or 403 — and
 * cross-association access (an LRA operator of another association on this one's application,
 * document, batch and delivery) refused with 403. The policy below is written from the CP's
 * separation of duties, independently of the route code it checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDocument, decideApplication, recordIdentityCheck, submitApplication } from "../../src/pipeline/applications.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import type { OperatorRole } from "../../src/pipeline/operator.ts";
import { OPERATOR_ROLES } from "../../src/pipeline/operator.ts";
import type { RoleName } from "../../src/web/role.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../../src/web/console/client.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, DEMO_LICENCE_REGISTER, identityCheckInput, requiredUploads } from "../helpers/pipeline.ts";
import fs from "node:fs";

type Console = "lra" | "ra" | "ia" | "sso";
const CONSOLES: Console[] = ["lra", "ra", "ia", "sso"];
/** Where each console is mounted (the SSO center's administration console sits below /sso). */
const BASE: Record<Console, string> = { lra: "/lra", ra: "/ra", ia: "/ia", sso: "/sso/admin" };

/** Who may sign in to each console (the others are refused at sign-in). */
const SIGN_IN: Record<Console, OperatorRole[]> = {
  lra: ["lra_reviewer", "lra_manager", "auditor", "admin"],
  ra: ["ra_officer", "ra_approver", "auditor", "admin"],
  ia: ["ia_operator", "auditor", "admin"],
  sso: ["auditor", "admin"],
};

/** The policy: roles allowed on `method path` of `console`. Auditors read; admins manage operators only. */
function allowed(c: Console, method: string, path: string): OperatorRole[] {
  if (path === "/") return SIGN_IN[c];
  // SSO administration: administrators manage relying parties and links; auditors read.
  if (c === "sso") return method === "GET" && !path.endsWith("/new") ? ["admin", "auditor"] : ["admin"];
  const readers: Record<Exclude<Console, "sso">, OperatorRole[]> = {
    lra: ["lra_reviewer", "lra_manager", "auditor"],
    ra: ["ra_officer", "ra_approver", "auditor"],
    ia: ["ia_operator", "auditor"],
  };
  const writers: Record<Exclude<Console, "sso">, OperatorRole[]> = { lra: ["lra_reviewer", "lra_manager"], ra: ["ra_officer", "ra_approver"], ia: ["ia_operator"] };
  if (c === "lra" && method === "POST" && path === "/batches/:id/forward") return ["lra_manager"];
  // Second-person approvals: issuance and revocation requests; putting a failed revocation request
  // back in the IA's queue re-affirms an approval: the approver's too.
  if (c === "ra" && method === "POST" && /^\/(issuance-requests|revocations)\/:id\/approve$|^\/revocations\/:id\/retry$/.test(path)) return ["ra_approver"];
  // Bulk approval of issuance requests: each row is the same second-person approval (issue 12 §7).
  if (c === "ra" && method === "POST" && path === "/issuance-requests/approve") return ["ra_approver"];
  if (path.startsWith("/audit/")) return ["auditor"];
  // The LRA files revocation requests; deciding on them and the phone emergency path are the RA's.
  if (c === "lra" && /^\/revocations\/(emergency|:id\/(approve|reject|review|retry))$/.test(path)) return [];
  // Forms are for the people who fill them in (new records, the emergency form, renewal and card replacement).
  if (method !== "GET" || /\/(new|emergency|replace)$|^\/expiry\/renewal\//.test(path)) return writers[c];
  return readers[c];
}

interface RouteEntry { method: string; path: string }

/** Routes registered on a console router (string paths; sign-in routes and static files excluded). */
function routesOf(router: unknown): RouteEntry[] {
  const out: RouteEntry[] = [];
  const walk = (stack: { route?: { path: unknown; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) => {
    for (const layer of stack) {
      if (layer.route && typeof layer.route.path === "string") {
        for (const m of Object.keys(layer.route.methods)) out.push({ method: m.toUpperCase(), path: layer.route.path });
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack as typeof stack);
      }
    }
  };
  walk((router as { stack: Parameters<typeof walk>[0] }).stack);
  return out.filter((r) => !/^\/(login|logout|static)\b/.test(r.path) && r.method !== "HEAD");
}

/** The console router mounted inside a role's router (the SSO role: its administration console). */
function consoleRouterIn(router: unknown): unknown {
  const layer = (router as { stack: { handle?: { kit?: unknown } }[] }).stack.find((l) => l.handle?.kit);
  if (!layer) throw new Error("no console router inside");
  return layer.handle;
}

let t: TestIa;
let server: StartedServer;
const clients = new Map<string, ConsoleClient>();
let foreignReviewer: TestOperator;
let foreignManager: TestOperator;
const ids = {} as { application: number; document: number; batch: number };

async function signedIn(c: Console, role: OperatorRole): Promise<ConsoleClient> {
  const key = `${c}:${role}`;
  let client = clients.get(key);
  if (!client) {
    const op = await createTestOperator(t.ctx.db, role, { lraCode: "13-001" });
    client = new ConsoleClient(server.url, BASE[c]);
    await client.signIn(op.username, op.password, await op.nextCode());
    clients.set(key, client);
  }
  return client;
}

/** `path` with every :param replaced by `id`. */
const fill = (path: string, id: number | string) => path.replace(/:\w+/g, String(id));

beforeAll(async () => {
  t = await openTestIa("matrix");
  await runDemoCeremony(t.ctx, { actor: "test", role: "ia" });
  await importLicenceRegister(t.ctx.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  server = await startServer({ cfg: t.ctx.cfg, db: t.ctx.db, roles: ["lra", "ra", "ia", "sso"], port: 0 });
  // One application of association 13-001, reviewed and approved into its open batch.
  const reviewer = await createTestOperator(t.ctx.db, "lra_reviewer", { lraCode: "13-001" });
  const row = demoRegisterRows()[0];
  const app = await submitApplication(t.ctx.db, reviewer.operator, t.ctx.policies.hcRoles, applicationInputFor(row, 0));
  ids.application = Number(app.id);
  for (const u of requiredUploads("matrix")) ids.document = (await addDocument(t.ctx.db, reviewer.operator, ids.application, u)).id;
  await recordIdentityCheck(t.ctx.db, reviewer.operator, ids.application, identityCheckInput());
  await decideApplication(t.ctx.db, reviewer.operator, ids.application, "lra_approve");
  ids.batch = Number((await t.ctx.db("applications").where({ id: ids.application }).first("lra_batch_id")).lra_batch_id);
  foreignReviewer = await createTestOperator(t.ctx.db, "lra_reviewer", { lraCode: "27-001" });
  foreignManager = await createTestOperator(t.ctx.db, "lra_manager", { lraCode: "27-001" });
}, 180_000);
afterAll(async () => {
  await server?.close();
  await t?.cleanup();
});

describe("role × route matrix", () => {
  it("refuses sign-in to a console for roles that do not work there", async () => {
    for (const c of CONSOLES) {
      for (const role of OPERATOR_ROLES.filter((r) => !SIGN_IN[c].includes(r))) {
        const op = await createTestOperator(t.ctx.db, role, { lraCode: "13-001" });
        const r = await new ConsoleClient(server.url, BASE[c]).tryLogin(op.username, op.password, await op.nextCode());
        expect(r.status, `${role} signing in to /${c}`).toBe(403);
      }
    }
  }, 300_000);

  for (const c of CONSOLES) {
    it(`/${c}: every route, every role that signs in: allowed or 403`, async () => {
      const routes = routesOf(c === "sso" ? consoleRouterIn(server.routers.sso) : server.routers[c as RoleName]);
      expect(routes.length).toBeGreaterThan(5);
      const failures: string[] = [];
      for (const role of SIGN_IN[c]) {
        const client = await signedIn(c, role);
        for (const r of routes) {
          // A nonexistent id: role checks come before any lookup, so only the role decides 403.
          const res = await client.request(r.method, fill(r.path, 999999), r.method === "GET" ? {} : { json: {} });
          const ok = allowed(c, r.method, r.path).includes(role);
          if (ok ? res.status === 403 : res.status !== 403) failures.push(`${role} ${r.method} ${BASE[c]}${r.path}: ${res.status} (expected ${ok ? "allowed" : "403"})`);
        }
      }
      expect(failures).toEqual([]);
    }, 300_000);
  }

  it("keeps one association's applications, documents and batches from another's operators (403)", async () => {
    const reviewer = new ConsoleClient(server.url, "/lra");
    await reviewer.signIn(foreignReviewer.username, foreignReviewer.password, await foreignReviewer.nextCode());
    const manager = new ConsoleClient(server.url, "/lra");
    await manager.signIn(foreignManager.username, foreignManager.password, await foreignManager.nextCode());
    const list = (await reviewer.getJson("/applications")).json().applications as { id: number }[];
    expect(list.map((a) => a.id)).not.toContain(ids.application);
    const attempts: [ConsoleClient, string, string, unknown?][] = [
      [reviewer, "GET", `/applications/${ids.application}`],
      [reviewer, "GET", `/documents/${ids.document}`],
      [reviewer, "POST", `/applications/${ids.application}/identity-check`, identityCheckInput()],
      [reviewer, "POST", `/applications/${ids.application}/decision`, { decision: "lra_reject", reason: "x" }],
      [reviewer, "GET", `/applications/${ids.application}/handover`],
      [reviewer, "POST", `/applications/${ids.application}/handover`, {}],
      [reviewer, "POST", `/applications/${ids.application}/receipt`, {}],
      [manager, "POST", `/batches/${ids.batch}/forward`, {}],
    ];
    for (const [client, method, path, json] of attempts) {
      const res = await client.request(method, path, json === undefined ? {} : { json });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    // Nothing the matrix or the other association sent changed the application.
    const app = await t.ctx.db("applications").where({ id: ids.application }).first("state", "lra_batch_id");
    expect(app.state).toBe("lra_approved");
  }, 120_000);
});
