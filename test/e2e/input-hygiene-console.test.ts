/**
 * Input hygiene at the edge (issue 10 §7) over real HTTP against the LRA and RA consoles: NUL
 * bytes and lone surrogates in any string field (JSON, urlencoded, query, path) are answered 400
 * before a handler or the database, including the unauthenticated sign-in; bidi controls and
 * invisible characters in a text field are refused at intake with the field named (the rules of
 * the certificate lint); malformed multipart is 400; a Japanese file name is stored as sent.
 * Never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsoleClient, startConsoleTestServer, type ConsoleResponse, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows, identityCheckInput, requiredUploads, samplePdf } from "../helpers/pipeline.ts";

let t: ConsoleTestServer;
let reviewer: TestOperator;
let officer: TestOperator;
let lra: ConsoleClient;
let ra: ConsoleClient;
const rows = demoRegisterRows();
let nextRow = 0;

/** Strings no database column takes (PostgreSQL refuses NUL; a lone surrogate is not UTF-8). */
const UNSTORABLE = ["\u0000", "a\u0000b", "\ud800", "x\udfffy", "\udc00\ud800"];
/** Strings intake refuses by the certificate lint's rules (bidi controls, invisible/format characters). */
const INVISIBLE = ["山田\u202e太郎", "山田\u200b太郎", "\ufeff山田", "山\u00ad田", "山田\u2066太郎", "山田\u200d太郎", "山田\u061c"];

beforeAll(async () => {
  t = await startConsoleTestServer(["lra", "ra"]);
  reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
  officer = await createTestOperator(t.db, "ra_officer");
  lra = await t.signIn("/lra", reviewer);
  ra = await t.signIn("/ra", officer);
}, 120_000);

afterAll(async () => t?.cleanup());

function expectRefused(r: ConsoleResponse, field?: string): void {
  expect(r.status, r.text).toBe(400);
  if ((r.headers.get("content-type") ?? "").includes("json")) {
    const body = r.json();
    expect(body.code).toBe("invalid_input");
    expect(body.errorJa).toBeTruthy();
    if (field) expect(body.issues.map((i: { field: string }) => i.field)).toContain(field);
    for (const i of body.issues) expect(i.messageJa).toBeTruthy();
  }
}

/** A fresh form token and the input of an unused register row (`refused`: any row, nothing is stored). */
async function newForm(refused = false): Promise<{ input: Record<string, unknown>; formToken: string }> {
  const i = refused ? 0 : nextRow++;
  const form = await lra.getJson("/applications/new");
  expect(form.status).toBe(200);
  return { input: applicationInputFor(rows[i], i), formToken: form.json().formToken };
}

async function createdApplication(): Promise<number> {
  const { input, formToken } = await newForm();
  const r = await lra.postJson("/applications", { ...input, formToken });
  expect(r.status, r.text).toBe(201);
  return r.json().application.id as number;
}

describe("NUL bytes and lone surrogates: 400 before any handler or the database", () => {
  it("sign-in (unauthenticated) refuses them in every field, JSON and form, and the account still works", async () => {
    for (const bad of UNSTORABLE) {
      for (const field of ["username", "password", "totp"]) {
        const c = new ConsoleClient(t.server.url, "/lra");
        await c.getJson("/login");
        const body = { username: reviewer.username, password: reviewer.password, totp: "000000", [field]: bad };
        expectRefused(await c.postJson("/login", body), field);
      }
    }
    const f = new ConsoleClient(t.server.url, "/ra");
    await f.get("/login", { accept: "html" });
    const r = await f.post("/login", { accept: "html", form: { username: "a\u0000", password: "x", totp: "1" } });
    expect(r.status).toBe(400);
    // Nothing was counted against the account: it signs in at once.
    await new ConsoleClient(t.server.url, "/lra").login(reviewer);
  });

  it("intake, identity check, decision and RA review refuse them in any field (JSON)", async () => {
    const id = await createdApplication();
    const keys = Object.keys(applicationInputFor(rows[0], 0));
    for (const bad of UNSTORABLE) {
      const { input, formToken } = await newForm(true);
      const field = keys[(UNSTORABLE.indexOf(bad) * 7) % keys.length];
      expectRefused(await lra.postJson("/applications", { ...input, formToken, [field]: bad }), field);
      expectRefused(await lra.postJson(`/applications/${id}/identity-check`, { ...identityCheckInput(), documentNumber: bad }), "documentNumber");
      expectRefused(await lra.postJson(`/applications/${id}/decision`, { decision: "lra_reject", reason: bad }), "reason");
      expectRefused(await lra.postJson(`/applications/${id}/decision`, { decision: "lra_reject", nested: { deeper: [bad] } }), "nested.deeper.0");
      expectRefused(await lra.postJson(`/applications/${id}/decision`, { [`k${bad}`]: "x" }));
      expectRefused(await ra.postJson(`/receipts/1/review`, { note: bad }), "note");
    }
    // The application is untouched by all of that.
    const app = (await lra.getJson(`/applications/${id}`)).json().application;
    expect(app.state).toBe("received");
  });

  it("query strings, paths and urlencoded forms: 400, never 500", async () => {
    for (const r of [
      await lra.get("/applications?q=%00"),
      await lra.get("/applications?q=a%00b&state=received"),
      await lra.get("/applications/%00"),
      await lra.get("/login?next=%00"),
      await ra.get("/issuance-requests?state=%00"),
      await lra.post("/applications/1/decision", { accept: "html", form: { decision: "lra_reject", reason: "x\u0000y" } }),
    ]) {
      expect(r.status, r.text).toBe(400);
    }
  });
});

describe("bidi controls and invisible characters: refused at intake with the field named", () => {
  it("a U+202E, U+200B, U+FEFF, U+00AD… in the kanji name or any text field never reaches the database", async () => {
    const before = Number((await t.db("applications").count({ n: "*" }).first())?.n);
    for (const bad of INVISIBLE) {
      for (const field of ["nameKanji", "address", "organizationKanji", "nameLatin"]) {
        const { input, formToken } = await newForm(true);
        const r = await lra.postJson("/applications", { ...input, formToken, [field]: bad });
        expectRefused(r, field);
        const issue = r.json().issues.find((i: { field: string }) => i.field === field);
        expect(issue.message).toMatch(/U\+[0-9A-F]{4}/);
        expect(issue.messageJa).toContain(field);
      }
    }
    expect(Number((await t.db("applications").count({ n: "*" }).first())?.n)).toBe(before);
  });

  it("decomposed text is stored NFC; line breaks in a free-text note are kept", async () => {
    const { input, formToken } = await newForm();
    // "ガ" as カ + U+3099 (NFD) in the address.
    const r = await lra.postJson("/applications", { ...input, formToken, address: "東京都\u30ab\u3099丁目" });
    expect(r.status, r.text).toBe(201);
    const row = await t.db("applications").where({ id: r.json().application.id }).first("address");
    expect(row.address).toBe("東京都\u30ac丁目");
  });
});

describe("multipart uploads", () => {
  const post = (c: ConsoleClient, id: number, body: BodyInit, contentType: string) =>
    c.request("POST", `/applications/${id}/documents?_csrf=${encodeURIComponent(c.csrfToken!)}`, { accept: "json", body, headers: { "content-type": contentType } });

  it("malformed multipart bodies are 400 and store nothing", async () => {
    const id = await createdApplication();
    const pdf = samplePdf("malformed").toString("latin1");
    const cases: [string, string][] = [
      ["multipart/form-data", "--x\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nlicence_copy\r\n--x--\r\n"], // no boundary parameter
      ["multipart/form-data; boundary=x", "this is not multipart at all"],
      ["multipart/form-data; boundary=x", `--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n${pdf}`], // truncated: no closing boundary
      ["multipart/form-data; boundary=x", `--x\r\nContent-Disposition form-data name file\r\n\r\n${pdf}\r\n--x--\r\n`], // malformed part header
      ["multipart/form-data; boundary=x", `--x\r\nContent-Disposition: form-data; name="kind"\r\n\r\nlicence\u0000copy\r\n--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n${pdf}\r\n--x--\r\n`], // NUL in a field
      ["multipart/form-data; boundary=x", ""],
    ];
    for (const [type, body] of cases) {
      const r = await post(lra, id, Buffer.from(body, "latin1"), type);
      expect(r.status, `${type} ${JSON.stringify(body.slice(0, 60))}: ${r.text}`).toBe(400);
    }
    expect(Number((await t.db("application_documents").where({ application_id: id }).count({ n: "*" }).first())?.n)).toBe(0);
  });

  it("a Japanese file name round-trips (raw UTF-8 as browsers send it, and RFC 5987 filename*)", async () => {
    const id = await createdApplication();
    const r1 = await lra.upload(`/applications/${id}/documents`, { kind: "licence_copy" }, { filename: "免許証の写し.pdf", bytes: samplePdf("jp-1"), type: "application/pdf" });
    expect(r1.status, r1.text).toBe(201);
    const pdf = samplePdf("jp-2").toString("latin1");
    const body = Buffer.concat([
      Buffer.from(`--b\r\nContent-Disposition: form-data; name="kind"\r\n\r\nidentity_document\r\n--b\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''${encodeURIComponent("本人確認書類（表）.pdf")}\r\nContent-Type: application/pdf\r\n\r\n`, "utf8"),
      Buffer.from(pdf, "latin1"),
      Buffer.from("\r\n--b--\r\n"),
    ]);
    const r2 = await post(lra, id, body, "multipart/form-data; boundary=b");
    expect(r2.status, r2.text).toBe(201);
    const stored = (await t.db("application_documents").where({ application_id: id }).orderBy("id").select("filename")).map((d) => d.filename);
    expect(stored).toEqual(["免許証の写し.pdf", "本人確認書類（表）.pdf"]);
    const docs = (await lra.getJson(`/applications/${id}`)).json().documents as { filename: string; url?: string }[];
    expect(docs.map((d) => d.filename)).toEqual(["免許証の写し.pdf", "本人確認書類（表）.pdf"]);
  });

  it("required uploads still work as before", async () => {
    const id = await createdApplication();
    for (const u of requiredUploads("hygiene")) {
      const r = await lra.upload(`/applications/${id}/documents`, { kind: u.kind }, { filename: u.filename, bytes: u.bytes, type: "application/pdf" });
      expect(r.status, r.text).toBe(201);
    }
  });
});
