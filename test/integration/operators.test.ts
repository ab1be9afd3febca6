import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationError, ConflictError, ValidationError } from "../../src/pipeline/errors.ts";
import {
  addLra,
  addOperator,
  authenticate,
  listOperators,
  loadActiveOperator,
  setOperatorDisabled,
  totpCodeAt,
} from "../../src/operators/operators.ts";
import path from "node:path";
import { hash as argon2Hash } from "@node-rs/argon2";
import { loadConfig } from "../../src/config.ts";
import { operatorSecrets, sealPlaintextTotpSecrets, useOperatorSecrets } from "../../src/operators/operator-secrets.ts";
import { LOGIN_THROTTLE, LoginThrottledError, sourceKey, throttleDelayMs } from "../../src/operators/login-throttle.ts";
import { openTestDatabase, type TestDb } from "../helpers/db.ts";
import { createTestOperator, ensureTestOperatorSecrets } from "../helpers/operators.ts";

const ADMIN = { actor: "test-admin", role: "admin" };
let t: TestDb;

beforeAll(async () => {
  t = await openTestDatabase();
  await ensureTestOperatorSecrets(t.db);
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

  it("delays an account+source pair progressively after failures, never other sources, and never locks the account", async () => {
    const op = await createTestOperator(t.db, "ia_operator");
    const now = new Date();
    const from = (ip: string, at = now) => ({ ip, now: at });
    for (let i = 0; i < LOGIN_THROTTLE.freeFailures; i++) {
      await expect(authenticate(t.db, op.username, "not-the-password", "123456", from("198.51.100.7"))).rejects.toBeInstanceOf(AuthenticationError);
    }
    // One more failure: the pair is delayed by the base delay (then 2x, 4x ... up to the cap).
    await expect(authenticate(t.db, op.username, "not-the-password", "123456", from("198.51.100.7"))).rejects.toBeInstanceOf(AuthenticationError);
    const refused = authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, now), from("198.51.100.7"));
    await expect(refused).rejects.toBeInstanceOf(LoginThrottledError);
    await expect(refused).rejects.toMatchObject({ status: 429, retryAfterSeconds: 1, messageJa: expect.stringContaining("秒") });
    // Another source with the right factors signs in at once; the account was never locked.
    expect((await authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, now), from("203.0.113.9"))).id).toBe(op.operator.id);
    const listed = (await listOperators(t.db)).find((o) => o.id === op.operator.id)!;
    expect(listed).toMatchObject({ lockedUntil: null, disabled: false, lraCode: null });
    // After the delay the first source may try again (a success clears its count).
    const later = new Date(now.getTime() + 31_000);
    expect((await authenticate(t.db, op.username, op.password, await totpCodeAt(op.totpSecret, later), from("198.51.100.7", later))).id).toBe(op.operator.id);
    expect(await t.db("login_failures").where({ username: op.username, source: "198.51.100.7" }).first()).toBeUndefined();
    // Unknown user names are counted and delayed the same way (nothing tells which exist).
    for (let i = 0; i <= LOGIN_THROTTLE.freeFailures; i++) {
      await expect(authenticate(t.db, "no-such-user", "whatever-password", "123456", from("198.51.100.8"))).rejects.toBeInstanceOf(AuthenticationError);
    }
    await expect(authenticate(t.db, "no-such-user", "whatever-password", "123456", from("198.51.100.8"))).rejects.toBeInstanceOf(LoginThrottledError);
  });

  it("throttle policy: delays double from the base and stop at the cap; sources by address (IPv6 /64)", () => {
    const { freeFailures: f, baseDelayMs: b, maxDelayMs: cap } = LOGIN_THROTTLE;
    expect([f - 1, f, f + 1, f + 2, f + 3].map((n) => throttleDelayMs(n, f))).toEqual([0, 0, b, 2 * b, 4 * b]);
    expect(throttleDelayMs(f + 40, f)).toBe(cap);
    expect(sourceKey("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(sourceKey("2001:db8:1:2:aaaa::1")).toBe(sourceKey("2001:0db8:0001:0002:bbbb:cccc:dddd:eeee"));
    expect(sourceKey("2001:db8:1:2::1")).not.toBe(sourceKey("2001:db8:1:3::1"));
    expect(sourceKey(undefined)).toBe("local");
  });
});

describe("TOTP secrets at rest (issue 10 §6)", () => {
  it("are stored sealed, bound to their row: nothing in the clear, a copied value does not open", async () => {
    const a = await createTestOperator(t.db, "ra_officer");
    const b = await createTestOperator(t.db, "ra_officer");
    const rows = await t.db("operators").whereIn("id", [a.operator.id, b.operator.id]).orderBy("id").select("id", "totp_secret", "totp_sealed");
    for (const r of rows) {
      expect(r.totp_secret).toBeNull();
      expect(Buffer.from(r.totp_sealed).length).toBeGreaterThan(32);
    }
    const dump = (await t.db.raw("SELECT o::text AS t FROM operators o")).rows.map((r: { t: string }) => r.t).join("\n");
    for (const op of [a, b]) {
      expect(dump).not.toContain(op.totpSecret);
      expect(dump).not.toContain(Buffer.from(op.totpSecret).toString("hex"));
    }
    const secrets = await operatorSecrets(t.db);
    expect(await secrets.open(a.operator.id, rows[0].totp_sealed)).toBe(a.totpSecret);
    await expect(secrets.open(b.operator.id, rows[0].totp_sealed)).rejects.toMatchObject({ code: "SEAL_OPEN_FAILED" });
    // A plaintext column cannot be written next to the sealed one.
    await expect(t.db("operators").where({ id: a.operator.id }).update({ totp_secret: "JBSWY3DPEHPK3PXP" })).rejects.toThrow(/operators_totp_one_form/);
  });

  it("secrets an earlier version stored in the clear are sealed and erased when the key is opened, audited, and still sign in", async () => {
    const old = await openTestDatabase();
    try {
      const lra = await old.db("lras").insert({ code: "13-001", name: "東京都医師会" }).returning("id");
      const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
      const hash = await argon2Hash("an-old-password-123", { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 });
      await old.db("operators").insert({ username: "legacy", display_name: "旧 太郎", role: "lra_reviewer", lra_id: lra[0].id, password_hash: hash, totp_secret: secret });
      const h = await useOperatorSecrets(loadConfig({ HPKI_HOME: path.dirname(path.dirname(process.env.SOFTHSM2_CONF!)) }), old.db);
      try {
        const row = await old.db("operators").where({ username: "legacy" }).first();
        expect(row.totp_secret).toBeNull();
        expect(row.totp_sealed).not.toBeNull();
        const dump = (await old.db.raw("SELECT o::text AS t FROM operators o")).rows.map((r: { t: string }) => r.t).join("\n");
        expect(dump).not.toContain(secret);
        const audit = await old.db("audit_log").where({ action: "operator.totp-sealed" }).select("details");
        expect(audit).toHaveLength(1);
        expect(JSON.stringify(audit)).toContain("legacy");
        expect(JSON.stringify(audit)).not.toContain(secret);
        const op = await authenticate(old.db, "legacy", "an-old-password-123", await totpCodeAt(secret));
        expect(op.username).toBe("legacy");
        // Opened again (another process, a restart): nothing left to seal, no second record.
        expect(await sealPlaintextTotpSecrets(old.db, h.secrets)).toEqual([]);
      } finally {
        await h.release();
      }
    } finally {
      await old.cleanup();
    }
  });
});
