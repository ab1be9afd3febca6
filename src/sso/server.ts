/**
 * The `sso` role of `hpki serve` (DESIGN §7, issue 5): the OpenID provider mounted at /sso, the
 * card-login interaction, the portal and the account-link API, plus an optional dedicated HTTPS
 * listener for TLS client authentication.
 *
 * Routes under /sso (before oidc-provider's own):
 *   GET  /interaction/:uid           login page with a fresh challenge (JSON with Accept: application/json);
 *                                    at a consent prompt: granted at once when every scope asked for is a
 *                                    default of the client or approved before, else the consent page (consent.ts)
 *   POST /interaction/:uid/consent   {decision: approve|deny, csrf}: approve grants and remembers the scopes;
 *                                    deny sends access_denied (with state) to the relying party
 *   POST /interaction/:uid/card      signed challenge {challenge, certificate, signature} (JSON or form)
 *   GET  /assets/card-agent-login.js the login page's script: asks the local card agent (`hpki card agent`,
 *                                    card-agent-server.ts) to sign the challenge, else explains how to start it
 *   POST /interaction/:uid/abort     "return to the service": the relying party gets error=access_denied
 *                                    (RFC 6749 §4.1.2.1) with an error_description in the request's language
 *   GET  /interaction/:uid/tls       TLS client certificate (dedicated listener) or the proxy header from an
 *                                    allowlisted address
 *   GET  /portal, POST /portal/links the person's services, links, approved scopes and recent logins;
 *   POST /portal/consents/remove     withdraws an approval given on the consent page
 *   GET  /portal/login, /portal/callback   the portal's own card login (built-in public client)
 *   GET  /api/links/pending, POST /api/links/confirm, POST /api/links   for services, HTTP Basic with client
 *                                    credentials; persons are named by the sub the service saw
 *   /admin/…                         the administration console (operators: clients, links; admin-routes.ts)
 *
 * Every refusal is answered with a page (or JSON) in Japanese/English and written to the audit log
 * and the login history in one transaction; the page's "return to the service" button (JSON:
 * `returnUrl`) sends the refusal to the relying party as access_denied.
 *
 * Sessions and tokens hold only while the login certificate does (login-binding.ts); the
 * revocation watch (revocation-watch.ts) ends the sessions of revoked or expired certificates and
 * sends back-channel logout tokens.
 *
 * Key material (ID-token signing key, cookie keys, pairwise salt, portal CSRF key) is stored sealed
 * under an AES key on the SSO center's own token (keys.ts, sealer.ts) and opened into memory at
 * start; the role opens that token and never the CA token.
 */
import type { Config } from "../config.ts";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import cookieParser from "cookie-parser";
import { doubleCsrf } from "csrf-csrf";
import express, { type Request, type Response } from "express";
import type { Knex } from "knex";
import type Provider from "oidc-provider";
import { auditTokenTransitions } from "../audit/hsm-transitions.ts";
import { appendAudit } from "../audit/log.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { MESSAGES, PathValidationError } from "../pki/path-validation.ts";
import { loadPolicies } from "../policies.ts";
import { createConsoleRouter } from "../web/console/router.ts";
import { ROLE_PREFIX, type RoleDeps, type RoleServer } from "../web/role.ts";
import { refuseUnstorableBody } from "../web/input-guard.ts";
import { mountSsoAdminRoutes } from "./admin-routes.ts";
import { AccountLinkError, confirmLink, findPerson, linkByService, linksOf, removeLink, requestLink, upsertPerson } from "./accounts.ts";
import { purgeExpired } from "./adapter.ts";
import { approvedScopes, consentsOf, recordConsent, scopesNeedingConsent, scopesOfClaims, withdrawConsent } from "./consent.ts";
import { consumeChallenge, issueChallenge, parseChallenge, verifyChallengeSignature } from "./challenge.ts";
import { ClientDirectory } from "./client-directory.ts";
import { authenticateClient, findClient, listClients, PORTAL_CLIENT_ID, SsoClientError, type SsoClient } from "./clients.ts";
import { checkHcRole, type CertificateIdentity } from "../status/certificate-identity.ts";
import { agentResponseFields, isCardLoginFailure } from "../status/card-login-failure.ts";
import { ensureSecret, sealPlaintextRows, SIGNING_ALGS, type Sealer } from "./keys.ts";
import { KEY_REFRESH_INTERVAL_MS, SigningKeyRefresh } from "./key-rotation.ts";
import { LoginCertificates, parseAccountId } from "./login-binding.ts";
import { ACR_CARD_PIN, ACR_CERTIFICATE, acrSatisfies, AMR_CARD_PIN, createOidcProvider, requestedAcrs, SCOPE_CLAIMS, type SessionTimes } from "./provider.ts";
import { RevocationWatch } from "./revocation-watch.ts";
import { isRefusalCode, refusalText, type Refusal } from "./refusals.ts";
import type { Subjects } from "./subjects.ts";
import { openSsoSealer } from "./sealer.ts";
import { CardLoginVerifier, type CardLoginVerifierOptions, type VerifiedLogin } from "../status/certificate-verifier.ts";
import { CARD_AGENT_LOGIN_SCRIPT, languageOf, renderPage, textsFor, type Lang } from "./views.ts";
import { DEFAULT_CARD_AGENT_PORT } from "./card-agent-server.ts";
import { prepared, runPrepared } from "../store/prepared.ts";

/** A successful login in the person's history (a named statement: one per login). */
const RECORD_LOGIN = prepared("sso_login_success",
  "INSERT INTO sso_logins (person_id, client_id, method, outcome, certificate_serial, issuer, at) VALUES ($1, $2, $3, 'success', $4, $5, $6)");

/** A refusal of the SSO center's own (not the verifier's): see refusals.ts for the texts. */
class SsoRefusal extends Error implements Refusal {
  constructor(readonly code: string, readonly detail: string) {
    super(detail);
  }
}

/** SSO-specific settings (configuration: see ssoOptionsFromConfig). */
export interface SsoOptions {
  /** Dedicated HTTPS listener for TLS client authentication. */
  tls?: { port: number; host?: string; key: Buffer; cert: Buffer; publicUrl?: string };
  /** Reverse-proxy addresses whose client-certificate header (X-SSL-Client-Cert, URL-escaped PEM) is accepted. */
  trustedProxies?: string[];
  /** refreshIntervalMs also paces the revocation watch (refresh + sweep); 0 = no timer. */
  verifier?: Omit<CardLoginVerifierOptions, "db">;
  /** Session idle timeout and maximum, seconds. */
  session?: Partial<SessionTimes>;
  /** Where the login page looks for the local card agent (`hpki card agent`), e.g. http://127.0.0.1:7390. */
  cardAgentUrl?: string;
}

/**
 * SsoOptions from the checked configuration (cfg.sso; variables HPKI_SSO_*, see
 * src/config/schema.ts): the TLS listener (PEM files read here), trusted proxies, other HPKI
 * anchors/CAs/CRLs, the revocation refresh and staleness periods, OCSP responders and fallback, the session
 * idle timeout and maximum.
 */
export function ssoOptionsFromConfig(sso: Config["sso"]): SsoOptions {
  const opts: SsoOptions = {
    trustedProxies: sso.trustedProxies,
    verifier: {
      foreignAnchors: sso.anchorFiles.map((f) => fs.readFileSync(f)),
      foreignCas: sso.caFiles.map((f) => fs.readFileSync(f)),
      foreignCrls: sso.crls,
      refreshIntervalMs: sso.refreshMs,
      maxStalenessMs: sso.maxStalenessMs,
      ocspResponders: sso.ocspUrls,
      ocspFallback: sso.ocspFallback,
    },
    session: {
      idleTimeoutS: sso.idleTimeoutS,
      maxS: sso.sessionMaxS,
    },
    cardAgentUrl: `http://127.0.0.1:${sso.cardAgentPort}`,
  };
  if (sso.tls) opts.tls = { port: sso.tls.port, cert: fs.readFileSync(sso.tls.certFile), key: fs.readFileSync(sso.tls.keyFile) };
  return opts;
}


/** The running SSO role: the RoleServer plus what tests and operators need to reach. */
export interface SsoServer extends RoleServer {
  provider: Provider;
  verifier: CardLoginVerifier;
  /** Refreshes the revocation index and ends the sessions of revoked certificates (runs on a timer too). */
  watch: RevocationWatch;
  /** Reloads the published signing keys (on a timer and at each scheduled change; key-rotation.ts). */
  keys: SigningKeyRefresh;
  subjects: Subjects;
  /**
   * This process's copy of the registered clients: a change this process commits applies at the
   * commit; one committed elsewhere (CLI, another worker) when its NOTIFY arrives, milliseconds later.
   */
  clients: ClientDirectory;
  issuer: string;
  /** Base URL of the TLS client-authentication listener, when configured. */
  tlsUrl?: string;
}

type LoginMethod = "challenge" | "tls" | "proxy-header";

/**
 * Creates the SSO role (see the module comment): opens the SSO token and its sealing key
 * (sealer.ts), seals key material an earlier version stored in the clear (keys.ts
 * sealPlaintextRows, audited), then builds the provider and routes on the opened keys. close()
 * also closes the token's sessions and releases the PKCS#11 module.
 * @throws when the database, the HSM (HsmError, e.g. "TOKEN_NOT_FOUND" with a Japanese message too)
 *   or the TLS files are unusable.
 */
export async function createSsoServer(deps: RoleDeps, options: SsoOptions = ssoOptionsFromConfig(deps.cfg.sso)): Promise<SsoServer> {
  const sealer = await openSsoSealer(deps.cfg, deps.db);
  try {
    await sealPlaintextRows(deps.db, sealer.key);
    const server = await buildSsoServer(deps, options, sealer.key);
    auditTokenTransitions(deps.db, sealer.health, "sso", (e) => process.stderr.write(`hpki sso: audit of an HSM token transition: ${(e as Error).message}\n`));
    return {
      ...server,
      health: () => ({ hsm: [sealer.health.report()] }),
      async close() {
        try {
          await server.close();
        } finally {
          await sealer.close();
        }
      },
    };
  } catch (e) {
    await sealer.close();
    throw e;
  }
}

async function buildSsoServer(deps: RoleDeps, options: SsoOptions, sealer: Sealer): Promise<SsoServer> {
  const { db } = deps;
  const issuer = `${deps.publicUrl}/sso`;
  // The watch paces the index refresh, so the sweep follows each refresh at once.
  const verifier = await CardLoginVerifier.open({ db, ...options.verifier, refreshIntervalMs: 0 });
  const logins = new LoginCertificates(db, verifier);
  const clients = await ClientDirectory.open(db, issuer, { onError: (e) => process.stderr.write(`sso: listening for client changes failed (clients are read from the database until it works again): ${(e as Error).message}\n`) });
  const { provider, subjects } = await createOidcProvider(db, issuer, sealer, { logins, clients, session: options.session });
  provider.on("server_error", (_ctx: unknown, err: Error) => process.stderr.write(`sso: provider error: ${err.stack ?? err.message}\n`));
  const watch = new RevocationWatch({
    db, provider, verifier, logins, intervalMs: options.verifier?.refreshIntervalMs ?? 30_000,
    // Grants and refresh tokens live 14 days; a login older than that has nothing left to end.
    lookbackMs: 15 * 86400_000,
  });
  watch.start();
  // Rotated signing keys are published, start and stop signing without a restart (key-rotation.ts).
  const keys = new SigningKeyRefresh(db, sealer, provider, SIGNING_ALGS, KEY_REFRESH_INTERVAL_MS,
    (e) => process.stderr.write(`sso: reloading signing keys failed: ${(e as Error).message}\n`));
  keys.start();
  const csrfKey = await ensureSecret(db, sealer, "portal-csrf-key");
  const router = express.Router();
  const form = [express.urlencoded({ extended: false, limit: "64kb" }), express.json({ limit: "64kb" }), refuseUnstorableBody({ respond: true })];
  const wantsJson = (req: Request) => (req.get("accept") ?? "").includes("application/json") || req.is("application/json") === "application/json";
  const langOf = (req: Request, uiLocales?: unknown): Lang => languageOf(req.query, req.get("cookie"), uiLocales);
  const cardAgentUrl = options.cardAgentUrl ?? `http://127.0.0.1:${DEFAULT_CARD_AGENT_PORT}`;

  let tlsServer: https.Server | undefined;
  let tlsUrl: string | undefined;

  // Behind a TLS-terminating proxy (issue 14 §6): oidc-provider builds every endpoint URL, redirect
  // and cookie from the request's origin, so every request (ours use the provider's context too)
  // is presented on the public origin of the issuer (--public-url), whatever Host or X-Forwarded-*
  // the client sent: the origin is configuration, never taken from a header. X-Forwarded-For (the
  // client address oidc-provider logs) is kept only from an allowlisted proxy address
  // (HPKI_SSO_TRUSTED_PROXIES). Express itself keeps "trust proxy" off.
  const publicOrigin = new URL(issuer);
  provider.proxy = true;
  router.use((req, _res, next) => {
    for (const h of ["x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "forwarded"]) delete req.headers[h];
    if (!(options.trustedProxies ?? []).includes(req.socket.remoteAddress ?? "")) delete req.headers["x-forwarded-for"];
    req.headers["x-forwarded-host"] = publicOrigin.host;
    req.headers["x-forwarded-proto"] = publicOrigin.protocol.slice(0, -1);
    next();
  });

  router.use((req, res, next) => {
    if (req.query.lang === "en" || req.query.lang === "ja") res.append("Set-Cookie", `hpki_lang=${req.query.lang}; Path=/; SameSite=Lax; HttpOnly`);
    next();
  });

  /**
   * Writes a refusal (audit + login history, one transaction) and answers 403 with the reason, a
   * retry link and the "return to the service" form (JSON: returnUrl, POST {reason}).
   */
  async function refuse(req: Request, res: Response, uid: string, clientId: string | undefined, method: LoginMethod, err: Refusal, identity: CertificateIdentity | undefined, lang: Lang) {
    await db.transaction(async (trx) => {
      // A known person sees refused attempts with their certificate among their recent logins.
      const person = identity ? await trx("sso_persons").where({ issuer: identity.issuer, subscriber_id: identity.subscriberId }).first("id") : undefined;
      await trx("sso_logins").insert({
        person_id: person?.id ?? null, client_id: clientId ?? null, method, outcome: err.code,
        certificate_serial: identity?.serialHex ?? null, issuer: identity?.issuer ?? null, at: new Date(),
      });
      await appendAudit(trx, [{
        actor: identity ? `${identity.issuer}/${identity.subscriberId}` : "anonymous", role: "sso", action: "sso.login-refused",
        objectType: "sso-interaction", objectId: uid, details: { code: err.code, detail: err.detail, method, clientId, remote: req.socket.remoteAddress },
      }]);
    });
    const returnUrl = `${issuer}/interaction/${uid}/abort`;
    res.status(403);
    if (wantsJson(req)) {
      res.json({ error: err.code, message: refusalText(err.code, "en"), messageJa: refusalText(err.code, "ja"), returnUrl });
      return;
    }
    res.type("html").send(renderPage("refused", lang, { message: refusalText(err.code, lang), code: err.code, retryUrl: `${issuer}/interaction/${uid}`, returnUrl }));
  }

  /** Checks the verified certificate against the client, records the login and finishes the interaction. */
  async function completeLogin(req: Request, res: Response, details: Details, client: SsoClient, login: VerifiedLogin, method: LoginMethod) {
    const { identity } = login;
    const uid = details.uid;
    const requested = requestedAcrs(details.params);
    checkHcRole(identity, client.allowedHcRoles);
    // acr (issue 14 §3): a card signature after the card checked the PIN, or a certificate alone.
    const acr = method === "challenge" ? ACR_CARD_PIN : ACR_CERTIFICATE;
    if (!acrSatisfies(acr, requested)) throw new SsoRefusal("acr-not-met", `${method} gives ${acr}; requested ${requested!.join(" ")}`);
    const at = new Date();
    const accountId = await db.transaction(async (trx) => {
      const id = await upsertPerson(trx, identity, at);
      const account = await logins.record(trx, id, login.path, at);
      await runPrepared(trx, RECORD_LOGIN, [id, client.clientId, method, identity.serialHex, identity.issuer, at]);
      await appendAudit(trx, [{
        actor: `${identity.issuer}/${identity.subscriberId}`, role: "sso", action: "sso.login", objectType: "sso-interaction", objectId: uid,
        details: { personId: id, clientId: client.clientId, method, hcRole: identity.hcRole, serial: identity.serialHex, acr },
      }]);
      return account;
    });
    // amr (RFC 8176 §2) only where we know it: a card key unlocked by its PIN.
    const grantId = await grantWithLogin(details, client, accountId);
    const result = { login: { accountId, acr, ...(method === "challenge" ? { amr: AMR_CARD_PIN } : {}) }, ...(grantId ? { consent: { grantId } } : {}) };
    // What provider.interactionResult does (mergeWithLastSubmission false), on the interaction
    // interactionDetails already loaded for this request instead of reading it again.
    details.result = result;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
    const redirectTo = details.returnTo;
    if (wantsJson(req)) res.json({ redirectTo });
    else res.redirect(303, redirectTo);
  }

  /**
   * The grant of a login that asks the person nothing (issue 14 §7): every requested scope is a
   * default of the client, so it is made with the login and the authorization goes on to the code
   * without a consent interaction (two requests and their reads and writes fewer). Anything else —
   * a scope beyond the defaults, offline_access, a claims request, resource indicators (JWT access
   * tokens), prompt=consent, a grant the session already holds — takes the consent prompt as before.
   */
  async function grantWithLogin(details: Details, client: SsoClient, accountId: string): Promise<string | undefined> {
    const p = details.params as Record<string, unknown>;
    const scopes = String(p.scope ?? "").split(" ").filter(Boolean);
    if (details.grantId || p.claims !== undefined || p.resource !== undefined || client.accessTokenFormat === "jwt") return undefined;
    if (String(p.prompt ?? "").split(" ").includes("consent") || scopes.includes("offline_access")) return undefined;
    if (scopesNeedingConsent(scopes, client, []).length > 0) return undefined;
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope(scopes.join(" "));
    return grant.save();
  }

  /** Runs a login attempt: verification errors become refusals, anything else a 500. */
  async function attempt(req: Request, res: Response, method: LoginMethod, body: (uid: string, client: SsoClient) => Promise<VerifiedLogin>) {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      res.status(400).type("html").send(renderPage("refused", langOf(req), { message: MESSAGES["challenge-invalid"][langOf(req)], code: "interaction-not-found" }));
      return;
    }
    const uid = details.uid;
    const clientId = String(details.params.client_id ?? "");
    const client = await clients.get(clientId);
    if (!client) {
      res.status(400).send("unknown client");
      return;
    }
    let identity: CertificateIdentity | undefined;
    try {
      const login = await body(uid, client);
      identity = login.identity;
      await completeLogin(req, res, details, client, login, method);
    } catch (e) {
      const lang = langOf(req, details.params.ui_locales);
      if (e instanceof PathValidationError) return refuse(req, res, uid, clientId, method, e, identity ?? (e as { identity?: CertificateIdentity }).identity, lang);
      if (e instanceof SsoRefusal) return refuse(req, res, uid, clientId, method, e, identity, lang);
      throw e;
    }
  }

  // "Return to the service": the refusal (or the person's cancel) goes back to the relying party
  // as access_denied with state (oidc-provider adds it) and a description in the request's language.
  router.post("/interaction/:uid/abort", ...form, async (req, res, next) => {
    try {
      let details;
      try {
        details = await provider.interactionDetails(req, res);
      } catch {
        return void res.status(400).type("html").send(renderPage("refused", langOf(req), { message: MESSAGES["challenge-invalid"][langOf(req)], code: "interaction-not-found" }));
      }
      const reason = (req.body as { reason?: unknown } | undefined)?.reason;
      const code = isRefusalCode(reason) ? reason : "cancelled";
      const lang = langOf(req, details.params.ui_locales);
      const redirectTo = await provider.interactionResult(req, res, { error: "access_denied", error_description: refusalText(code, lang) }, { mergeWithLastSubmission: false });
      if (code === "cancelled") {
        await db.transaction((trx) => appendAudit(trx, [{
          actor: "anonymous", role: "sso", action: "sso.login-cancelled", objectType: "sso-interaction", objectId: details.uid, details: { clientId: details.params.client_id },
        }]));
      }
      if (wantsJson(req)) res.json({ redirectTo });
      else res.redirect(303, redirectTo);
    } catch (e) {
      next(e);
    }
  });

  // ---- consent (issue 14 §7, consent.ts) ----
  type Details = Awaited<ReturnType<Provider["interactionDetails"]>>;
  // The consent form's CSRF token (csrf-csrf double submit) is bound to the interaction.
  const consentCsrf = doubleCsrf({
    getSecret: () => csrfKey.toString("base64url"),
    getSessionIdentifier: (req) => String(req.params.uid ?? ""),
    cookieName: "hpki_consent_csrf",
    cookieOptions: { sameSite: "lax", path: `${publicOrigin.pathname}/interaction`, secure: issuer.startsWith("https:"), httpOnly: true },
    getCsrfTokenFromRequest: (req) => {
      const t = (req.body as { csrf?: unknown } | undefined)?.csrf;
      return typeof t === "string" ? t : undefined;
    },
  });
  router.use("/interaction", cookieParser());

  /** What the consent prompt of `details` must ask the person (empty: grant at once). */
  async function consentAsk(details: Details): Promise<{ client: SsoClient; personId: string; ask: string[] }> {
    const client = await clients.get(String(details.params.client_id));
    if (!client || !details.session?.accountId) throw new Error("consent prompt without a client or a login");
    const personId = parseAccountId(details.session.accountId).personId;
    const scopes = String(details.params.scope ?? "").split(" ").filter(Boolean);
    // Claims asked for one by one (claims parameter) that the grant lacks count as their scope.
    const claims = (details.prompt.details as { missingOIDCClaims?: string[] }).missingOIDCClaims ?? [];
    const requested = [...scopes, ...scopesOfClaims(claims, SCOPE_CLAIMS)];
    return { client, personId, ask: scopesNeedingConsent(requested, client, await approvedScopes(db, personId, client.clientId)) };
  }

  /** The consent prompt: granted at once, or the consent page (JSON: {consent: {clientId, clientName, scopes}, decide, csrf}). */
  async function consentPrompt(req: Request, res: Response, details: Details) {
    const { client, ask } = await consentAsk(details);
    if (ask.length === 0) return grantConsent(provider, req, res, details);
    const lang = langOf(req, details.params.ui_locales);
    const t = textsFor(lang);
    const decideUrl = `${issuer}/interaction/${details.uid}/consent`;
    const csrf = consentCsrf.generateCsrfToken(req, res);
    const scopes = ask.map((scope) => ({ scope, text: t[`scope_${scope}`] ?? scope }));
    // Where the answer goes: the origin of the redirect URI the request named (oidc-provider checked it
    // against the registration), or of the only registered one when the request left it out.
    const returnsTo = new URL(String(details.params.redirect_uri ?? client.redirectUris[0])).origin;
    if (wantsJson(req)) return void res.json({ consent: { clientId: client.clientId, clientName: client.name, scopes, ssoOrigin: publicOrigin.origin, returnsTo }, decide: decideUrl, csrf });
    res.type("html").send(renderPage("consent", lang, { clientName: client.name, clientId: client.clientId, scopes, decideUrl, csrf, ssoOrigin: publicOrigin.origin, returnsTo }));
  }

  router.post("/interaction/:uid/consent", ...form, async (req, res, next) => {
    try {
      let details: Details;
      try {
        details = await provider.interactionDetails(req, res);
      } catch {
        return void res.status(400).type("html").send(renderPage("refused", langOf(req), { message: MESSAGES["challenge-invalid"][langOf(req)], code: "interaction-not-found" }));
      }
      if (details.uid !== req.params.uid || details.prompt.name !== "consent") return void res.status(400).send("interaction mismatch");
      if (!consentCsrf.validateRequest(req)) return void res.status(403).send("forbidden");
      const decision = (req.body as { decision?: unknown } | undefined)?.decision;
      if (decision !== "approve" && decision !== "deny") return void res.status(400).send("decision must be approve or deny");
      const { client, personId, ask } = await consentAsk(details);
      await recordConsent(db, { personId, clientId: client.clientId, scopes: ask, approved: decision === "approve", uid: details.uid });
      if (decision === "approve") return void (await grantConsent(provider, req, res, details, wantsJson(req)));
      const lang = langOf(req, details.params.ui_locales);
      const redirectTo = await provider.interactionResult(req, res, { error: "access_denied", error_description: refusalText("consent-denied", lang) }, { mergeWithLastSubmission: false });
      if (wantsJson(req)) res.json({ redirectTo });
      else res.redirect(303, redirectTo);
    } catch (e) {
      next(e);
    }
  });

  // The login page's script that calls the local card agent (a file, so a strict CSP can allow it).
  router.get("/assets/card-agent-login.js", (_req, res) => void res.type("text/javascript").set("Cache-Control", "no-cache").send(CARD_AGENT_LOGIN_SCRIPT));

  router.get("/interaction/:uid", async (req, res, next) => {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== req.params.uid) return void res.status(400).send("interaction mismatch");
      if (details.prompt.name === "consent") return void (await consentPrompt(req, res, details));
      const client = await clients.get(String(details.params.client_id));
      const challenge = await issueChallenge(db, issuer, details.uid, { clientId: String(details.params.client_id), name: client?.name ?? String(details.params.client_id) });
      const submitUrl = `${issuer}/interaction/${details.uid}/card`;
      const abortUrl = `${issuer}/interaction/${details.uid}/abort`;
      // TLS client authentication gives ACR_CERTIFICATE only: not offered when the request needs more.
      const tlsOk = acrSatisfies(ACR_CERTIFICATE, requestedAcrs(details.params));
      const tlsLogin = tlsUrl && tlsOk ? `${tlsUrl}/sso/interaction/${details.uid}/tls` : undefined;
      if (wantsJson(req)) return void res.json({ uid: details.uid, challenge: challenge.text, submit: submitUrl, tlsLogin, abort: abortUrl, cardAgent: cardAgentUrl });
      res.type("html").send(renderPage("login", langOf(req, details.params.ui_locales), {
        clientName: client?.name ?? details.params.client_id, allowedRoles: client?.allowedHcRoles ?? [], challenge: challenge.text, submitUrl, tlsUrl: tlsLogin, abortUrl,
        cardAgentUrl, agentScript: `${issuer}/assets/card-agent-login.js`, ssoOrigin: publicOrigin.origin,
      }));
    } catch (e) {
      next(e);
    }
  });

  router.post("/interaction/:uid/card", ...form, async (req, res, next) => {
    try {
      await attempt(req, res, "challenge", async (uid, client) => {
        const b = agentResponseFields((req.body ?? {}) as Record<string, unknown>);
        if (typeof b.challenge !== "string") throw new PathValidationError("challenge-invalid", "challenge, certificate and signature are required");
        const challenge = parseChallenge(b.challenge.replace(/\r\n/g, "\n"));
        // Any attempt consumes the nonce: a second presentation is a replay, whatever the first was.
        await consumeChallenge(db, challenge, issuer, client.clientId, uid);
        // The card refused the PIN (the agent's report): refused and audited like any other
        // attempt; the PIN itself never reaches us.
        if (isCardLoginFailure(b)) throw new PathValidationError(b.error, "reported by the card agent: the card refused the PIN");
        if (typeof b.certificate !== "string" || typeof b.signature !== "string") {
          throw new PathValidationError("challenge-invalid", "challenge, certificate and signature are required");
        }
        const certDer = fromPemOrDer(b.certificate.includes("-----BEGIN") ? b.certificate : Buffer.from(b.certificate, "base64"));
        const verified = await verifier.verify(certDer);
        const { path, identity } = verified;
        try {
          verifyChallengeSignature(path.leaf.spki, challenge.text, Buffer.from(b.signature, "base64"));
        } catch (e) {
          Object.assign(e as object, { identity });
          throw e;
        }
        return verified;
      });
    } catch (e) {
      next(e);
    }
  });

  router.get("/interaction/:uid/tls", async (req, res, next) => {
    try {
      const socket = req.socket as TLSSocket;
      const fromTls = socket.encrypted ? socket.getPeerCertificate(false) : undefined;
      const proxied = req.get("x-ssl-client-cert");
      const method: LoginMethod = fromTls?.raw ? "tls" : "proxy-header";
      await attempt(req, res, method, async () => {
        let der: Buffer | undefined;
        if (fromTls?.raw) der = fromTls.raw;
        else if (proxied && (options.trustedProxies ?? []).includes(req.socket.remoteAddress ?? "")) der = fromPemOrDer(decodeURIComponent(proxied));
        if (!der) throw new PathValidationError("malformed-certificate", "no client certificate presented");
        return verifier.verify(der);
      });
    } catch (e) {
      next(e);
    }
  });

  // ---- portal ----
  async function portalSession(req: Request, res: Response): Promise<{ personId: string; uid: string } | undefined> {
    const ctx = provider.createContext(req, res);
    const session = await provider.Session.get(ctx);
    return session.accountId ? { personId: parseAccountId(session.accountId).personId, uid: session.uid } : undefined;
  }
  // The portal's forms: csrf-csrf double submit, the token bound to the provider session's uid.
  const portalCsrf = doubleCsrf({
    getSecret: () => csrfKey.toString("base64url"),
    getSessionIdentifier: (req) => portalUids.get(req) ?? "",
    cookieName: "hpki_portal_csrf",
    cookieOptions: { sameSite: "lax", path: `${new URL(issuer).pathname}/portal`, secure: issuer.startsWith("https:"), httpOnly: true },
    getCsrfTokenFromRequest: (req) => {
      const t = (req.body as { csrf?: unknown } | undefined)?.csrf;
      return typeof t === "string" ? t : undefined;
    },
  });
  const portalUids = new WeakMap<Request, string>();
  /** The portal session of a form POST whose CSRF token is valid, else undefined (answer 403). */
  async function portalPost(req: Request, res: Response): Promise<{ personId: string; uid: string } | undefined> {
    const s = await portalSession(req, res);
    if (!s) return undefined;
    portalUids.set(req, s.uid);
    return portalCsrf.validateRequest(req) ? s : undefined;
  }
  router.use("/portal", cookieParser());

  // The portal logs in like any service: an authorization request of the built-in public client
  // (PKCE as always). Only the provider session matters to the portal, so the callback does not
  // redeem the code (it expires unused after 60 s).
  router.get("/portal/login", async (req, res, next) => {
    try {
      const challenge = createHash("sha256").update(randomBytes(32).toString("base64url")).digest("base64url");
      const q = new URLSearchParams({
        client_id: PORTAL_CLIENT_ID, response_type: "code", scope: "openid", redirect_uri: `${issuer}/portal/callback`,
        code_challenge: challenge, code_challenge_method: "S256", state: randomBytes(16).toString("base64url"),
      });
      res.redirect(303, `${issuer}/auth?${q}`);
    } catch (e) {
      next(e);
    }
  });
  router.get("/portal/callback", (_req, res) => res.redirect(303, `${issuer}/portal`));

  router.get("/portal", async (req, res, next) => {
    try {
      const lang = langOf(req);
      const s = await portalSession(req, res);
      if (!s) return void res.type("html").send(renderPage("message", lang, { message: textsFor(lang).noSession, form: `<p><a href="${issuer}/portal/login">${textsFor(lang).portalLogin}</a></p>` }));
      const person = (await findPerson(db, s.personId))!;
      const links = await linksOf(db, s.personId);
      const consents = await consentsOf(db, s.personId);
      const t = textsFor(lang);
      const services = (await listClients(db))
        .filter((c) => !c.disabled && (c.allowedHcRoles.length === 0 || c.allowedHcRoles.includes(person.hcRole ?? "")))
        .map((c) => {
          const link = links.find((l) => l.clientId === c.clientId);
          const consent = consents.find((x) => x.clientId === c.clientId);
          return { clientId: c.clientId, name: c.name, link: link && { accountId: link.accountId, statusText: link.status === "confirmed" ? t.linkConfirmed : t.linkRequested }, consentScopes: consent?.scopes };
        });
      const logins = (await db("sso_logins").where({ person_id: s.personId }).orderBy("at", "desc").limit(10)).map((l) => ({
        at: new Date(l.at).toISOString().replace("T", " ").slice(0, 19) + "Z", clientId: l.client_id, method: l.method, outcome: l.outcome,
      }));
      portalUids.set(req, s.uid);
      res.type("html").send(renderPage("portal", lang, { person, services, logins, csrf: portalCsrf.generateCsrfToken(req, res), linkUrl: `${issuer}/portal/links`, unlinkUrl: `${issuer}/portal/links/remove`, withdrawUrl: `${issuer}/portal/consents/remove` }));
    } catch (e) {
      next(e);
    }
  });

  router.post("/portal/links", ...form, async (req, res, next) => {
    try {
      const s = await portalPost(req, res);
      const b = (req.body ?? {}) as Record<string, string>;
      if (!s) return void res.status(403).send("forbidden");
      const client = await findClient(db, String(b.clientId ?? ""));
      if (!client) return void res.status(400).send("unknown service");
      await requestLink(db, s.personId, client.clientId, String(b.accountId ?? ""));
      res.redirect(303, `${issuer}/portal`);
    } catch (e) {
      if (e instanceof AccountLinkError) return void res.status(400).send(`${e.message} / ${e.messageJa}`);
      next(e);
    }
  });

  // The person removes their own link (sub at that service is the pseudonym again).
  router.post("/portal/links/remove", ...form, async (req, res, next) => {
    try {
      const s = await portalPost(req, res);
      const b = (req.body ?? {}) as Record<string, string>;
      if (!s) return void res.status(403).send("forbidden");
      await removeLink(db, String(b.clientId ?? ""), s.personId, { actor: s.personId, role: "sso" });
      res.redirect(303, `${issuer}/portal`);
    } catch (e) {
      if (e instanceof AccountLinkError) return void res.status(400).send(`${e.message} / ${e.messageJa}`);
      next(e);
    }
  });

  // The person withdraws an approval given on the consent page: the service must ask again, and
  // its grants for the person (refresh tokens included) end (consent.ts withdrawConsent).
  router.post("/portal/consents/remove", ...form, async (req, res, next) => {
    try {
      const s = await portalPost(req, res);
      if (!s) return void res.status(403).send("forbidden");
      await withdrawConsent(db, s.personId, String((req.body as Record<string, unknown> | undefined)?.clientId ?? ""));
      res.redirect(303, `${issuer}/portal`);
    } catch (e) {
      next(e);
    }
  });

  // ---- account-link API for services (client credentials, HTTP Basic) ----
  async function basicClient(req: Request): Promise<SsoClient> {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.get("authorization") ?? "");
    const [id, secret] = m ? Buffer.from(m[1], "base64").toString("utf8").split(/:(.*)/s) : [];
    return authenticateClient(db, decodeURIComponent(id ?? ""), decodeURIComponent(secret ?? ""));
  }

  const clientAuthFailed = (res: Response, e: SsoClientError) => void res.status(401).set("WWW-Authenticate", 'Basic realm="hpki-sso"').json({ error: e.code });
  /** The person behind the `sub` this client saw; @throws AccountLinkError NO_SUCH_LINK ("unknown sub"). */
  async function personOfSub(client: SsoClient, sub: unknown): Promise<string> {
    const personId = typeof sub === "string" ? await subjects.personFor(client.clientId, sub) : undefined;
    if (!personId) throw new AccountLinkError("NO_SUCH_LINK", "this client has never been given that sub", "このサービスに発行したことのない sub です");
    return personId;
  }

  // Pending link requests, each with the sub the service sees for the person (never our person id).
  router.get("/api/links/pending", async (req, res, next) => {
    try {
      const client = await basicClient(req);
      const rows = await db("sso_account_links as l").join("sso_persons as p", "p.id", "l.person_id").where({ "l.client_id": client.clientId, "l.status": "requested" })
        .select("l.person_id", "l.account_id", "l.requested_at", "p.name_latin", "p.name_kanji", "p.hc_role", "p.subscriber_id", "p.issuer");
      res.json(await Promise.all(rows.map(async (r) => ({
        sub: await subjects.subFor(r.person_id, client.clientId), accountId: r.account_id, requestedAt: new Date(r.requested_at).toISOString(),
        name: r.name_latin, nameKanji: r.name_kanji, hcRole: r.hc_role, subscriberId: r.subscriber_id, issuer: r.issuer,
      }))));
    } catch (e) {
      if (e instanceof SsoClientError) return clientAuthFailed(res, e);
      next(e);
    }
  });

  // The service confirms the request of the person it knows as {sub}.
  router.post("/api/links/confirm", express.json({ limit: "8kb" }), refuseUnstorableBody({ respond: true }), async (req, res, next) => {
    try {
      const client = await basicClient(req);
      const personId = await personOfSub(client, (req.body as { sub?: unknown })?.sub);
      const link = await confirmLink(db, client.clientId, personId, { actor: `client:${client.clientId}`, role: "sso" });
      res.json({ sub: (req.body as { sub: string }).sub, accountId: link.accountId, status: link.status });
    } catch (e) {
      if (e instanceof SsoClientError) return clientAuthFailed(res, e);
      if (e instanceof AccountLinkError) return void res.status(e.code === "NO_SUCH_LINK" ? 404 : 409).json({ error: e.code, message: e.message, messageJa: e.messageJa });
      next(e);
    }
  });

  // Linking driven by the service: after a login it names the person by {sub} and gives its own
  // {accountId}; the link is confirmed at once (the service vouches for its own account).
  router.post("/api/links", express.json({ limit: "8kb" }), refuseUnstorableBody({ respond: true }), async (req, res, next) => {
    try {
      const client = await basicClient(req);
      const b = (req.body ?? {}) as { sub?: unknown; accountId?: unknown };
      const personId = await personOfSub(client, b.sub);
      const link = await linkByService(db, client.clientId, personId, String(b.accountId ?? ""), { actor: `client:${client.clientId}`, role: "sso" });
      res.status(201).json({ sub: b.sub, accountId: link.accountId, status: link.status });
    } catch (e) {
      if (e instanceof SsoClientError) return clientAuthFailed(res, e);
      if (e instanceof AccountLinkError) return void res.status(e.code === "NO_SUCH_LINK" ? 404 : e.code === "BAD_ACCOUNT_ID" ? 400 : 409).json({ error: e.code, message: e.message, messageJa: e.messageJa });
      next(e);
    }
  });

  // The administration console (clients and account links): operators, not persons, sign in here.
  const admin = createConsoleRouter(deps, {
    console: "sso", basePath: `${ROLE_PREFIX.sso}/admin`, roles: [],
    mount: (r, kit) => mountSsoAdminRoutes(r, kit, loadPolicies().hcRoles, issuer),
  });
  router.use("/admin", admin);

  router.use(provider.callback() as unknown as express.RequestHandler);

  if (options.tls) {
    const tlsApp = express();
    tlsApp.disable("x-powered-by");
    tlsApp.use("/sso", router);
    // requestCert without rejectUnauthorized: the HPKI verifier, not OpenSSL's store, decides.
    tlsServer = https.createServer({ key: options.tls.key, cert: options.tls.cert, requestCert: true, rejectUnauthorized: false }, tlsApp);
    const server = tlsServer;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.tls!.port, options.tls!.host ?? "127.0.0.1", () => resolve());
    });
    const port = (server.address() as { port: number }).port;
    tlsUrl = options.tls.publicUrl ?? `https://${options.tls.host ?? "127.0.0.1"}:${port}`;
  }

  const purge = setInterval(() => void purgeExpired(db).catch(() => undefined), 3600_000);
  purge.unref();

  return {
    role: "sso",
    router,
    provider,
    verifier,
    watch,
    keys,
    subjects,
    clients,
    issuer,
    tlsUrl,
    async close() {
      clearInterval(purge);
      keys.stop();
      watch.stop();
      await clients.close();
      await admin.close();
      verifier.close();
      if (tlsServer) {
        tlsServer.closeAllConnections();
        await new Promise((r) => tlsServer!.close(r));
      }
    },
  };
}

/**
 * Grants what the consent prompt asks for (oidc-provider Grant: scopes, claims, resource scopes)
 * and finishes the interaction: a redirect, or with `json` the {redirectTo} to follow.
 */
async function grantConsent(provider: Provider, req: http.IncomingMessage, res: http.ServerResponse, details: Awaited<ReturnType<Provider["interactionDetails"]>>, json = false) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
  const d = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  if (d.missingOIDCScope) grant!.addOIDCScope(d.missingOIDCScope.join(" "));
  if (d.missingOIDCClaims) grant!.addOIDCClaims(d.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant!.addResourceScope(indicator, scopes.join(" "));
  const id = await grant!.save();
  const result = { consent: { grantId: id } };
  if (!json) return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  const redirectTo = await provider.interactionResult(req, res, result, { mergeWithLastSubmission: true });
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ redirectTo }));
}
