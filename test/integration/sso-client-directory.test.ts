/**
 * The SSO process's copy of the registered clients (src/sso/client-directory.ts) on a real
 * Postgres: repeated lookups are served from memory, a change committed through clients.ts by
 * another connection (the CLI, another SSO worker) is seen as soon as its NOTIFY arrives, one this
 * process commits at its commit, a read
 * overtaken by a notification is not kept, and without the LISTEN every lookup reads the table.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { ClientDirectory } from "../../src/sso/client-directory.ts";
import { PORTAL_CLIENT_ID, registerClient, setClientDisabled, updateClient } from "../../src/sso/clients.ts";
import { openDatabase, type Db } from "../../src/store/db.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";

const admin = { actor: "admin", role: "admin" };
const issuer = "https://sso.example.jp/sso";
let t: TestDb;
/** A second connection pool on the same database: the CLI or another SSO worker. */
let other: Db;
let dir: ClientDirectory;
const clientReads: string[] = [];

beforeAll(async () => {
  t = await openTestDatabase();
  other = await openDatabase(loadConfig({ HPKI_HOME: "/nonexistent" }), { databaseUrl: t.url });
  await registerClient(t.db, { clientId: "emr", name: "電子カルテ", redirectUris: ["https://emr.example.jp/cb"], allowedHcRoles: ["Medical Doctor"], accountMapping: "pairwise" }, admin);
  t.db.on("query", (q: { sql: string }) => {
    if (q.sql.includes("sso_clients")) clientReads.push(q.sql);
  });
  dir = await ClientDirectory.open(t.db, issuer);
});

afterAll(async () => {
  await dir?.close();
  await other?.destroy();
  await t?.cleanup();
});

describe("ClientDirectory", () => {
  it("reads a client once and then answers from memory; the built-in portal from memory, unknown ids never remembered", async () => {
    clientReads.length = 0;
    expect((await dir.get("emr"))?.name).toBe("電子カルテ");
    for (let i = 0; i < 5; i++) expect((await dir.get("emr"))?.clientId).toBe("emr");
    expect(clientReads).toHaveLength(1);
    expect((await dir.get(PORTAL_CLIENT_ID))?.redirectUris).toEqual([`${issuer}/portal/callback`]);
    expect(await dir.get("nobody")).toBeUndefined();
    expect(await dir.get("nobody")).toBeUndefined();
    // Unknown ids are read each time (never remembered), the portal never.
    expect(clientReads).toHaveLength(3);
  });

  it("sees a change committed on another connection once its notification arrives", async () => {
    await updateClient(other, "emr", { name: "電子カルテ", redirectUris: ["https://emr.example.jp/cb"], allowedHcRoles: ["Medical Doctor", "Dentist"], accountMapping: "pairwise" }, admin);
    await waitFor(async () => (await dir.get("emr"))!.allowedHcRoles.includes("Dentist"), "the update seen by the directory");
    await setClientDisabled(other, "emr", true, admin);
    await waitFor(async () => (await dir.get("emr"))!.disabled, "the client seen disabled");
    await setClientDisabled(other, "emr", false, admin);
    await waitFor(async () => !(await dir.get("emr"))!.disabled, "the client seen enabled again");
  });

  it("a change this process commits applies at its commit, before the notice comes back", async () => {
    expect((await dir.get("emr"))!.name).toBe("電子カルテ"); // a copy in memory
    await updateClient(t.db, "emr", { name: "電子カルテ（新）", redirectUris: ["https://emr.example.jp/cb"], allowedHcRoles: ["Medical Doctor", "Dentist"], accountMapping: "pairwise" }, admin);
    // No waiting: the next lookup already reads the new settings.
    expect((await dir.get("emr"))!.name).toBe("電子カルテ（新）");
  });

  it("does not keep a read that a notification overtook", async () => {
    dir.forget();
    const reading = dir.get("emr"); // reads the table
    dir.forget("emr"); // a notification arrives while the read is under way
    await reading;
    clientReads.length = 0;
    await dir.get("emr");
    expect(clientReads).toHaveLength(1);
  });

  it("without its LISTEN connection, reads the table every time", async () => {
    const closed = await ClientDirectory.open(t.db, issuer);
    await closed.close();
    clientReads.length = 0;
    await closed.get("emr");
    await closed.get("emr");
    expect(clientReads).toHaveLength(2);
  });
});
