/**
 * The emergency hold form finds the card by what a caller knows (issue 12 §7, built with §4's
 * search keys): name with 異体字 (高橋 finds 髙橋), birth date in 和暦, licence number in
 * full-width digits — on cards issued by the real IA worker onto SoftHSM cards — and the hold is
 * then filed on the card found.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatWareki } from "../../src/pipeline/wareki.ts";
import { mountRevocationRoutes } from "../../src/registration/revocation-routes.ts";
import { consoleRoleServer, createConsoleRouter } from "../../src/web/console/router.ts";
import type { RoleDeps, RoleName } from "../../src/web/role.ts";
import { ROLE_FACTORIES, startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { ConsoleClient } from "../helpers/console-client.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";
import { issueSubscribers, setUpRegistration, type IssuedSubscriber, type Staff } from "../integration/revocation-workflow-fixture.ts";

let t: TestIa;
let s: Staff;
let subs: IssuedSubscriber[];
let server: StartedServer;
let officer: ConsoleClient;
let saved: (typeof ROLE_FACTORIES)["ra"] | undefined;

beforeAll(async () => {
  t = await openTestIa("emergency-card-search");
  s = await setUpRegistration(t);
  subs = await issueSubscribers(t, s, 3);
  saved = ROLE_FACTORIES.ra;
  ROLE_FACTORIES.ra = async () => async (deps: RoleDeps) => consoleRoleServer("ra", createConsoleRouter(deps, {
    console: "ra", roles: ["ra_officer", "ra_approver"], sessionSecret: "test-emergency-search-secret-0123456789", logger: pino({ level: "silent" }),
    mount: (router, kit) => mountRevocationRoutes(router, kit),
  }));
  server = await startServer({ cfg: t.ctx.cfg, db: t.ctx.db, roles: ["ra"] as RoleName[], port: 0 });
  officer = new ConsoleClient(server.url, "/ra");
  await officer.login(s.officer);
}, 300_000);
afterAll(async () => {
  await server?.close();
  if (saved) ROLE_FACTORIES.ra = saved;
  await t?.cleanup();
});

describe("emergency form: the card found by what a caller knows", () => {
  it("finds the card by name (異体字), 和暦 birth date or full-width licence number, and holds it", async () => {
    const apps = await t.ctx.db("applications").whereIn("id", subs.map((x) => x.applicationId)).select("id", "name_kanji", "birth_date", "licence_number");
    const takahashi = apps.find((a) => String(a.name_kanji).startsWith("髙橋"));
    expect(takahashi, "the demo register's 髙橋 is among the first subscribers").toBeDefined();
    const sub = subs.find((x) => x.applicationId === Number(takahashi.id))!;
    const found = async (q: string) => ((await officer.getJson(`/revocations/emergency?q=${encodeURIComponent(q)}`)).json().targets as { cardLabel: string }[]).map((h) => h.cardLabel);
    expect(await found("高橋")).toEqual([sub.cardLabel]);
    expect(await found("高橋 誠")).toEqual([sub.cardLabel]);
    const birth = await t.ctx.db.raw("SELECT to_char(birth_date, 'YYYY-MM-DD') AS d FROM applications WHERE id = ?", [takahashi.id]).then((r: { rows: { d: string }[] }) => r.rows[0].d);
    expect(await found(formatWareki(birth)!)).toContain(sub.cardLabel);
    expect(await found(String(takahashi.licence_number).replace(/\d/g, (d) => String.fromCharCode(d.charCodeAt(0) + 0xfee0)))).toEqual([sub.cardLabel]);
    // The page shows the hit with its birth date (era year beside it) and a link that prefills the form.
    const page = await officer.get(`/revocations/emergency?q=${encodeURIComponent("高橋")}`, { accept: "html" });
    expect(page.text).toContain(`/ra/revocations/emergency?targetKind&#x3D;card&amp;cardLabel&#x3D;${encodeURIComponent(sub.cardLabel)}`);
    expect(page.text).toMatch(/\d{4}年（昭和\d+年）\d+月\d+日/);
    const hold = await officer.postJson("/revocations/emergency", {
      targetKind: "card", cardLabel: sub.cardLabel, reason: "certificateHold", callerVerification: "氏名・生年月日・登録番号を電話で確認", grounds: "カード紛失の電話連絡",
    });
    expect(hold.status, hold.text).toBe(201);
    expect(hold.json().request).toMatchObject({ cardLabel: sub.cardLabel, emergency: true });
    // The revocation list finds the request by the subscriber's name, 異体字 folded.
    const listed = (await officer.getJson(`/revocations?q=${encodeURIComponent("高橋")}`)).json().requests as { requestNo: string }[];
    expect(listed.map((r) => r.requestNo)).toEqual([hold.json().request.requestNo]);
    expect((await officer.getJson(`/revocations?q=${encodeURIComponent("山崎")}`)).json().requests).toEqual([]);
  });
});
