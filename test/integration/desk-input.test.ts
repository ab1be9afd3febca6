/**
 * Japanese input and errors that keep work at the registration desk (issue 12 §4–§6), through the
 * consoles' real HTTP interface on a fresh PostgreSQL database: 和暦 and full-width input taken,
 * 山崎 finds 山﨑 (stored search key), a duplicate keeps the typed data and links the existing
 * application, a session that expired in the middle of a form returns to it with its data, and a
 * 12-digit 個人番号 is refused and stored nowhere (every text column of every table).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { formatWareki } from "../../src/pipeline/wareki.ts";
import { importPostcodes } from "../../src/registration/postcodes.ts";
import { encodeShiftJis, KEN_ALL_SAMPLE } from "../helpers/ken-all.ts";
import { ConsoleClient, startConsoleTestServer, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";
import { applicationInputFor, demoRegisterRows } from "../helpers/pipeline.ts";

let t: ConsoleTestServer;
let reviewer: TestOperator;
let lra: ConsoleClient;
const rows = demoRegisterRows();
const fullWidth = (s: string) => s.replace(/[0-9-]/g, (c) => (c === "-" ? "－" : String.fromCharCode(c.charCodeAt(0) + 0xfee0)));
/** A 個人番号-shaped number: 11 digits + the check digit of 番号法施行令 §8. */
function myNumber(body11: string): string {
  let sum = 0;
  for (let n = 1; n <= 11; n++) sum += Number(body11[11 - n]) * (n <= 6 ? n + 1 : n - 5);
  const r = sum % 11;
  return `${body11}${r <= 1 ? 0 : 11 - r}`;
}
const MY_NUMBER = myNumber("31415926535");

/** Ends the session of `c` on the server, as the idle timeout does (its row is gone). */
async function expireSession(c: ConsoleClient): Promise<void> {
  const cookie = decodeURIComponent(c.cookies.get("hpki_lra_sid") ?? "");
  const sid = cookie.slice(2, cookie.lastIndexOf("."));
  expect(await t.db("console_sessions").where({ sid }).del()).toBe(1);
}

beforeAll(async () => {
  t = await startConsoleTestServer(["lra", "ra"]);
  reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
  lra = await t.signIn("/lra", reviewer);
}, 120_000);

afterAll(async () => {
  await t?.cleanup();
});

describe("Japanese input (§4)", () => {
  it("takes 和暦 dates, full-width digits, dash look-alikes and spaces, and the licence still matches the register", async () => {
    const r = rows[0];
    const input = applicationInputFor(r, 0, {
      birthDate: formatWareki(r.birth_date)!.replace(/\d/g, (d) => String.fromCharCode(d.charCodeAt(0) + 0xfee0)),
      licenceDate: `H${Number(r.registration_date.slice(0, 4)) - 1988}.${Number(r.registration_date.slice(5, 7))}.${Number(r.registration_date.slice(8, 10))}`,
      postalCode: "〒１００ー０００５",
      phone: "０３−１２３４―５６７８",
      licenceNumber: `第${fullWidth(r.registration_number)}号`,
    });
    const res = await lra.postJson("/applications", input);
    expect(res.status, res.text).toBe(201);
    const a = res.json().application;
    expect(a.birthDate).toBe(r.birth_date);
    expect(a.licenceDate).toBe(r.registration_date);
    expect(a.postalCode).toBe("100-0005");
    expect(a.phone).toBe("03-1234-5678");
    expect(a.licenceNumber).toBe(r.registration_number);
    const detail = await lra.get(`/applications/${a.id}`, { accept: "html" });
    // The birth date with its era year beside the Western one.
    expect(detail.text).toContain(`${r.birth_date.slice(0, 4)}年（${formatWareki(r.birth_date)!.replace(/\d+月\d+日$/, "")}）`);
  });

  it("refuses a date outside its era with the formats named", async () => {
    const res = await lra.postJson("/applications", applicationInputFor(rows[1], 1, { birthDate: "平成31年5月1日" }));
    expect(res.status).toBe(400);
    const issue = res.json().issues.find((i: { field: string }) => i.field === "birthDate");
    expect(issue.messageJa).toContain("昭和55年4月1日");
  });

  it("finds 異体字, ignoring width and spaces: 山崎 finds 山﨑, 高橋 finds 髙橋, ﾔﾏｻﾞｷ finds ヤマザキ", async () => {
    const base = applicationInputFor(rows[3], 3);
    const yamazaki = await lra.postJson("/applications", { ...base, nameKanji: "山﨑　太郎", nameKana: "ヤマザキ　タロウ", licenceNumber: "9900001" });
    expect(yamazaki.status, yamazaki.text).toBe(201);
    const takahashi = await lra.postJson("/applications", { ...base, nameKanji: "髙橋　誠", nameKana: "タカハシ　マコト", licenceNumber: "9900002" });
    expect(takahashi.status, takahashi.text).toBe(201);
    const search = async (q: string) => (await lra.getJson(`/applications?q=${encodeURIComponent(q)}`)).json().applications.map((x: { applicationNo: string }) => x.applicationNo);
    for (const q of ["山崎", "山崎太郎", "山崎 太郎", "山﨑", "ﾔﾏｻﾞｷ", "やまざき", "ヤマザキ　タロウ"]) expect(await search(q), q).toContain(yamazaki.json().application.applicationNo);
    for (const q of ["高橋", "髙橋", "高橋　誠"]) expect(await search(q), q).toContain(takahashi.json().application.applicationNo);
    expect(await search("山崎")).not.toContain(takahashi.json().application.applicationNo);
    // The key is stored (generated column) and the search can use its trigram index.
    const [{ search_key }] = await t.db("applications").where({ id: yamazaki.json().application.id }).select("search_key");
    expect(search_key).toBe("山崎太郎|ヤマザキタロウ");
    const text = await t.db.transaction(async (trx) => {
      await trx.raw("SET LOCAL enable_seqscan = off");
      return JSON.stringify((await trx.raw("EXPLAIN SELECT id FROM applications WHERE search_key LIKE '%' || hpki_search_fold('山崎太郎') || '%'")).rows);
    });
    expect(text).toContain("applications_search_key_trgm");
  });
});

describe("search keys and postcodes (§4)", () => {
  it("the database fold holds every pair of policies/name-variants.yaml (its frozen copy in migration 0150 agrees)", async () => {
    const table = parseYaml(fs.readFileSync("policies/name-variants.yaml", "utf8")) as { variants: { variant: string; standard: string }[] };
    expect(table.variants.length).toBeGreaterThan(30);
    for (const { variant, standard } of table.variants) {
      const { rows: [r] } = await t.db.raw("SELECT hpki_search_fold(?) AS v, hpki_search_fold(?) AS s", [`山${variant}`, `山${standard}`]);
      expect(r.v, `${variant} → ${standard}`).toBe(r.s);
      expect(r.s).toBe(`山${standard}`);
    }
  });

  it("imports KEN_ALL and fills the address from a full-width postal code", async () => {
    const r = await importPostcodes(t.db, encodeShiftJis(KEN_ALL_SAMPLE), { actor: "test", role: "ra" });
    expect(r).toMatchObject({ rows: 7, codes: 6 });
    const one = await lra.getJson(`/postcodes/${encodeURIComponent("１００－０００５")}`);
    expect(one.json().addresses).toEqual([expect.objectContaining({ postalCode: "100-0005", address: "東京都千代田区丸の内" })]);
    const two = await lra.getJson("/postcodes/1500002");
    expect(two.json().addresses.map((a: { address: string }) => a.address)).toEqual(["東京都渋谷区渋谷", "東京都渋谷区渋谷駅前"]);
    expect((await lra.getJson("/postcodes/9999999")).json().addresses).toEqual([]);
    const page = await lra.get("/applications/new", { accept: "html" });
    expect(page.text).toContain('data-postcode-url="/lra/postcodes/"');
    expect(await t.db("audit_log").where({ action: "postcodes.imported" }).first()).toBeTruthy();
  });
});

describe("errors that keep work (§5)", () => {
  it("a duplicate keeps the typed data and links the existing application", async () => {
    const r = rows[2];
    const first = await lra.postJson("/applications", applicationInputFor(r, 2));
    expect(first.status, first.text).toBe(201);
    const existing = first.json().application;
    const typed = applicationInputFor(r, 2, { address: "東京都千代田区丸の内九丁目99番 重複テスト", email: "dup@example.jp" });
    const json = await lra.postJson("/applications", typed);
    expect(json.status).toBe(409);
    expect(json.json().link.href).toBe(`/lra/applications/${existing.id}`);
    await lra.get("/applications/new", { accept: "html" });
    const form = Object.fromEntries(Object.entries(typed).map(([k, v]) => [k, String(v)]));
    const html = await lra.post("/applications", { accept: "html", form });
    expect(html.status).toBe(409);
    expect(html.text).toContain('value="東京都千代田区丸の内九丁目99番 重複テスト"');
    expect(html.text).toContain('value="dup@example.jp"');
    expect(html.text).toContain(`href="/lra/applications/${existing.id}"`);
    expect(html.text).toContain(existing.applicationNo);
    expect(html.text).toContain("data-error-summary");
  });

  it("a form refused with an error page (no form view) keeps its values: the page links back to the form, filled in again", async () => {
    const target = (await lra.postJson("/applications", applicationInputFor(rows[6], 6))).json().application;
    await lra.get(`/applications/${target.id}`, { accept: "html" });
    const refused = await lra.post("/applications/99999999/decision", { accept: "html", form: { decision: "lra_reject", reason: "戻り確認のための理由テキスト", _page: `/lra/applications/${target.id}` } });
    expect(refused.status).toBe(404);
    const back = /href="([^"]+)" data-back-to-form/.exec(refused.text)?.[1].replace(/&amp;/g, "&").replace(/&#x3D;/g, "=");
    expect(back).toMatch(new RegExp(`^/lra/applications/${target.id}\\?resume=[\\w-]+$`));
    const page = await lra.get(back!.replace(/^\/lra/, ""), { accept: "html" });
    expect(page.status).toBe(200);
    expect(page.text).toContain("戻り確認のための理由テキスト");
    expect(page.text).toContain("data-error-summary");
  });

  it("the error summary names each field", async () => {
    await lra.get("/applications/new", { accept: "html" });
    const html = await lra.post("/applications", { accept: "html", form: { nameKanji: "", nameKana: "", postalCode: "12" } });
    expect(html.status).toBe(400);
    expect(html.text).toContain("<strong>氏名（漢字）</strong>：必須項目です。");
    expect(html.text).toContain("<strong>郵便番号</strong>：");
    expect(html.text).toMatch(/<script src="\/lra\/static\/form-errors\.js\?v(=|&#x3D;)[0-9a-f]+" defer><\/script>/);
  });

  it("a session that expired in the middle of a form signs in again and returns to the form with its data", async () => {
    const c = await t.signIn("/lra", reviewer);
    const page = await c.get("/applications/new", { accept: "html" });
    expect(page.text).toContain('name="_page" value="/lra/applications/new"');
    const formToken = /name="formToken" value="([^"]+)"/.exec(page.text)![1];
    // The session ends while the form is being typed (idle timeout: the row is gone).
    await expireSession(c);
    const typed = { ...Object.fromEntries(Object.entries(applicationInputFor(rows[4], 4, { address: "大阪府大阪市北区梅田三丁目1番 セッション切れ" })).map(([k, v]) => [k, String(v)])), formToken, _page: "/lra/applications/new" };
    const postedCsrf = c.csrfToken!;
    const post = await c.post("/applications", { accept: "html", form: typed, headers: { "sec-fetch-site": "same-origin" } });
    expect(post.status).toBe(303);
    const loc = post.headers.get("location")!;
    const next = new URL(loc, "http://x").searchParams.get("next")!;
    expect(next).toMatch(/^\/lra\/applications\/new\?resume=[\w-]+$/);
    // Nothing was created; the stash holds no CSRF token.
    expect(await t.db("applications").where({ idempotency_key: formToken }).first()).toBeUndefined();
    const stored = JSON.stringify(await t.db("console_sessions").select("*"));
    expect(stored).toContain("セッション切れ");
    expect(stored).not.toContain(postedCsrf);
    await c.login(reviewer);
    const back = await c.get(next.replace(/^\/lra/, ""), { accept: "html" });
    expect(back.status).toBe(200);
    expect(back.text).toContain('value="大阪府大阪市北区梅田三丁目1番 セッション切れ"');
    expect(back.text).toContain(`name="formToken" value="${formToken}"`);
    expect(back.text).toContain("入力した内容を復元しました");
    // Used once.
    const again = await c.get(next.replace(/^\/lra/, ""), { accept: "html" });
    expect(again.text).not.toContain("セッション切れ");
    // Sent again: one application.
    const sent = await c.post("/applications", { accept: "json", form: { ...typed } });
    expect(sent.status, sent.text).toBe(201);
  });

  it("a cross-site POST after expiry is not stashed", async () => {
    const c = await t.signIn("/lra", reviewer);
    await c.get("/applications/new", { accept: "html" });
    await expireSession(c);
    const post = await c.post("/applications", { accept: "html", form: { nameKanji: "攻撃", _page: "/lra/applications/new" }, headers: { "sec-fetch-site": "cross-site" } });
    expect(post.status).toBe(403);
    expect(JSON.stringify(await t.db("console_sessions").select("*"))).not.toContain("攻撃");
  });
});

describe("個人番号 never stored (§6)", () => {
  it("refuses a 12-digit number for a マイナンバーカード with the reason; it appears nowhere in the database or the audit log", async () => {
    const created = await lra.postJson("/applications", applicationInputFor(rows[5], 5));
    expect(created.status, created.text).toBe(201);
    const id = created.json().application.id;
    const expiry = new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10);
    const base = { documentType: "my_number_card", expiryDate: expiry, method: "face_to_face", photoMatches: "on" };
    const spaced = `${MY_NUMBER.slice(0, 4)} ${MY_NUMBER.slice(4, 8)} ${MY_NUMBER.slice(8)}`;
    for (const documentNumber of [MY_NUMBER, fullWidth(spaced), `${MY_NUMBER.slice(0, 4)}－${MY_NUMBER.slice(4, 8)}－${MY_NUMBER.slice(8)}`]) {
      const res = await lra.postJson(`/applications/${id}/identity-check`, { ...base, documentNumber });
      expect(res.status).toBe(400);
      const issue = res.json().issues.find((i: { field: string }) => i.field === "documentNumber");
      expect(issue.messageJa).toContain("番号法");
    }
    const inNote = await lra.postJson(`/applications/${id}/identity-check`, { ...base, note: `番号 ${spaced}` });
    expect(inNote.status).toBe(400);
    // The HTML form shows the refusal (and keeps the other fields) — the page itself is not stored.
    await lra.get(`/applications/${id}`, { accept: "html" });
    const html = await lra.post(`/applications/${id}/identity-check`, { accept: "html", form: { ...base, documentNumber: MY_NUMBER } });
    expect(html.status).toBe(400);
    expect(html.text).toContain("番号法");
    // A session that expires with the 個人番号 typed: the stash drops it.
    const c = await t.signIn("/lra", reviewer);
    await c.get(`/applications/${id}`, { accept: "html" });
    await expireSession(c);
    const expired = await c.post(`/applications/${id}/identity-check`, { accept: "html", form: { ...base, documentNumber: MY_NUMBER, _page: `/lra/applications/${id}` }, headers: { "sec-fetch-site": "same-origin" } });
    expect(expired.status).toBe(303);
    // At most the last 4 digits are kept.
    const ok = await lra.postJson(`/applications/${id}/identity-check`, { ...base, documentNumber: fullWidth(MY_NUMBER.slice(8)) });
    expect(ok.status, ok.text).toBe(200);
    const [row] = await t.db("applications").where({ id }).select("identity_check");
    const identity = typeof row.identity_check === "string" ? JSON.parse(row.identity_check) : row.identity_check;
    expect(identity.documentNumberLast4).toBe(MY_NUMBER.slice(8));
    expect(identity.documentNumber).toBeUndefined();

    // Every text-like column of every table (audit log and sessions included).
    const cols = (await t.db("information_schema.columns")
      .where({ table_schema: "public" })
      .whereIn("data_type", ["text", "character varying", "character", "json", "jsonb", "ARRAY"])
      .select("table_name", "column_name")) as { table_name: string; column_name: string }[];
    expect(cols.some((x) => x.table_name === "audit_log")).toBe(true);
    expect(cols.some((x) => x.table_name === "console_sessions")).toBe(true);
    const hits: string[] = [];
    const needles = [MY_NUMBER, MY_NUMBER.slice(0, 8), `${MY_NUMBER.slice(0, 4)} ${MY_NUMBER.slice(4, 8)}`, fullWidth(MY_NUMBER.slice(0, 8))];
    for (const { table_name, column_name } of cols) {
      const { rows: [{ n }] } = await t.db.raw(`SELECT count(*)::int AS n FROM ?? WHERE ??::text LIKE ANY (?)`, [table_name, column_name, needles.map((x) => `%${x}%`)]);
      if (n) hits.push(`${table_name}.${column_name}`);
    }
    expect(hits).toEqual([]);
  });
});
