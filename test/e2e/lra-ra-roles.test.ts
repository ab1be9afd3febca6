/**
 * Role × route matrix of the LRA and RA consoles over HTTP: every route of both consoles, asked
 * by every role (and by an LRA operator of another association), is either allowed (any answer
 * but 401/403: bodies here are empty, so allowed writes end in 400/404/409) or refused with 403.
 * Roles that cannot sign in to a console get 401 everywhere in it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperatorRole } from "../../src/pipeline/operator.ts";
import { ConsoleClient, startConsoleTestServer, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, samplePdf } from "../helpers/pipeline.ts";

type Who = "reviewer" | "manager" | "reviewerB" | "officer" | "approver" | "ia" | "auditor" | "admin";
const ROLE: Record<Who, [OperatorRole, string?]> = {
  reviewer: ["lra_reviewer", "13-001"], manager: ["lra_manager", "13-001"], reviewerB: ["lra_reviewer", "27-001"],
  officer: ["ra_officer"], approver: ["ra_approver"], ia: ["ia_operator"], auditor: ["auditor"], admin: ["admin"],
};
const WHO = Object.keys(ROLE) as Who[];

let t: ConsoleTestServer;
const clients = { lra: {} as Record<Who, ConsoleClient>, ra: {} as Record<Who, ConsoleClient> };
let appId = 0;
let docId = 0;

beforeAll(async () => {
  t = await startConsoleTestServer();
  for (const w of WHO) {
    for (const c of ["lra", "ra"] as const) {
      const [role, lraCode] = ROLE[w];
      const op = await createTestOperator(t.db, role, { lraCode });
      const allowed = (c === "lra" ? ["lra_reviewer", "lra_manager", "auditor", "admin"] : ["ra_officer", "ra_approver", "auditor", "admin"]).includes(role);
      if (allowed) clients[c][w] = await t.signIn(`/${c}`, op);
      else {
        const k = new ConsoleClient(t.server.url, `/${c}`);
        expect((await k.tryLogin(op.username, op.password, await op.nextCode())).status).toBe(403);
        clients[c][w] = k;
      }
    }
  }
  const rows = demoRegisterRows();
  const created = await clients.lra.reviewer.postJson("/applications", applicationInputFor(rows[0], 0));
  expect(created.status, created.text).toBe(201);
  appId = created.json().application.id;
  const d = await clients.lra.reviewer.upload(`/applications/${appId}/documents`, { kind: "other" }, { filename: "x.pdf", bytes: samplePdf("matrix") });
  expect(d.status, d.text).toBe(201);
  docId = d.json().document.id;
});

afterAll(async () => t?.cleanup());

type Route = [method: "GET" | "POST", path: () => string, allowed: Who[]];
const LRA_READ: Who[] = ["reviewer", "manager", "auditor"];
const LRA_DESK: Who[] = ["reviewer", "manager"];
const RA_READ: Who[] = ["officer", "approver", "auditor"];
const RA_DESK: Who[] = ["officer", "approver"];
const app = () => `/applications/${appId}`;
const NONE = 999_999;

const ROUTES: Record<"lra" | "ra", Route[]> = {
  lra: [
    // LRA B may use its own console; only association A's application and document are refused.
    ["GET", () => "/applications", [...LRA_READ, "reviewerB"]],
    ["GET", () => "/applications/new", [...LRA_DESK, "reviewerB"]],
    ["POST", () => "/applications", [...LRA_DESK, "reviewerB"]],
    ["GET", app, LRA_READ],
    ["POST", () => `${app()}/documents`, LRA_DESK],
    ["GET", () => `/documents/${docId}`, LRA_READ],
    ["POST", () => `${app()}/identity-check`, LRA_DESK],
    ["POST", () => `${app()}/decision`, LRA_DESK],
    ["GET", () => "/batches", [...LRA_READ, "reviewerB"]],
    ["POST", () => `/batches/${NONE}/forward`, ["manager"]],
    ["GET", () => "/deliveries", [...LRA_READ, "reviewerB"]],
    ["POST", () => `/deliveries/${NONE}/receive`, [...LRA_DESK, "reviewerB"]],
    ["GET", () => `${app()}/handover`, LRA_READ],
    ["POST", () => `${app()}/handover`, LRA_DESK],
    ["POST", () => `${app()}/receipt`, LRA_DESK],
  ],
  ra: [
    ["GET", () => "/applications", RA_READ],
    ["GET", () => "/applications/new", RA_DESK],
    ["POST", () => "/applications", RA_DESK],
    ["GET", app, RA_READ],
    ["POST", () => `${app()}/documents`, RA_DESK],
    ["GET", () => `/documents/${docId}`, RA_READ],
    ["POST", () => `${app()}/identity-check`, RA_DESK],
    ["POST", () => `${app()}/decision`, RA_DESK],
    ["GET", () => "/batches", RA_READ],
    ["POST", () => `/batches/${NONE}/receive`, RA_DESK],
    ["POST", () => `${app()}/issuance-request`, RA_DESK],
    ["GET", () => "/issuance-requests", RA_READ],
    ["POST", () => `/issuance-requests/${NONE}/approve`, ["approver"]],
    ["GET", () => "/receipts", RA_READ],
    ["POST", () => `/receipts/${NONE}/review`, RA_DESK],
    ["GET", () => "/deliveries", RA_READ],
    ["POST", () => `/deliveries/${NONE}/receive`, RA_DESK],
    ["GET", () => `${app()}/handover`, RA_READ],
    ["POST", () => `${app()}/handover`, RA_DESK],
    ["POST", () => `${app()}/receipt`, RA_DESK],
  ],
};

describe("role × route matrix", () => {
  for (const c of ["lra", "ra"] as const) {
    it(`/${c}: every route answers each role as allowed or 403 (401 for roles that cannot sign in)`, async () => {
      const table: string[] = [];
      for (const [method, path, allowed] of ROUTES[c]) {
        for (const w of WHO) {
          const client = clients[c][w];
          const r = method === "GET" ? await client.getJson(path()) : await client.postJson(path(), {});
          const signsIn = c === "lra" ? ["reviewer", "manager", "reviewerB", "auditor", "admin"].includes(w) : ["officer", "approver", "auditor", "admin"].includes(w);
          const expected = !signsIn ? "401" : allowed.includes(w) ? "allowed" : "403";
          const got = r.status === 401 ? "401" : r.status === 403 ? "403" : "allowed";
          if (got !== expected) table.push(`${method} /${c}${path()} as ${w}: expected ${expected}, got ${r.status} ${r.text.slice(0, 120)}`);
        }
      }
      expect(table).toEqual([]);
    });
  }

  it("leaves the application as it was (nothing the matrix sent changed it)", async () => {
    const row = await t.db("applications").where({ id: appId }).first("state", "identity_check");
    expect(row).toMatchObject({ state: "received", identity_check: null });
  });
});
