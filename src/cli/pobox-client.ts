/**
 * The client side of the PO box for `hpki pobox` (issue 15 §5): the card sign-in through the SSO
 * center (the CLI follows the OIDC redirects itself, signs the SSO challenge on the card, and gets
 * a bearer token back from the box's callback), the session file holding that token, and the JSON
 * API calls. The box never receives a plaintext: envelopes are made and opened here.
 */
import fs from "node:fs";
import path from "node:path";
import type { CardStation } from "../hsm/cards.ts";
import { signLoginChallenge } from "../sso/card-agent.ts";

export interface PoboxSession {
  box: string;
  token: string;
  account?: { subscriberId: string; kind: string };
}

/** Where the session is kept: $HPKI_HOME/pobox-session.json (0600) unless given. */
export function sessionFile(home: string, file?: string): string {
  return file ?? path.join(home, "pobox-session.json");
}

export function readSession(file: string): PoboxSession {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as PoboxSession;
  } catch {
    throw Object.assign(new Error(`not signed in to a PO box (${file}): run hpki pobox login`), { messageJa: "私書箱にサインインしていません: hpki pobox login を実行してください" });
  }
}

export function writeSession(file: string, s: PoboxSession): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(s), { mode: 0o600 });
}

/** A minimal cookie jar over fetch with manual redirects (enough for the OIDC round trip). */
class Browser {
  private readonly cookies = new Map<string, Map<string, string>>();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const u = new URL(url);
    const jar = this.cookies.get(u.host);
    const headers = new Headers(init.headers);
    if (jar?.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      if (i <= 0) continue;
      if (!this.cookies.has(u.host)) this.cookies.set(u.host, new Map());
      this.cookies.get(u.host)!.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return res;
  }

  /** Follows redirects from `url` until `stop(url)` or a non-redirect; returns the last URL and response. */
  async follow(url: string, stop: (u: string) => boolean, init: RequestInit = {}): Promise<{ url: string; res?: Response }> {
    let current = url;
    for (let i = 0; i < 20; i++) {
      if (stop(current)) return { url: current };
      const res = await this.request(current, i === 0 ? init : { headers: init.headers });
      const loc = res.headers.get("location");
      if (res.status < 300 || res.status >= 400 || !loc) return { url: current, res };
      await res.arrayBuffer();
      current = new URL(loc, current).toString();
    }
    throw new Error("too many redirects");
  }
}

/**
 * Signs in at the PO box `box` (its base URL, e.g. http://host/pobox) with the card: the box
 * sends us to the SSO center, whose challenge the card signs (PIN), and the box's callback
 * answers the bearer token. @throws Error with the SSO center's or the box's refusal.
 */
export async function loginWithCard(box: string, cards: CardStation, card: { label: string; pin: string }): Promise<PoboxSession> {
  const b = new Browser();
  const json = { headers: { accept: "application/json" } };
  const toInteraction = await b.follow(`${box}/login?client=cli`, (u) => u.includes("/interaction/"), json);
  if (!toInteraction.url.includes("/interaction/")) throw new Error(`the PO box did not send us to the SSO center (${toInteraction.res?.status} ${await toInteraction.res?.text()})`);
  const page = await (await b.request(toInteraction.url, json)).json() as { challenge: string; submit: string };
  const signed = await signLoginChallenge(cards, card.label, card.pin, page.challenge);
  const done = await b.request(new URL(page.submit, toInteraction.url).toString(), { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(signed) });
  const d = await done.json() as { redirectTo?: string; error?: string; message?: string };
  if (!d.redirectTo) throw new Error(`the SSO center refused the sign-in: ${d.message ?? d.error ?? done.status}`);
  const back = await b.follow(new URL(d.redirectTo, toInteraction.url).toString(), () => false, json);
  // The SSO center asks the person to allow a scope (consent page): the box's registration lacks
  // subscriber among its default scopes (docs/POBOX.md); a terminal client does not answer for the person.
  if (back.url.includes("/interaction/")) {
    throw new Error("the SSO center asks for consent to the PO box's scopes: register the box with --default-scope subscriber (docs/POBOX.md) / SSO センターが私書箱のスコープへの同意を求めています（docs/POBOX.md 参照）");
  }
  const body = await back.res?.text();
  let r: { token?: string; account?: { subscriberId: string; kind: string }; message?: string };
  try {
    r = JSON.parse(body ?? "{}");
  } catch {
    throw new Error(`the PO box answered ${back.res?.status} at ${back.url}: ${body?.slice(0, 300)}`);
  }
  if (!r.token) throw new Error(`the PO box refused the sign-in: ${r.message ?? back.res?.status}`);
  return { box, token: r.token, account: r.account };
}

/** A refusal of the box, with its code and Japanese text. */
export class PoboxClientError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly messageJa?: string) {
    super(message);
  }
}

/** Calls the box's JSON API; binary answers (envelopes) come back as Buffer. */
export async function boxCall<T = unknown>(s: PoboxSession, method: string, p: string, body?: unknown): Promise<T> {
  const res = await fetch(`${s.box}/api${p}`, {
    method, headers: { authorization: `Bearer ${s.token}`, accept: "application/json, application/cms", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.headers.get("content-type")?.startsWith("application/cms")) return Buffer.from(await res.arrayBuffer()) as T;
  const j = await res.json().catch(() => ({})) as Record<string, string>;
  if (!res.ok) throw new PoboxClientError(res.status, j.error ?? "error", j.message ?? `HTTP ${res.status}`, j.messageJa);
  return j as T;
}
