/**
 * An HTTP client for the consoles in tests (and the demo): a cookie jar, the CSRF token, and
 * sign-in with password + TOTP. Requests go over real HTTP (fetch) to a started server.
 *
 *   const c = new ConsoleClient(server.url, "/lra");
 *   await c.login(reviewer);                         // TestOperator from ./operators.ts
 *   const r = await c.postJson("/applications", {...}); // X-CSRF-Token sent automatically
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.ts";
import { importLicenceRegister } from "../../src/pipeline/licence-register.ts";
import type { Db } from "../../src/store/db.ts";
import type { RoleName } from "../../src/web/role.ts";
import { startServer, type StartedServer } from "../../src/web/server.ts";
import { openTestDatabase } from "./db.ts";
import type { TestOperator } from "./operators.ts";
import { DEMO_LICENCE_REGISTER } from "./pipeline.ts";

export interface ConsoleResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON. */
  json(): any;
  /** Set-Cookie headers of this response. */
  setCookies: string[];
}

export interface RequestOptions {
  /** "json" (default for getJson/postJson) or "html" Accept header. */
  accept?: "json" | "html";
  /** URL-encoded form body (the `_csrf` field is added unless csrf is false). */
  form?: Record<string, string>;
  json?: unknown;
  /** Raw body with its own headers (multipart). */
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Send the CSRF token (header, and `_csrf` in forms); default true. */
  csrf?: boolean;
}

export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  csrfToken: string | undefined;

  /** `origin` like "http://127.0.0.1:1234"; `base` the console prefix ("/lra"). */
  constructor(
    readonly origin: string,
    readonly base: string,
  ) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private absorb(res: Response): string[] {
    const set = res.headers.getSetCookie();
    for (const c of set) {
      const [pair, ...attrs] = c.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && new Date(a.split("=")[1]).getTime() < Date.now()));
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return set;
  }

  /** One request to base + path (no redirect following). */
  async request(method: string, path: string, o: RequestOptions = {}): Promise<ConsoleResponse> {
    const headers: Record<string, string> = { accept: o.accept === "html" ? "text/html" : "application/json", ...o.headers };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    const csrf = o.csrf !== false && method !== "GET" && method !== "HEAD" ? this.csrfToken : undefined;
    if (csrf) headers["x-csrf-token"] = csrf;
    let body: BodyInit | undefined = o.body;
    if (o.form) {
      body = new URLSearchParams({ ...(csrf ? { _csrf: csrf } : {}), ...o.form });
      headers["content-type"] = "application/x-www-form-urlencoded";
    } else if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers["content-type"] = "application/json";
    }
    const res = await fetch(`${this.origin}${this.base}${path}`, { method, headers, body, redirect: "manual" });
    const setCookies = this.absorb(res);
    const text = await res.text();
    const r: ConsoleResponse = { status: res.status, headers: res.headers, text, setCookies, json: () => JSON.parse(text) };
    if ((res.headers.get("content-type") ?? "").includes("json")) {
      const token = (JSON.parse(text) as { csrfToken?: unknown })?.csrfToken;
      if (typeof token === "string") this.csrfToken = token;
    } else {
      const m = /name="_csrf" value="([^"]+)"/.exec(text);
      if (m) this.csrfToken = m[1];
    }
    return r;
  }

  get(path: string, o: RequestOptions = {}): Promise<ConsoleResponse> {
    return this.request("GET", path, o);
  }
  post(path: string, o: RequestOptions = {}): Promise<ConsoleResponse> {
    return this.request("POST", path, o);
  }
  getJson(path: string): Promise<ConsoleResponse> {
    return this.request("GET", path, { accept: "json" });
  }
  postJson(path: string, json: unknown): Promise<ConsoleResponse> {
    return this.request("POST", path, { accept: "json", json });
  }

  /**
   * Signs in over JSON (GET /login for the CSRF token, POST /login with a fresh TOTP code).
   * Returns the POST response; throws unless it is 200.
   */
  async login(op: Pick<TestOperator, "username" | "password" | "nextCode">): Promise<ConsoleResponse> {
    const r = await this.tryLogin(op.username, op.password, await op.nextCode());
    if (r.status !== 200) throw new Error(`login of ${op.username} to ${this.base}: ${r.status} ${r.text}`);
    return r;
  }

  /**
   * Multipart POST of `fields` plus one file part `file` (the console's upload routes); the CSRF
   * token goes in the X-CSRF-Token header and, as the foundation documents for multipart, the query.
   */
  upload(path: string, fields: Record<string, string>, file: { filename: string; bytes: Buffer; type?: string }): Promise<ConsoleResponse> {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append("file", new Blob([new Uint8Array(file.bytes)], { type: file.type ?? "application/octet-stream" }), file.filename);
    const q = this.csrfToken ? `${path.includes("?") ? "&" : "?"}_csrf=${encodeURIComponent(this.csrfToken)}` : "";
    return this.request("POST", `${path}${q}`, { accept: "json", body: form });
  }

  /** GET /login then POST /login with these credentials; returns the POST response. */
  async tryLogin(username: string, password: string, totp: string): Promise<ConsoleResponse> {
    await this.getJson("/login");
    return this.postJson("/login", { username, password, totp });
  }
}

/** A started HTTP server over a fresh test database with the licence register loaded. */
export interface ConsoleTestServer {
  db: Db;
  server: StartedServer;
  /** A client of console `base` signed in as `op` (one TOTP code used). */
  signIn(base: string, op: Pick<TestOperator, "username" | "password" | "nextCode">): Promise<ConsoleClient>;
  cleanup(): Promise<void>;
}

/**
 * Starts the real role servers `roles` (port 0) on a fresh database (Postgres with DATABASE_URL,
 * else PGlite) with the demo licence register imported; call cleanup() in afterAll.
 */
export async function startConsoleTestServer(roles: RoleName[] = ["lra", "ra"]): Promise<ConsoleTestServer> {
  const t = await openTestDatabase();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-consoles-"));
  await importLicenceRegister(t.db, fs.readFileSync(DEMO_LICENCE_REGISTER), { actor: "test", role: "ra" });
  const cfg = loadConfig({ HPKI_HOME: home, HPKI_SESSION_SECRET: "e2e-console-secret-0123456789abcdef" });
  const server = await startServer({ cfg, db: t.db, roles, port: 0 });
  return {
    db: t.db,
    server,
    async signIn(base, op) {
      const c = new ConsoleClient(server.url, base);
      await c.login(op);
      return c;
    },
    async cleanup() {
      await server.close();
      await t.cleanup();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
