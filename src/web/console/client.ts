/**
 * An HTTP client for the consoles' JSON interface (Accept: application/json): a cookie jar, the
 * CSRF token (sent as X-CSRF-Token, or `_csrf` in forms and the query of multipart posts), and
 * sign-in with password + TOTP. Used by `hpki demo` to drive the consoles over real HTTP, and by
 * the tests (test/helpers/console-client.ts adds sign-in for test operators).
 *
 *   const c = new ConsoleClient("http://127.0.0.1:8080", "/lra");
 *   await c.signIn("reviewer", password, totpCode);
 *   const r = await c.postJson("/applications", {...});
 */
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

  /** The session cookie and, for a state-changing method, the CSRF token header. */
  private sessionHeaders(method: string, sendCsrf = true): { headers: Record<string, string>; csrf: string | undefined } {
    const headers: Record<string, string> = {};
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    const csrf = sendCsrf && method !== "GET" && method !== "HEAD" ? this.csrfToken : undefined;
    if (csrf) headers["x-csrf-token"] = csrf;
    return { headers, csrf };
  }

  /** One request to base + path (no redirect following). */
  async request(method: string, path: string, o: RequestOptions = {}): Promise<ConsoleResponse> {
    const session = this.sessionHeaders(method, o.csrf !== false);
    const csrf = session.csrf;
    const headers: Record<string, string> = { accept: o.accept === "html" ? "text/html" : "application/json", ...o.headers, ...session.headers };
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

  /**
   * A request whose answer is a document (a PDF: receipt forms, a PIN mailer), with the session
   * and CSRF token: its status, content type and bytes (not decoded as text).
   */
  async bytes(method: "GET" | "POST", path: string, accept = "application/pdf"): Promise<{ status: number; type: string; bytes: Buffer }> {
    const { headers } = this.sessionHeaders(method);
    const res = await fetch(`${this.origin}${this.base}${path}`, { method, headers: { ...headers, accept }, redirect: "manual" });
    this.absorb(res);
    return { status: res.status, type: res.headers.get("content-type") ?? "", bytes: Buffer.from(await res.arrayBuffer()) };
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
   * Signs in over JSON (GET /login for the CSRF token, POST /login). Throws unless it is 200.
   */
  async signIn(username: string, password: string, totp: string): Promise<ConsoleResponse> {
    const r = await this.tryLogin(username, password, totp);
    if (r.status !== 200) throw new Error(`sign-in of ${username} to ${this.base}: ${r.status} ${r.text}`);
    return r;
  }

  /** GET /login then POST /login with these credentials; returns the POST response. */
  async tryLogin(username: string, password: string, totp: string): Promise<ConsoleResponse> {
    await this.getJson("/login");
    return this.postJson("/login", { username, password, totp });
  }

  /**
   * Multipart POST of `fields` plus one file part (`fileField`, default "file"). The CSRF token
   * goes in the X-CSRF-Token header and, as the console documents for multipart, the query.
   */
  upload(path: string, fields: Record<string, string>, file: { filename: string; bytes: Buffer; type?: string }, fileField = "file"): Promise<ConsoleResponse> {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append(fileField, new Blob([new Uint8Array(file.bytes)], { type: file.type ?? "application/octet-stream" }), file.filename);
    const q = this.csrfToken ? `${path.includes("?") ? "&" : "?"}_csrf=${encodeURIComponent(this.csrfToken)}` : "";
    return this.request("POST", `${path}${q}`, { accept: "json", body: form });
  }
}
