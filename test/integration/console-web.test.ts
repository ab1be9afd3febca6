/**
 * The console foundation over real HTTP (startServer, port 0) on a fresh PostgreSQL
 * database: sign-in, sessions, CSRF, roles, headers, errors, i18n.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import multer from "multer";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { ConflictError, ValidationError } from "../../src/pipeline/errors.ts";
import { setOperatorDisabled } from "../../src/operators/operators.ts";
import { consoleRoleServer, createConsoleRouter, type ConsoleRouterOptions } from "../../src/web/console/router.ts";
import type { RoleName } from "../../src/web/role.ts";
import { ROLE_FACTORIES } from "../../src/cli/role-factories.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";

const SECRET = "test-console-secret-0123456789abcdef";
let t: TestDb;
let server: StartedServer;
let home: string;
const saved: Partial<typeof ROLE_FACTORIES> = {};
let reviewer: TestOperator;
let officer: TestOperator;
let auditor: TestOperator;

function consoleFactory(name: "lra" | "ra" | "ia", roles: ConsoleRouterOptions["roles"], extra: Partial<ConsoleRouterOptions> = {}) {
  return async () => async (deps: Parameters<typeof createConsoleRouter>[0]) =>
    consoleRoleServer(
      name,
      createConsoleRouter(deps, {
        console: name,
        roles,
        sessionSecret: SECRET,
        logger: pino({ level: "silent" }),
        ...extra,
        mount(router, kit) {
          kit.addNav({ path: "/probe", label: "Probe", labelJa: "確認", roles: ["lra_reviewer"] });
          router.get("/probe", kit.requireRole("lra_reviewer", "lra_manager"), (req, res) => {
            kit.render(res, "errors/error", { status: 200, heading: "probe", message: `hello ${kit.operator(req).username}` });
          });
          router.post("/echo", (req, res) => {
            kit.flash(req, "success", "Saved.", "保存しました。");
            res.json({ ok: true, body: req.body });
          });
          router.post("/form", (req, res) => {
            kit.formView(res, "errors/error", { status: 400, heading: "form" });
            throw new ValidationError([{ field: "nameKanji", message: "is required", messageJa: "必須項目です。" }]);
          });
          router.post("/conflict", () => {
            throw new ConflictError("already approved by another officer", "他の担当者が既に承認しています。");
          });
          router.get("/boom", () => {
            throw new Error("secret internal detail");
          });
          const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: 1024 } });
          router.post("/upload", upload.single("file"), (req, res) => {
            res.json({ size: req.file?.size, note: (req.body as { note?: string }).note });
          });
        },
      }),
    );
}

beforeAll(async () => {
  t = await openTestDatabase();
  home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-console-"));
  for (const r of ["lra", "ra", "ia"] as const) saved[r] = ROLE_FACTORIES[r];
  ROLE_FACTORIES.lra = consoleFactory("lra", ["lra_reviewer", "lra_manager"]);
  ROLE_FACTORIES.ra = consoleFactory("ra", ["ra_officer", "ra_approver"]);
  ROLE_FACTORIES.ia = consoleFactory("ia", ["ia_operator"], { loginRateLimit: { windowMs: 60_000, limit: 3 } });
  server = await startServer({ cfg: loadConfig({ HPKI_HOME: home }), db: t.db, roles: ["lra", "ra", "ia"] as RoleName[], port: 0 });
  reviewer = await createTestOperator(t.db, "lra_reviewer", { displayName: "審査 花子" });
  officer = await createTestOperator(t.db, "ra_officer");
  auditor = await createTestOperator(t.db, "auditor");
});

afterAll(async () => {
  await server?.close();
  for (const r of ["lra", "ra", "ia"] as const) {
    if (saved[r]) ROLE_FACTORIES[r] = saved[r];
    else delete ROLE_FACTORIES[r];
  }
  await t?.cleanup();
  fs.rmSync(home, { recursive: true, force: true });
});

const origin = () => server.url;

describe("console sign-in", () => {
  it("serves the sign-in page with strict security headers and a cached stylesheet", async () => {
    const c = new ConsoleClient(origin(), "/lra");
    const r = await c.get("/login", { accept: "html" });
    expect(r.status).toBe(200);
    expect(r.text).toContain("ログイン");
    expect(r.text).toContain('name="_csrf"');
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(r.headers.get("referrer-policy")).toBe("no-referrer");
    expect(r.headers.get("x-powered-by")).toBeNull();
    expect(r.headers.get("cache-control")).toBe("no-store");
    const sid = r.setCookies.find((s) => s.startsWith("hpki_lra_sid="))!;
    expect(sid).toMatch(/HttpOnly/i);
    expect(sid).toMatch(/SameSite=Lax/i);
    expect(sid).toMatch(/Path=\/lra/);
    expect(sid).not.toMatch(/Secure/); // http public URL
    // Handlebars escapes "=" in attributes as &#x3D; (the browser decodes it).
    const css = /href="(\/lra\/static\/console\.css\?v&#x3D;[0-9a-f]{12})"/.exec(r.text)![1].replace("&#x3D;", "=");
    const s = await fetch(`${origin()}${css}`);
    expect(s.status).toBe(200);
    expect(s.headers.get("content-type")).toMatch(/text\/css/);
    expect(s.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(s.headers.get("etag")).toBeTruthy();
    expect(s.headers.get("set-cookie")).toBeNull();
  });

  it("marks cookies Secure and sends HSTS when the public URL is https", async () => {
    const tls = await startServer({ cfg: loadConfig({ HPKI_HOME: home }), db: t.db, roles: ["lra"], port: 0, publicUrl: "https://console.example.jp" });
    try {
      const r = await fetch(`http://127.0.0.1:${tls.port}/lra/login`, { headers: { "x-forwarded-proto": "https" } });
      expect(r.status).toBe(200);
      const cookies = r.headers.getSetCookie();
      expect(cookies.find((c) => c.startsWith("hpki_lra_sid="))).toMatch(/; Secure/);
      expect(cookies.find((c) => c.startsWith("hpki_lra_csrf="))).toMatch(/; Secure/);
      expect(r.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
      expect(r.headers.get("content-security-policy")).toContain("upgrade-insecure-requests");
    } finally {
      await tls.close();
    }
  });

  it("signs in with password + TOTP (HTML form), shows who is signed in, and changes the session id", async () => {
    const c = new ConsoleClient(origin(), "/lra");
    await c.get("/login", { accept: "html" });
    const before = c.cookies.get("hpki_lra_sid");
    expect(before).toBeTruthy();
    const r = await c.post("/login", { accept: "html", form: { username: reviewer.username, password: reviewer.password, totp: await reviewer.nextCode(), next: "/lra/probe" } });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/lra/probe");
    const after = c.cookies.get("hpki_lra_sid");
    expect(after).toBeTruthy();
    expect(after).not.toBe(before);
    const homePage = await c.get("/", { accept: "html" });
    expect(homePage.status).toBe(200);
    expect(homePage.text).toContain("審査 花子");
    expect(homePage.text).toContain("地域受付審査局 審査担当");
    expect(homePage.text).toContain("東京都テスト医師会（13-001）");
    expect(homePage.text).toContain('href="/lra/probe"'); // nav slot filled by the route module
    expect((await c.get("/probe", { accept: "html" })).text).toContain(`hello ${reviewer.username}`);
    // The pre-login session id is dead: a client holding it is anonymous (session fixation).
    const fixated = new ConsoleClient(origin(), "/lra");
    fixated.cookies.set("hpki_lra_sid", before!);
    expect((await fixated.getJson("/")).status).toBe(401);
    // English on request, remembered in a cookie.
    const en = await c.get("/?lang=en", { accept: "html" });
    expect(en.text).toContain("LRA reviewer");
    expect(en.setCookies.some((s) => s.startsWith("hpki_lang=en"))).toBe(true);
    expect((await c.get("/", { accept: "html" })).text).toContain("Sign out");
  });

  it("refuses a wrong password, a wrong code and a replayed code with the same message", async () => {
    const c = new ConsoleClient(origin(), "/ra");
    const code = await officer.nextCode();
    const ok = await c.tryLogin(officer.username, officer.password, code);
    expect(ok.status).toBe(200);
    expect(ok.json().operator).toMatchObject({ username: officer.username, role: "ra_officer" });
    const other = new ConsoleClient(origin(), "/ra");
    const replay = await other.tryLogin(officer.username, officer.password, code);
    const wrongPw = await other.tryLogin(officer.username, "wrong-password!!", await officer.nextCode());
    const wrongCode = await other.tryLogin(officer.username, officer.password, "000000");
    for (const r of [replay, wrongPw, wrongCode]) {
      expect(r.status).toBe(401);
      expect(r.json()).toEqual({ error: replay.json().error, errorJa: replay.json().errorJa, code: "unauthenticated" });
    }
    expect(replay.json().errorJa).toContain("ログインできませんでした");
    // HTML: the form comes back with the message and the username kept.
    const html = new ConsoleClient(origin(), "/ra");
    await html.get("/login", { accept: "html" });
    const page = await html.post("/login", { accept: "html", form: { username: officer.username, password: "nope-nope-nope", totp: "123456" } });
    expect(page.status).toBe(401);
    expect(page.text).toContain("ログインできませんでした");
    expect(page.text).toContain(`value="${officer.username}"`);
  });

  it("delays this address after repeated failures (429, Retry-After) without locking the account", async () => {
    const victim = await createTestOperator(t.db, "ra_approver");
    const c = new ConsoleClient(origin(), "/ra");
    // The first 3 failures are free; from the 4th the delay doubles (1 s, 2 s, 4 s, 8 s). On a busy
    // machine one attempt can outlast a short delay, so fail 7 times (waiting out each delay as a
    // user would) and sign in right after the 8 s delay began.
    let counted = 0;
    let refused = 0;
    while (counted < 7) {
      const wrong = await c.tryLogin(victim.username, "wrong-password!!", "123456");
      if (wrong.status === 429) {
        refused++;
        await new Promise((done) => setTimeout(done, Number(wrong.headers.get("retry-after")) * 1000));
      } else {
        expect(wrong.status).toBe(401);
        counted++;
      }
    }
    expect(refused).toBeLessThan(4);
    const r = await c.tryLogin(victim.username, victim.password, await victim.nextCode());
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(r.json()).toMatchObject({ code: "login_throttled", errorJa: expect.stringContaining("秒") });
    expect((await t.db("operators").where({ id: victim.operator.id }).first("locked_until")).locked_until).toBeNull();
  });

  it("rate-limits POST /login per address", async () => {
    const c = new ConsoleClient(origin(), "/ia");
    for (let i = 0; i < 3; i++) expect((await c.tryLogin("nobody", "x".repeat(12), "123456")).status).toBe(401);
    const r = await c.tryLogin("nobody", "x".repeat(12), "123456");
    expect(r.status).toBe(429);
    expect(r.json()).toMatchObject({ code: "rate_limited", errorJa: expect.stringContaining("試行回数") });
  });

  it("keeps an LRA operator out of the RA console; auditors sign in anywhere but role routes refuse them", async () => {
    const ra = new ConsoleClient(origin(), "/ra");
    const r = await ra.tryLogin(reviewer.username, reviewer.password, await reviewer.nextCode());
    expect(r.status).toBe(403);
    expect((await ra.getJson("/")).status).toBe(401);
    const lra = new ConsoleClient(origin(), "/lra");
    await lra.login(auditor);
    expect((await lra.getJson("/")).json().operator.role).toBe("auditor");
    const probe = await lra.get("/probe", { accept: "html" });
    expect(probe.status).toBe(403);
    expect(probe.text).toContain("この操作は許可されていません");
    expect((await lra.getJson("/probe")).json()).toMatchObject({ code: "forbidden", errorJa: expect.any(String) });
    // A session cookie of one console is nothing to another.
    const stolen = new ConsoleClient(origin(), "/ra");
    stolen.cookies.set("hpki_ra_sid", lra.cookies.get("hpki_lra_sid")!);
    expect((await stolen.getJson("/")).status).toBe(401);
  });
});

describe("console requests", () => {
  it("refuses unsafe methods without a valid CSRF token", async () => {
    const c = new ConsoleClient(origin(), "/lra");
    await c.login(await createTestOperator(t.db, "lra_reviewer"));
    expect((await c.post("/echo", { json: { a: 1 }, csrf: false })).status).toBe(403);
    const forged = await c.post("/echo", { json: { a: 1 }, csrf: false, headers: { "x-csrf-token": "forged.value" } });
    expect(forged.status).toBe(403);
    expect(forged.json()).toMatchObject({ code: "csrf" });
    // A token of another session does not work either.
    const other = new ConsoleClient(origin(), "/lra");
    await other.login(await createTestOperator(t.db, "lra_manager"));
    expect((await c.post("/echo", { json: { a: 1 }, csrf: false, headers: { "x-csrf-token": other.csrfToken! } })).status).toBe(403);
    const ok = await c.post("/echo", { form: { a: "1" } });
    expect(ok.status).toBe(200);
    expect(ok.json().body.a).toBe("1");
    // The flash message shows on the next page.
    expect((await c.get("/", { accept: "html" })).text).toContain("保存しました。");
    // Sign-in and sign-out are covered too.
    const anon = new ConsoleClient(origin(), "/lra");
    await anon.getJson("/login");
    expect((await anon.post("/login", { json: { username: "x", password: "y", totp: "1" }, csrf: false })).status).toBe(403);
  });

  it("takes the token of a multipart form from the query string (multer runs in the route)", async () => {
    const c = new ConsoleClient(origin(), "/lra");
    await c.login(await createTestOperator(t.db, "lra_reviewer"));
    const form = () => {
      const f = new FormData();
      f.set("note", "スキャン");
      f.set("file", new Blob([Buffer.from("%PDF-1.4 test")], { type: "application/pdf" }), "scan.pdf");
      return f;
    };
    expect((await c.post("/upload", { body: form(), csrf: false })).status).toBe(403);
    const ok = await c.post(`/upload?_csrf=${encodeURIComponent(c.csrfToken!)}`, { body: form(), csrf: false });
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ size: 13, note: "スキャン" });
    const big = new FormData();
    big.set("file", new Blob([Buffer.alloc(4096)]), "big.pdf");
    const tooBig = await c.post("/upload", { body: big });
    expect(tooBig.status).toBe(413);
  });

  it("maps typed errors to status pages and JSON", async () => {
    const c = new ConsoleClient(origin(), "/lra");
    await c.login(await createTestOperator(t.db, "lra_reviewer"));
    const v = await c.post("/form", { json: {} });
    expect(v.status).toBe(400);
    expect(v.json()).toMatchObject({ code: "invalid_input", issues: [{ field: "nameKanji", messageJa: "必須項目です。" }] });
    const page = await c.post("/form", { accept: "html", form: { nameKanji: "" } });
    expect(page.status).toBe(400);
    expect(page.text).toContain("form"); // the declared form view, re-rendered
    expect((await c.post("/conflict", { json: {} })).json()).toEqual({
      error: "already approved by another officer",
      errorJa: "他の担当者が既に承認しています。",
      code: "conflict",
      issues: [],
    });
    expect((await c.post("/conflict", { json: {} })).status).toBe(409);
    const nf = await c.get("/nowhere", { accept: "html" });
    expect(nf.status).toBe(404);
    expect(nf.text).toContain("ページが見つかりません");
    const boom = await c.getJson("/boom");
    expect(boom.status).toBe(500);
    expect(boom.text).not.toContain("secret internal detail");
  });

  it("drops a disabled operator at the next request, and signs out", async () => {
    const op = await createTestOperator(t.db, "lra_manager");
    const c = new ConsoleClient(origin(), "/lra");
    await c.login(op);
    expect((await c.getJson("/")).status).toBe(200);
    await setOperatorDisabled(t.db, op.username, true, { actor: "test", role: "admin" });
    expect((await c.getJson("/")).status).toBe(401);
    const redirect = await c.get("/probe", { accept: "html" });
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get("location")).toBe("/lra/login?next=%2Flra%2Fprobe");

    const c2 = new ConsoleClient(origin(), "/lra");
    await c2.login(await createTestOperator(t.db, "lra_reviewer"));
    const out = await c2.post("/logout", { json: {} });
    expect(out.status).toBe(200);
    expect((await c2.getJson("/")).status).toBe(401);
    const rows = await t.db("console_sessions").count<{ n: number | string }[]>("* as n");
    expect(Number(rows[0].n)).toBeGreaterThan(0); // sessions live in the database
  });
});
