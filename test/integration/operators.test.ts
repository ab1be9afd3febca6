import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationError, ConflictError, ValidationError } from "../../src/pipeline/errors.ts";
import {
  LOCK_MINUTES,
  MAX_FAILED_LOGINS,
  addLra,
  addOperator,
  authenticate,
  listOperators,
  loadActiveOperator,
  setOperatorDisabled,
  totpCodeAt,
} from "../../src/web/auth/operators.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { createTestOperator } from "../helpers/operators.ts";

const ADMIN = { actor: "test-admin", role: "admin" };
let t: TestDb;

beforeAll(async () => {
  t = await openTestDatabase();
});
afterAll(async () => {
  await t?.cleanup();
});

describe("regional associations and operators", () => {
  it("creates an LRA (NFC name) and refuses a duplicate code", async () => {
    const lra = await addLra(t.db, { code: "27-001", name: "大阪府医師会".normalize("NFD") }, ADMIN);
    expect(lra.name).toBe("大阪府医師会".normalize("NFC"));
    await expect(addLra(t.db, { code: "27-001", name: "x" }, ADMIN)).rejects.toBeInstanceOf(ConflictError);
    await expect(addLra(t.db, { code: "bad", name: "" }, ADMIN)).rejects.toMatchObject({ status: 400, issues: expect.arrayContaining([expect.objectContaining({ field: "code" }), expect.objectContaining({ field: "name", messageJa: "必須項目です。" })]) });
  });

  it("stores only an argon2id hash, enforces the LRA scope rule and audits without secrets", async () => {
    const r = await addOperator(t.db, { username: "Reviewer1", role: "lra_reviewer", lraCode: "27-001", displayName: "審査 花子" }, ADMIN);
    expect(r.operator).toMatchObject({ username: "reviewer1", role: "lra_reviewer", displayName: "審査 花子" });
    expect(r.operator.lraId).toBeTypeOf("number");
    expect(r.password.length).toBeGreaterThanOrEqual(16);
    expect(r.otpauthUri).toMatch(/^otpauth:\/\/totp\/hpki-ca:reviewer1\?secret=[A-Z2-7]+/);
    const row = await t.db("operators").where({ id: r.operator.id }).first();
    expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(row.password_hash).not.toContain(r.password);
    const audit = await t.db("audit_log").where({ action: "operator.created" }).select("details");
    const text = JSON.stringify(audit);
    expect(text).toContain("reviewer1");
    expect(text).not.toContain(r.password);
    expect(text).not.toContain(r.totpSecret);
    await expect(addOperator(t.db, { username: "reviewer1", role: "lra_reviewer", lraCode: "27-001" }, ADMIN)).rejects.toBeInstanceOf(ConflictError);
    await expect(addOperator(t.db, { username: "r2", role: "lra_reviewer" }, ADMIN)).rejects.toMatchObject({ issues: [expect.objectContaining({ field: "lraCode" })] });
    await expect(addOperator(t.db, { username: "r3", role: "ra_officer", lraCode: "27-001" }, ADMIN)).rejects.toBeInstanceOf(ValidationError);
    await expect(addOperator(t.db, { username: "r4", role: "lra_manager", lraCode: "99-999" }, ADMIN)).rejects.toMatchObject({ issues: [expect.objectContaining({ field: "lraCode" })] });
    await expect(addOperator(t.db, { username: "r5", role: "root" }, ADMIN)).rejects.toMatchObject({ issues: [expect.objectContaining({ field: "role" })] });
    // The database refuses the scope rule being broken behind the service's back.
    await expect(t.db("operators").where({ id: r.operator.id }).update({ lra_id: null })).rejects.toThrow(/operators_lra_scope_check/);
  });

  it("signs in with password + TOTP; wrong factors, replays and disabled accounts are refused alike", async () => {
    const op = await createTestOperator(t.db, "ra_officer");
    const code = await op.nextCode();
    const signed = await authenticate(t.db, op.username, op.password, code);
    expect(signed).toEqual(op.operator);
    // Replay of the accepted code.
    const replay = authenticate(t.db, op.username, op.password, code);
    await expect(replay).rejects.toBeInstanceOf(AuthenticationError);
    await expect(authenticate(t.db, op.username, "wrong-password-123", await op.nextCode())).rejects.toMatchObject({ status: 401, message: new AuthenticationError().message });
    await expect(authenticate(t.db, op.username, op.password, "000000")).rejects.toMatchObject({ message: new AuthenticationError().message });
    await expect(authenticate(t.db, "nobody", op.password, code)).rejects.toMatchObject({ message: new AuthenticationError().message });
    const reasons = (await t.db("audit_log").where({ action: "operator.login_failed", object_id: String(op.operator.id) }).orderBy("seq").select("details")).map((r) => (typeof r.details === "string" ? JSON.parse(r.details) : r.details).reason);
    expect(reasons).toEqual(["totp_replay", "password", "totp"]);
    await setOperatorDisabled(t.db, op.username, true, ADMIN);
    expect(await loadActiveOperator(t.db, op.operator.id)).toBeNull();
    await expect(authenticate(t.db, op.username, op.password, await op.nextCode())).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("accepts the codes of the previous and next time steps, not further", async () => {
    const op = await createTestOperator(t.db, "auditor");
    const now = new Date();
    await expect(authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, new Date(now.getTime() - 90_000)))).rejects.toBeInstanceOf(AuthenticationError);
    await authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, new Date(now.getTime() - 30_000)), { now });
    await authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, new Date(now.getTime() + 30_000)), { now });
    // An earlier step than the last accepted one is refused even inside the window.
    await expect(authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, now), { now })).rejects.toBeInstanceOf(AuthenticationError);
  });

  it(`locks after ${MAX_FAILED_LOGINS} failures for ${LOCK_MINUTES} minutes`, async () => {
    const op = await createTestOperator(t.db, "ia_operator");
    for (let i = 0; i < MAX_FAILED_LOGINS; i++) {
      await expect(authenticate(t.db, op.username, "not-the-password", "123456")).rejects.toBeInstanceOf(AuthenticationError);
    }
    const row = await t.db("operators").where({ id: op.operator.id }).first("locked_until");
    expect(new Date(row.locked_until).getTime()).toBeGreaterThan(Date.now() + (LOCK_MINUTES - 1) * 60_000);
    // Right factors while locked: refused with the lock message; the code is not consumed.
    const code = await op.nextCode();
    await expect(authenticate(t.db, op.username, op.password, code)).rejects.toMatchObject({ messageJa: expect.stringContaining("ロック") });
    // After the lock: accepted.
    const later = new Date(Date.now() + (LOCK_MINUTES + 1) * 60_000);
    const lateCode = await totpCodeAt(op.totpSecret, later);
    expect((await authenticate(t.db, op.username, op.password, lateCode, { now: later })).id).toBe(op.operator.id);
    const listed = (await listOperators(t.db)).find((o) => o.id === op.operator.id)!;
    expect(listed).toMatchObject({ lockedUntil: null, disabled: false, lraCode: null });
  });
});
