/**
 * Lockout without denial of service (issue 10 §9) over real HTTP: clients connect to the LRA
 * console from different loopback addresses (127.0.0.2, 127.0.0.3 …, the source the server sees).
 * Repeated failures from one address delay that address's attempts on that account (429 with
 * Retry-After, progressive); the operator signing in from another address is not blocked; after
 * the delay the first address may try again.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_THROTTLE } from "../../src/operators/login-throttle.ts";
import { startConsoleTestServer, type ConsoleTestServer } from "../helpers/console-client.ts";
import { createTestOperator, type TestOperator } from "../helpers/operators.ts";

let t: ConsoleTestServer;
let reviewer: TestOperator;

beforeAll(async () => {
  t = await startConsoleTestServer(["lra"]);
  reviewer = await createTestOperator(t.db, "lra_reviewer", { lraCode: "13-001" });
}, 120_000);

afterAll(async () => t?.cleanup());

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A JSON client of /lra connecting from `localAddress` (its own cookie jar and CSRF token). */
function clientFrom(localAddress: string) {
  const cookies = new Map<string, string>();
  let csrf = "";
  const request = (method: string, path: string, json?: unknown) =>
    new Promise<Reply>((resolve, reject) => {
      const url = new URL(`${t.server.url}/lra${path}`);
      const body = json === undefined ? undefined : JSON.stringify(json);
      const req = http.request(
        {
          host: url.hostname, port: url.port, path: url.pathname, method, localAddress,
          headers: {
            accept: "application/json",
            ...(cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {}),
            ...(body ? { "content-type": "application/json", "x-csrf-token": csrf } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            for (const c of res.headers["set-cookie"] ?? []) {
              const [pair] = c.split(";");
              const eq = pair.indexOf("=");
              cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
            }
            const text = Buffer.concat(chunks).toString("utf8");
            const parsed = text.startsWith("{") ? JSON.parse(text) : text;
            if (typeof parsed?.csrfToken === "string") csrf = parsed.csrfToken;
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return {
    async login(username: string, password: string, totp: string): Promise<Reply> {
      await request("GET", "/login");
      return request("POST", "/login", { username, password, totp });
    },
  };
}

describe("sign-in failures delay the source, not the account", () => {
  it("an attacker's address is delayed progressively; the operator at another address signs in", async () => {
    const attacker = clientFrom("127.0.0.2");
    for (let i = 0; i < LOGIN_THROTTLE.freeFailures + 1; i++) {
      const r = await attacker.login(reviewer.username, "guessed-password-1", "123456");
      expect(r.status, JSON.stringify(r.body)).toBe(401);
    }
    // Delayed now: even the right factors are refused from this address, before they are checked.
    const delayed = await attacker.login(reviewer.username, reviewer.password, "000000");
    expect(delayed.status).toBe(429);
    expect(Number(delayed.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(delayed.body).toMatchObject({ code: "login_throttled", errorJa: expect.stringContaining("秒") });

    // The operator at her own desk (another address) is not blocked.
    const desk = clientFrom("127.0.0.3");
    const ok = await desk.login(reviewer.username, reviewer.password, await reviewer.nextCode());
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.operator.username).toBe(reviewer.username);

    // The account was never locked; the attempts are audited with their source.
    const row = await t.db("operators").where({ username: reviewer.username }).first("locked_until");
    expect(row.locked_until).toBeNull();
    const failed = await t.db("audit_log").where({ action: "operator.login_failed" }).select("details");
    const details = failed.map((f) => (typeof f.details === "string" ? JSON.parse(f.details) : f.details));
    expect(details.filter((d) => d.ip === "127.0.0.2").length).toBe(LOGIN_THROTTLE.freeFailures + 1);

    // Another failure after the delay doubles it (progressive), still only for 127.0.0.2.
    let r = delayed;
    while (r.status === 429) {
      await new Promise((res) => setTimeout(res, Number(r.headers["retry-after"]) * 1000 + 50));
      r = await attacker.login(reviewer.username, "guessed-password-2", "123456");
    }
    expect(r.status).toBe(401);
    const again = await attacker.login(reviewer.username, "guessed-password-3", "123456");
    expect(again.status).toBe(429);
    const stored = await t.db("login_failures").where({ username: reviewer.username, source: "127.0.0.2" }).first("failures", "delayed_until", "last_failure_at");
    expect(stored.failures).toBe(LOGIN_THROTTLE.freeFailures + 2);
    expect(new Date(stored.delayed_until).getTime() - new Date(stored.last_failure_at).getTime()).toBe(2 * LOGIN_THROTTLE.baseDelayMs);

    // Once the delay has passed, the right factors from the attacker's address work too.
    let back = again;
    while (back.status === 429) {
      await new Promise((res) => setTimeout(res, Number(back.headers["retry-after"]) * 1000 + 50));
      back = await attacker.login(reviewer.username, reviewer.password, await reviewer.nextCode());
    }
    expect(back.status, JSON.stringify(back.body)).toBe(200);
  });
});
