/**
 * A minimal user agent for OpenID flows in tests: real HTTP through fetch (or https.request with
 * a client certificate), a cookie jar keyed by cookie name, manual redirects so each hop can be
 * inspected. Cookie paths and domains are not modelled: every cookie goes to every request.
 */
import https from "node:https";

export interface Hop {
  status: number;
  url: string;
  location?: string;
  body: string;
  json?: unknown;
}

export class TestBrowser {
  readonly cookies = new Map<string, string>();

  private store(setCookies: string[]): void {
    for (const c of setCookies) {
      const [pair, ...attrs] = c.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const expired = attrs.some((a) => /^\s*expires=.*1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(i + 1).trim());
    }
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  /** One request, no redirect following. `body` objects are sent as JSON, URLSearchParams as a form. */
  async request(url: string, init: { method?: string; body?: unknown; json?: boolean } = {}): Promise<Hop> {
    const headers: Record<string, string> = { cookie: this.cookieHeader() };
    if (init.json) headers.accept = "application/json";
    let body: string | undefined;
    if (init.body instanceof URLSearchParams) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = init.body.toString();
    } else if (init.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.body);
    }
    const r = await fetch(url, { method: init.method ?? (body ? "POST" : "GET"), headers, body, redirect: "manual" });
    this.store(r.headers.getSetCookie());
    const text = await r.text();
    return { status: r.status, url, location: r.headers.get("location") ?? undefined, body: text, json: parseJson(text) };
  }

  /** GET over TLS with a client certificate (PEM key + certificate), trusting `ca` for the server. */
  async tlsGet(url: string, tls: { key?: string; cert?: string; ca: string }): Promise<Hop> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: "GET", key: tls.key, cert: tls.cert, ca: tls.ca, headers: { cookie: this.cookieHeader(), accept: "application/json" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const sc = res.headers["set-cookie"];
          this.store(sc ?? []);
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, url, location: res.headers.location, body: text, json: parseJson(text) });
        });
      });
      req.on("error", reject);
      req.end();
    });
  }

  /**
   * Follows redirects from `url` until a Location starts with `stopAt` (returned, not fetched) or a
   * non-redirect answer. Relative Locations resolve against the current URL.
   */
  async follow(url: string, stopAt: string, max = 10): Promise<{ last: Hop; stoppedAt?: string }> {
    let current = url;
    for (let i = 0; i < max; i++) {
      const hop = await this.request(current);
      if (!hop.location || hop.status < 300 || hop.status >= 400) return { last: hop };
      const next = new URL(hop.location, current).toString();
      if (next.startsWith(stopAt)) return { last: hop, stoppedAt: next };
      current = next;
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
