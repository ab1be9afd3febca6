/**
 * The local card agent (`hpki card agent`, issue 14 §9): a small HTTP server on 127.0.0.1 that the
 * SSO center's login page calls from the browser, so a clinician logs in with the card without
 * copying a challenge through a terminal.
 *
 * - Only pages of the configured SSO origin may call it: every request must carry that exact
 *   `Origin` (Fetch standard §3.1 "CORS protocol"); any other Origin, or none, is answered 403
 *   without CORS headers, so the browser hides even the refusal from a foreign page. The preflight
 *   (OPTIONS) admits only that origin too, and answers Chromium's Private Network Access request
 *   header for it.
 * - The agent signs only an HPKI-SSO-LOGIN-2 challenge (challenge.ts) whose origin line is that
 *   same SSO origin and that has not expired; the signature binds origin, client and interaction,
 *   which the server checks again.
 * - Before it signs it shows, on its own console, which service (client name and id) and which SSO
 *   origin ask, then asks for the PIN locally (`obtainPin`: the terminal, or a PIN file for
 *   unattended tests) — never through the page. The page receives the same service description
 *   with the signed challenge.
 * - One signature at a time (a card, a PIN prompt).
 *
 *   GET  /v1/status  {agent: "hpki-card-agent", version: 1, ssoOrigin}
 *   POST /v1/sign    {challenge} → SignedChallenge + {service} | CardLoginFailure + {service}
 */
import http from "node:http";
import { z } from "zod";
import { PathValidationError } from "../pki/path-validation.ts";
import type { CardLoginFailure } from "../status/card-login-failure.ts";
import type { SignedChallenge } from "./card-agent.ts";
import { parseChallenge, type LoginChallenge } from "./challenge.ts";

/** Default port of the agent on 127.0.0.1 (HPKI_SSO_CARD_AGENT_PORT). */
export const DEFAULT_CARD_AGENT_PORT = 7390;

/** What the page is told about the request it made (and the console shows). */
export interface AgentService {
  clientId: string;
  clientName: string;
  origin: string;
}

/** Options of {@link startCardAgent}. */
export interface CardAgentOptions {
  /** The one origin whose pages may call the agent, e.g. "https://sso.example.jp". */
  ssoOrigin: string;
  /** Port on 127.0.0.1 (0: any free port). */
  port: number;
  /**
   * Signs the challenge text on the card after the PIN was obtained locally; returns the signed
   * challenge, or the card's refusal report (wrong or locked PIN).
   */
  sign: (challenge: LoginChallenge) => Promise<SignedChallenge | CardLoginFailure>;
  /** Where the agent tells the person what is asked (default: stdout). */
  say?: (line: string) => void;
}

/** A running agent. */
export interface CardAgent {
  url: string;
  close(): Promise<void>;
}

const signBody = z.object({ challenge: z.string().min(1).max(4096) }).strict();

/** The origin part of `url` (RFC 6454 §6.1); @throws when it is not an http(s) URL. */
export function originOf(url: string): string {
  const u = new URL(url);
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error(`not an http(s) origin: ${url}`);
  return u.origin;
}

/** The console lines shown before the PIN is asked for. */
export function describeRequest(s: AgentService): string[] {
  return [
    "ログイン要求 / Login request",
    `  サービス / service: ${s.clientName} (${s.clientId})`,
    `  SSO: ${s.origin}`,
  ];
}

/**
 * Starts the agent on 127.0.0.1 (see the module comment).
 * @throws when the port is taken or `ssoOrigin` is not an http(s) origin.
 */
export async function startCardAgent(opts: CardAgentOptions): Promise<CardAgent> {
  const ssoOrigin = originOf(opts.ssoOrigin);
  const say = opts.say ?? ((l: string) => process.stdout.write(`${l}\n`));
  let queue: Promise<unknown> = Promise.resolve();

  const send = (res: http.ServerResponse, status: number, body: unknown, cors: boolean) => {
    const h: Record<string, string> = { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", Vary: "Origin" };
    if (cors) h["Access-Control-Allow-Origin"] = ssoOrigin;
    res.writeHead(status, h).end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin !== ssoOrigin) {
      say(`拒否 / refused: a page of ${origin ?? "(no Origin)"} called the agent; only ${ssoOrigin} may`);
      return send(res, 403, { error: "origin-refused", message: `only pages of ${ssoOrigin} may use this agent`, messageJa: `${ssoOrigin} のページだけがこのエージェントを使えます` }, false);
    }
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "OPTIONS") {
      const h: Record<string, string> = {
        "Access-Control-Allow-Origin": ssoOrigin, "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600", Vary: "Origin",
      };
      if (req.headers["access-control-request-private-network"] === "true") h["Access-Control-Allow-Private-Network"] = "true";
      return void res.writeHead(204, h).end();
    }
    if (req.method === "GET" && path === "/v1/status") return send(res, 200, { agent: "hpki-card-agent", version: 1, ssoOrigin }, true);
    if (req.method !== "POST" || path !== "/v1/sign") return send(res, 404, { error: "not-found" }, true);
    if (!(req.headers["content-type"] ?? "").startsWith("application/json")) return send(res, 415, { error: "json-required" }, true);

    let raw = "";
    let tooLarge = false;
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      raw += d;
      if (raw.length > 8192) {
        tooLarge = true;
        req.destroy();
      }
    });
    req.on("end", () => {
      if (tooLarge) return;
      const job = queue.then(() => handleSign(raw, res));
      queue = job.catch(() => undefined);
    });
  });

  async function handleSign(raw: string, res: http.ServerResponse): Promise<void> {
    let challenge: LoginChallenge;
    try {
      const body = signBody.parse(JSON.parse(raw));
      challenge = parseChallenge(body.challenge.normalize("NFC").replace(/\r\n/g, "\n"));
      if (challenge.origin !== ssoOrigin || originOf(challenge.issuer) !== ssoOrigin) {
        throw new PathValidationError("challenge-invalid", `the challenge names the SSO origin ${challenge.origin}; this agent signs only for ${ssoOrigin}`);
      }
      if (challenge.expires.getTime() <= Date.now()) throw new PathValidationError("challenge-invalid", "the challenge has expired");
    } catch (e) {
      say(`拒否 / refused: ${(e as Error).message}`);
      return send(res, 400, { error: "challenge-invalid", message: (e as Error).message }, true);
    }
    const service: AgentService = { clientId: challenge.clientId, clientName: challenge.clientName, origin: challenge.origin };
    for (const l of describeRequest(service)) say(l);
    try {
      const out = await opts.sign(challenge);
      say("error" in out ? `カードが拒否しました / the card refused: ${out.error}` : "署名しました / signed");
      send(res, 200, { ...out, service }, true);
    } catch (e) {
      say(`失敗 / failed: ${(e as Error).message}`);
      send(res, 500, { error: "agent-failed", message: (e as Error).message, service }, true);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
