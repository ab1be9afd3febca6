/**
 * The SSO center's administration console (/sso/admin) over real HTTP on `hpki serve`'s server:
 * an administrator registers a clinical system from the form (secret shown once, working at once),
 * changes its allowed hcRoles, rotates its secret, disables and re-enables it, and confirms or
 * removes account links the person asked for in the portal; an auditor reads and changes nothing.
 * A real relying party (openid-client) logs in with a SoftHSM card throughout.
 */
import { createHash } from "node:crypto";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { TestBrowser } from "../helpers/browser.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { issueAuthCard, openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { authorizeWithSession, cardLogin, finishLogin, startLogin, type TestRp } from "../helpers/sso-login.ts";

const by = { actor: "test", role: "ia" };
let ia: TestIa;
let server: StartedServer;
let issuer: string;
let adminOp: TestOperator;
let auditorOp: TestOperator;
let admin: ConsoleClient;
const doctorCard = { label: "", pin: "" };
const emr: TestRp = { id: "emr", secret: "", redirect: "http://rp-emr.test/cb" };
/** The browser of the person once logged in (holds the provider session for the portal). */
const person = new TestBrowser();

async function lastAudit(action: string): Promise<{ actor: string; details: Record<string, any> }> {
  const row = await ia.ctx.db("audit_log").where({ action }).orderBy("seq", "desc").first("actor", "details");
  expect(row, `audit ${action}`).toBeDefined();
  return { actor: row.actor, details: typeof row.details === "string" ? JSON.parse(row.details) : row.details };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` });
const linkApi = (secret: string) => fetch(`${issuer}/api/links/pending`, { headers: basic("emr", secret) });

/** A full login of the doctor at emr in `browser`; returns the ID token claims. */
async function doctorLogsIn(browser = new TestBrowser()) {
  const s = await startLogin(issuer, emr, browser);
  const r = await cardLogin(ia.ctx.cards, s, doctorCard);
  expect(r.status, r.body).toBe(200);
  return (await finishLogin(s, emr, (r.json as { redirectTo: string }).redirectTo)).claims()!;
}

beforeAll(async () => {
  ia = await openTestIa("sso-admin");
  await runDemoCeremony(ia.ctx, by);
  Object.assign(doctorCard, await issueAuthCard(ia.ctx, { hcRole: "Medical Doctor", subscriberId: "ADM000001", name: { latin: "Jiro Tanaka", kanji: "田中　次郎" } }, by));
  adminOp = await createTestOperator(ia.ctx.db, "admin");
  auditorOp = await createTestOperator(ia.ctx.db, "auditor");
  const cfg = loadConfig({ HPKI_HOME: ia.home, HPKI_SESSION_SECRET: "sso-admin-console-secret-0123456789" });
  server = await startServer({ cfg, db: ia.ctx.db, roles: ["sso"], port: 0 });
  issuer = `${server.url}/sso`;
  admin = new ConsoleClient(server.url, "/sso/admin");
  await admin.login(adminOp);
}, 180_000);

afterAll(async () => {
  await server?.close();
  await ia?.cleanup();
});

describe("SSO administration console", () => {
  it("an administrator registers a service from the form; the secret is shown once, stored only as a hash, and works", async () => {
    const form = await admin.get("/clients/new", { accept: "html" });
    expect(form.status).toBe(200);
    expect(form.text).toContain("サービスの登録");
    expect(form.text).toContain('value="Medical Doctor"');
    const r = await admin.post("/clients", {
      accept: "html",
      form: { clientId: "emr", name: "地域医療連携EMR", redirectUris: `${emr.redirect}\r\nhttp://rp-emr.test/cb2`, allowedHcRoles: "Medical Doctor", accountMapping: "linked", backchannelLogoutUri: "http://rp-emr.test/bcl" },
    });
    expect(r.status, r.text.slice(0, 800)).toBe(201);
    expect(r.headers.get("cache-control")).toBe("no-store");
    emr.secret = /<code class="secret">([^<]+)<\/code>/.exec(r.text)![1];
    expect(emr.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await ia.ctx.db("sso_clients").where({ client_id: "emr" }).first();
    expect(Buffer.from(row.secret_sha256).equals(createHash("sha256").update(emr.secret).digest())).toBe(true);
    expect(row.name).toBe("地域医療連携EMR");
    expect(row.backchannel_logout_uri).toBe("http://rp-emr.test/bcl");
    const a = await lastAudit("sso.client-registered");
    expect(a.actor).toBe(adminOp.username);
    expect(a.details.allowedHcRoles).toEqual(["Medical Doctor"]);
    expect(JSON.stringify(a)).not.toContain(emr.secret);
    expect((await linkApi(emr.secret)).status).toBe(200);
    // A real RP logs in with the card under the new registration.
    expect((await doctorLogsIn(person)).hcRole).toBe("Medical Doctor");
  });

  it("a bad redirect URI re-renders the form with the message in Japanese and writes nothing", async () => {
    const before = await ia.ctx.db("audit_log").count({ n: "*" }).first();
    const r = await admin.post("/clients", { accept: "html", form: { clientId: "bad-uri", name: "x", redirectUris: "not a url" } });
    expect(r.status).toBe(400);
    expect(r.text).toContain("http:// または https:// で始まる絶対URL");
    expect(r.text).toContain("not a url"); // the operator's input is kept
    expect(await ia.ctx.db("sso_clients").where({ client_id: "bad-uri" }).first()).toBeUndefined();
    expect(await ia.ctx.db("audit_log").count({ n: "*" }).first()).toEqual(before);
    const dup = await admin.postJson("/clients", { clientId: "emr", name: "again", redirectUris: [emr.redirect] });
    expect(dup.status).toBe(409);
    expect(dup.json().errorJa).toContain("既に登録されています");
  });

  it("an auditor reads the services but cannot change anything", async () => {
    const auditor = new ConsoleClient(server.url, "/sso/admin");
    await auditor.login(auditorOp);
    const list = await auditor.getJson("/clients");
    expect(list.status).toBe(200);
    expect(list.json().clients).toEqual([expect.objectContaining({ clientId: "emr", allowedHcRoles: ["Medical Doctor"], disabled: false })]);
    const page = await auditor.get("/clients/emr", { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain("設定を保存");
    for (const path of ["/clients", "/clients/emr", "/clients/emr/disable", "/clients/emr/secret"]) {
      expect((await auditor.postJson(path, { clientId: "x", name: "x", redirectUris: [emr.redirect] })).status, path).toBe(403);
    }
    // Persons' sessions do not open the console, and other operators' roles do not either.
    const ra = new ConsoleClient(server.url, "/sso/admin");
    const raOp = await createTestOperator(ia.ctx.db, "ra_officer");
    expect((await ra.tryLogin(raOp.username, raOp.password, await raOp.nextCode())).status).toBe(403);
    expect((await new ConsoleClient(server.url, "/sso/admin").getJson("/clients")).status).toBe(401);
  });

  it("the person asks for a link in the portal, the administrator confirms it in the console, and service_account_id appears (sub unchanged); the person removes it", async () => {
    const subBefore = (await authorizeWithSession(issuer, emr, person)).claims()!.sub;
    const portal = await person.request(`${issuer}/portal`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(portal.body)![1];
    expect((await person.request(`${issuer}/portal/links`, { body: new URLSearchParams({ csrf, clientId: "emr", accountId: "EMR-0042" }) })).status).toBe(303);

    const detail = await admin.getJson("/clients/emr");
    const [link] = detail.json().links as { personId: string; accountId: string; status: string; person: { nameKanji: string } }[];
    expect(link).toMatchObject({ accountId: "EMR-0042", status: "requested", person: { nameKanji: "田中　次郎" } });
    const html = await admin.get("/clients/emr", { accept: "html" });
    expect(html.text).toContain("確認待ち");
    const confirmed = await admin.post(`/clients/emr/links/${link.personId}/confirm`, { accept: "html", form: {} });
    expect(confirmed.status).toBe(303);
    expect((await lastAudit("sso.link-confirmed")).actor).toBe(adminOp.username);
    expect((await authorizeWithSession(issuer, emr, person)).claims()!).toMatchObject({ sub: subBefore, service_account_id: "EMR-0042" });

    const again = await person.request(`${issuer}/portal`);
    expect(again.body).toContain("連携を解除");
    const csrf2 = /name="csrf" value="([^"]+)"/.exec(again.body)![1];
    expect((await person.request(`${issuer}/portal/links/remove`, { body: new URLSearchParams({ csrf: "forged", clientId: "emr" }) })).status).toBe(403);
    expect((await person.request(`${issuer}/portal/links/remove`, { body: new URLSearchParams({ csrf: csrf2, clientId: "emr" }) })).status).toBe(303);
    const removed = await lastAudit("sso.link-removed");
    expect(removed.actor).toBe(link.personId);
    expect(removed.details).toMatchObject({ accountId: "EMR-0042", status: "confirmed" });
    const unlinked = (await authorizeWithSession(issuer, emr, person)).claims()!;
    expect(unlinked.sub).toBe(subBefore);
    expect(unlinked.sub).toMatch(/^[A-Za-z0-9_-]{43}$/); // pairwise pseudonym
    expect(unlinked.service_account_id).toBeUndefined();

    // A request the administrator rejects is gone; confirming it afterwards finds nothing.
    const csrf3 = /name="csrf" value="([^"]+)"/.exec((await person.request(`${issuer}/portal`)).body)![1];
    await person.request(`${issuer}/portal/links`, { body: new URLSearchParams({ csrf: csrf3, clientId: "emr", accountId: "WRONG-1" }) });
    expect((await admin.postJson(`/clients/emr/links/${link.personId}/remove`, {})).status).toBe(200);
    const late = await admin.postJson(`/clients/emr/links/${link.personId}/confirm`, {});
    expect(late.status).toBe(404);
    expect(late.json().errorJa).toBeTruthy();
  });

  it("changed allowed hcRoles take effect at the next login, with the change audited before/after", async () => {
    const r = await admin.postJson("/clients/emr", { name: "地域医療連携EMR", redirectUris: [emr.redirect], allowedHcRoles: ["Pharmacist"], accountMapping: "linked" });
    expect(r.status, r.text).toBe(200);
    const a = await lastAudit("sso.client-updated");
    expect(a.details).toEqual({
      before: { redirectUris: [emr.redirect, "http://rp-emr.test/cb2"], allowedHcRoles: ["Medical Doctor"] },
      after: { redirectUris: [emr.redirect], allowedHcRoles: ["Pharmacist"] },
    });
    const s = await startLogin(issuer, emr);
    const refused = await cardLogin(ia.ctx.cards, s, doctorCard);
    expect(refused.status).toBe(403);
    expect(refused.json).toMatchObject({ error: "hcrole-not-allowed" });
    expect((await admin.postJson("/clients/emr", { name: "地域医療連携EMR", redirectUris: [emr.redirect], allowedHcRoles: ["Medical Doctor"] })).status).toBe(200);
    expect((await doctorLogsIn()).hcRole).toBe("Medical Doctor");
  });

  it("the form sets the scopes granted without consent and JWT access tokens (issue 14 §7), audited before/after", async () => {
    const page = await admin.get("/clients/emr", { accept: "html" });
    expect(page.text).toContain("同意なしで提供するスコープ");
    expect(page.text).toMatch(/name="defaultScopes" value="hcrole" checked/);
    expect(page.text).not.toMatch(/name="defaultScopes" value="subscriber" checked/);
    const form = { name: "地域医療連携EMR", redirectUris: emr.redirect, allowedHcRoles: "Medical Doctor", accountMapping: "linked", defaultScopesShown: "1", defaultScopes: "subscriber" };
    // JWT without an audience: the form again, nothing changed.
    const bad = await admin.post("/clients/emr", { accept: "html", form: { ...form, accessTokenFormat: "jwt", accessTokenAudience: "" } });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("audience");
    const ok = await admin.post("/clients/emr", { accept: "html", form: { ...form, accessTokenFormat: "jwt", accessTokenAudience: "https://emr.example.jp/api" } });
    expect(ok.status, ok.text.slice(0, 500)).toBe(303);
    const a = await lastAudit("sso.client-updated");
    expect(a.details.after).toMatchObject({ defaultScopes: ["openid", "subscriber"], accessTokenFormat: "jwt", accessTokenAudience: "https://emr.example.jp/api" });
    expect(a.details.before).toMatchObject({ defaultScopes: ["openid", "profile", "hcrole", "organization"], accessTokenFormat: "opaque", accessTokenAudience: null });
    const row = await ia.ctx.db("sso_clients").where({ client_id: "emr" }).first();
    expect(row).toMatchObject({ default_scopes: ["openid", "subscriber"], access_token_format: "jwt", access_token_audience: "https://emr.example.jp/api" });
    // Back to the defaults and opaque tokens.
    const back = await admin.postJson("/clients/emr", { name: "地域医療連携EMR", redirectUris: [emr.redirect], allowedHcRoles: ["Medical Doctor"], accountMapping: "linked", defaultScopes: ["profile", "hcrole", "organization"], accessTokenFormat: "opaque" });
    expect(back.status, back.text).toBe(200);
    expect(back.json().client).toMatchObject({ defaultScopes: ["openid", "profile", "hcrole", "organization"], accessTokenFormat: "opaque", accessTokenAudience: null });
    expect(await ia.ctx.db("sso_clients").where({ client_id: "emr" }).first()).toMatchObject({ default_scopes: null, access_token_format: null, access_token_audience: null });
  });

  it("a rotated secret replaces the old one; the old one keeps working for the overlap (24 h, issue 14 §8)", async () => {
    const r = await admin.post("/clients/emr/secret", { accept: "html", form: {} });
    expect(r.status).toBe(200);
    const fresh = /<code class="secret">([^<]+)<\/code>/.exec(r.text)![1];
    expect(fresh).not.toBe(emr.secret);
    expect((await linkApi(emr.secret)).status).toBe(200);
    expect((await linkApi(fresh)).status).toBe(200);
    // Once the overlap has passed, only the new secret works.
    await ia.ctx.db("sso_clients").where({ client_id: "emr" }).update({ previous_secret_until: new Date(Date.now() - 1000) });
    expect((await linkApi(emr.secret)).status).toBe(401);
    expect((await linkApi(fresh)).status).toBe(200);
    emr.secret = fresh;
    const audit = await lastAudit("sso.client-secret-rotated");
    expect(audit).toMatchObject({ actor: adminOp.username });
    expect(Date.parse((audit.details as { previousValidUntil: string }).previousValidUntil)).toBeGreaterThan(Date.now() + 86_000_000);
  });

  it("a disabled service gets no login and no token; enabled again it works", async () => {
    const s = await startLogin(issuer, emr);
    const ok = await cardLogin(ia.ctx.cards, s, doctorCard);
    expect(ok.status).toBe(200);
    expect((await admin.post("/clients/emr/disable", { accept: "html", form: {} })).status).toBe(303);
    expect((await lastAudit("sso.client-disabled")).actor).toBe(adminOp.username);
    // The code issued before cannot be redeemed, and a new authorization request is refused.
    await expect(finishLogin(s, emr, (ok.json as { redirectTo: string }).redirectTo)).rejects.toThrow();
    const config = await oidc.discovery(new URL(issuer), emr.id, emr.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: emr.redirect, scope: "openid", code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const denied = await new TestBrowser().request(url.toString());
    expect(denied.status).toBe(400);
    expect(denied.body).toContain("invalid_client");
    expect((await linkApi(emr.secret)).status).toBe(401);
    const list = await admin.get("/clients", { accept: "html" });
    expect(list.text).toContain("停止中");

    expect((await admin.postJson("/clients/emr/enable", {})).json().client.disabled).toBe(false);
    expect((await doctorLogsIn()).hcRole).toBe("Medical Doctor");
  });

  it("the console is in English on request", async () => {
    const r = await admin.get("/clients?lang=en", { accept: "html" });
    expect(r.text).toContain("Relying parties (clinical systems)");
    expect(r.text).toContain("Register a service");
  });
});
