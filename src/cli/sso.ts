/**
 * `hpki sso clients add | list | update`, `hpki sso links pending | confirm` (administrators of the SSO
 * center) and `hpki card login` (the local agent that signs a login challenge with the card's
 * authentication key), `hpki card agent` (the same, for the browser login page: card-agent-server.ts).
 * The sso commands touch the database only; card login and card agent touch only the card.
 */
import fs from "node:fs";
import type { Command } from "commander";
import { registerCardHolderCommands } from "./cards.ts";
import { loadConfig } from "../config.ts";
import { CardStation } from "../hsm/cards.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { MESSAGES } from "../pki/path-validation.ts";
import { signLoginChallenge } from "../sso/card-agent.ts";
import { startCardAgent } from "../sso/card-agent-server.ts";
import { cardLoginFailure } from "../status/card-login-failure.ts";
import { confirmLink } from "../sso/accounts.ts";
import { DEFAULT_SCOPES, DEFAULT_SECRET_OVERLAP_S, findClient, listClients, registerClient, rotateClientSecret, setClientDisabled, SsoClientError, updateClient, type NewClient, type SsoClient } from "../sso/clients.ts";
import { DEFAULT_ROTATION_LEAD_S, rotateSigningKey } from "../sso/key-rotation.ts";
import { SIGNING_ALGS, type SigningAlg } from "../sso/keys.ts";
import { openSsoSealer } from "../sso/sealer.ts";
import { openDatabase, type Db } from "../store/db.ts";
import { askSecret, cliActor, runCommand, table } from "./run.ts";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The consent and access-token options of `clients add` and `clients update`. */
interface TokenOptions {
  defaultScope?: string[];
  accessTokenFormat?: string;
  accessTokenAudience?: string;
}
/** Client settings from TokenOptions; absent options stay absent (update keeps the current value). */
const tokenSettings = (o: TokenOptions): Pick<NewClient, "defaultScopes" | "accessTokenFormat" | "accessTokenAudience"> => ({
  ...(o.defaultScope ? { defaultScopes: o.defaultScope as NewClient["defaultScopes"] } : {}),
  ...(o.accessTokenFormat ? { accessTokenFormat: o.accessTokenFormat as NewClient["accessTokenFormat"] } : {}),
  ...(o.accessTokenAudience ? { accessTokenAudience: o.accessTokenAudience } : {}),
});
const tokenSummary = (c: SsoClient) => ({ defaultScopes: c.defaultScopes, accessTokenFormat: c.accessTokenFormat, accessTokenAudience: c.accessTokenAudience });

async function withDb<T>(body: (db: Db) => Promise<T>): Promise<T> {
  const db = await openDatabase(loadConfig());
  try {
    return await body(db);
  } finally {
    await db.destroy();
  }
}

export function registerSsoCommands(program: Command): void {
  const sso = program.command("sso").description("SSO center: OpenID clients and account links");
  const clients = sso.command("clients").description("relying parties (clinical systems)");

  clients
    .command("add")
    .description("register a client; prints its secret once (only a SHA-256 of it is stored)")
    .requiredOption("--id <clientId>", "client id (3–64 of A-Z a-z 0-9 . _ -)")
    .option("--name <name>", "display name (default: the id)")
    .requiredOption("--redirect-uri <uri>", "redirect URI (repeatable)", collect)
    .option("--post-logout-redirect-uri <uri>", "post-logout redirect URI (repeatable)", collect)
    .option("--allowed-hcrole <role>", 'hcRole allowed to log in, e.g. "Medical Doctor" (repeatable; none = any role)', collect)
    .option("--account-mapping <mode>", "linked (a confirmed link adds the claim service_account_id; sub never changes) | pairwise", "linked")
    .option("--backchannel-logout-uri <uri>", "where logout tokens are posted (OIDC Back-Channel Logout 1.0)")
    .option("--allowed-scope <scope>", "a scope the service may ask for (repeatable; none = every scope: openid offline_access profile hcrole subscriber organization)", collect)
    .option("--id-token-alg <alg>", "ID-token signing algorithm: RS256 (default), PS256 or ES256")
    .option("--default-scope <scope>", `a scope granted without asking the person (repeatable; none = ${DEFAULT_SCOPES.join(" ")}); others need consent`, collect)
    .option("--access-token-format <format>", "opaque (default) | jwt: JWT access tokens (RFC 9068) for --access-token-audience")
    .option("--access-token-audience <uri>", "the service's API, audience of its JWT access tokens (RFC 8707 resource indicator)")
    .option("--jwks-uri <url>", "the service's public keys (JWK Set URL): it authenticates with private_key_jwt (RFC 7523) instead of its secret")
    .option("--jwks-file <file>", "the same, as a JWK Set file (public keys only)")
    .option("--json", "print one JSON object")
    .action(async (o: { id: string; name?: string; redirectUri: string[]; postLogoutRedirectUri?: string[]; allowedHcrole?: string[]; accountMapping: string; backchannelLogoutUri?: string; allowedScope?: string[]; idTokenAlg?: string; jwksUri?: string; jwksFile?: string; json?: boolean } & TokenOptions) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const { client, secret } = await registerClient(db, {
            clientId: o.id, name: o.name ?? o.id, redirectUris: o.redirectUri, postLogoutRedirectUris: o.postLogoutRedirectUri ?? [],
            allowedHcRoles: o.allowedHcrole ?? [], accountMapping: o.accountMapping as "linked" | "pairwise", backchannelLogoutUri: o.backchannelLogoutUri,
            allowedScopes: o.allowedScope as NewClient["allowedScopes"],
            ...tokenSettings(o),
            idTokenAlg: o.idTokenAlg as NewClient["idTokenAlg"], jwksUri: o.jwksUri,
            jwks: o.jwksFile ? JSON.parse(fs.readFileSync(o.jwksFile, "utf8")) as NewClient["jwks"] : undefined,
          }, { ...cliActor(), role: "sso" });
          const json = { clientId: client.clientId, clientSecret: secret, redirectUris: client.redirectUris, allowedHcRoles: client.allowedHcRoles, accountMapping: client.accountMapping, backchannelLogoutUri: client.backchannelLogoutUri, allowedScopes: client.allowedScopes, ...tokenSummary(client) };
          const text = [
            table([["client", "redirect URIs", "allowed hcRoles", "mapping"], [client.clientId, client.redirectUris.join(" "), client.allowedHcRoles.join(", ") || "(any)", client.accountMapping]]),
            `client secret (shown once / 一度だけ表示されます): ${secret}`,
          ].join("\n");
          return { text, json };
        }),
      ),
    );

  clients
    .command("list")
    .description("list registered clients")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const all = (await listClients(db)).map((c) => ({ clientId: c.clientId, name: c.name, redirectUris: c.redirectUris, allowedHcRoles: c.allowedHcRoles, accountMapping: c.accountMapping, disabled: c.disabled, ...tokenSummary(c) }));
          return { text: table([["client", "name", "allowed hcRoles", "mapping"], ...all.map((c) => [c.clientId, c.name, c.allowedHcRoles.join(", ") || "(any)", c.accountMapping])]), json: { clients: all } };
        }),
      ),
    );

  clients
    .command("update")
    .description("change a client's default scopes (granted without consent) and access-token format; other settings stay")
    .requiredOption("--id <clientId>", "client id")
    .option("--default-scope <scope>", `a scope granted without asking the person (repeatable); "none" of it: see --reset-default-scopes`, collect)
    .option("--reset-default-scopes", `back to the SSO center's defaults (${DEFAULT_SCOPES.join(" ")})`)
    .option("--access-token-format <format>", "opaque | jwt (RFC 9068, needs an audience)")
    .option("--access-token-audience <uri>", "the service's API, audience of its JWT access tokens")
    .option("--json", "print one JSON object")
    .action(async (o: { id: string; resetDefaultScopes?: boolean; json?: boolean } & TokenOptions) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const c = await findClient(db, o.id);
          if (!c) throw new SsoClientError("UNKNOWN_CLIENT", `no client "${o.id}"`, `クライアント「${o.id}」は登録されていません`);
          const updated = await updateClient(db, c.clientId, {
            name: c.name, redirectUris: c.redirectUris, postLogoutRedirectUris: c.postLogoutRedirectUris, allowedHcRoles: c.allowedHcRoles, accountMapping: c.accountMapping,
            ...tokenSettings(o), ...(o.resetDefaultScopes ? { defaultScopes: null } : {}),
          }, { ...cliActor(), role: "sso" });
          const json = { clientId: updated.clientId, ...tokenSummary(updated) };
          return { text: `${json.clientId}: default scopes / 同意不要のスコープ ${json.defaultScopes.join(" ")}; access tokens / アクセストークン ${json.accessTokenFormat}${json.accessTokenAudience ? ` (${json.accessTokenAudience})` : ""}`, json };
        }),
      ),
    );

  // Suspension and secret rotation, as in the administration console (/sso/admin).
  for (const [name, disabled] of [["disable", true], ["enable", false]] as const) {
    clients
      .command(name)
      .description(disabled ? "disable a client: no login, token or link API call from now on" : "enable a disabled client again")
      .requiredOption("--id <clientId>", "client id")
      .option("--json", "print one JSON object")
      .action(async (o: { id: string; json?: boolean }) =>
        runCommand(o, () =>
          withDb(async (db) => {
            const c = await setClientDisabled(db, o.id, disabled, { ...cliActor(), role: "sso" });
            return { text: `${c.clientId}: ${c.disabled ? "disabled / 停止中" : "enabled / 利用中"}`, json: { clientId: c.clientId, disabled: c.disabled } };
          }),
        ),
      );
  }
  clients
    .command("rotate-secret")
    .description("replace a client's secret; the previous one stays valid for the overlap; prints the new one once")
    .requiredOption("--id <clientId>", "client id")
    .option("--overlap <seconds>", `how long the previous secret stays valid (0: stops at once; default ${DEFAULT_SECRET_OVERLAP_S})`, (v) => Number.parseInt(v, 10))
    .option("--json", "print one JSON object")
    .action(async (o: { id: string; overlap?: number; json?: boolean }) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const { client, secret } = await rotateClientSecret(db, o.id, { ...cliActor(), role: "sso" }, o.overlap ?? DEFAULT_SECRET_OVERLAP_S);
          const until = client.previousSecret?.until.toISOString() ?? null;
          const text = [`client secret of ${client.clientId} (shown once / 一度だけ表示されます): ${secret}`,
            until ? `previous secret valid until / 旧シークレットの有効期限: ${until}` : "previous secret no longer valid / 旧シークレットは無効です"].join("\n");
          return { text, json: { clientId: client.clientId, clientSecret: secret, previousSecretValidUntil: until } };
        }),
      ),
    );

  const keys = sso.command("keys").description("ID-token signing keys (sealed under the SSO token)");
  keys
    .command("rotate")
    .description("publish a new signing key now, sign with it after the lead; the old key stops signing then and stays in the JWKS until its ID tokens expired")
    .option("--alg <alg>", `algorithm of the key to rotate (${SIGNING_ALGS.join(", ")})`, "RS256")
    .option("--lead <seconds>", `time between publishing and signing (default ${DEFAULT_ROTATION_LEAD_S}; at least 60)`, (v) => Number.parseInt(v, 10))
    .option("--json", "print one JSON object")
    .action(async (o: { alg: string; lead?: number; json?: boolean }) =>
      runCommand(o, () =>
        withDb(async (db) => {
          if (!(SIGNING_ALGS as readonly string[]).includes(o.alg)) throw new Error(`--alg must be one of ${SIGNING_ALGS.join(", ")}`);
          const sealer = await openSsoSealer(loadConfig(), db);
          try {
            const r = await rotateSigningKey(db, sealer.key, { alg: o.alg as SigningAlg, leadS: o.lead }, { ...cliActor(), role: "sso" });
            const json = { kid: r.kid, alg: r.alg, signsFrom: r.signsFrom.toISOString(), retired: r.retired.map((k) => ({ kid: k.kid, retiredAt: k.retiredAt.toISOString(), publishedUntil: k.publishedUntil.toISOString() })) };
            const text = [
              `new key / 新しい鍵 ${r.kid} (${r.alg}): published now, signs from / 署名開始 ${json.signsFrom}`,
              ...json.retired.map((k) => `old key / 旧鍵 ${k.kid}: signs until / 署名終了 ${k.retiredAt}, in JWKS until / JWKS 掲載終了 ${k.publishedUntil}`),
            ].join("\n");
            return { text, json };
          } finally {
            await sealer.close();
          }
        }),
      ),
    );

  const links = sso.command("links").description("per-service account links");
  links
    .command("pending")
    .description("links persons asked for and the service has not confirmed")
    .option("--client <clientId>", "only this client")
    .option("--json", "print one JSON object")
    .action(async (o: { client?: string; json?: boolean }) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const q = db("sso_account_links as l").join("sso_persons as p", "p.id", "l.person_id").where("l.status", "requested");
          if (o.client) q.where("l.client_id", o.client);
          const rows = (await q.select("l.client_id", "l.person_id", "l.account_id", "p.name_kanji", "p.name_latin", "p.hc_role")).map((r) => ({
            clientId: r.client_id, personId: r.person_id, accountId: r.account_id, nameKanji: r.name_kanji, name: r.name_latin, hcRole: r.hc_role,
          }));
          return { text: table([["client", "person", "account", "name", "hcRole"], ...rows.map((r) => [r.clientId, r.personId, r.accountId, `${r.nameKanji ?? ""} ${r.name ?? ""}`.trim(), r.hcRole ?? ""])]), json: { links: rows } };
        }),
      ),
    );
  links
    .command("confirm")
    .description("confirm a requested link on behalf of the service")
    .requiredOption("--client <clientId>", "client id")
    .requiredOption("--person <personId>", "person id (see `hpki sso links pending`)")
    .option("--json", "print one JSON object")
    .action(async (o: { client: string; person: string; json?: boolean }) =>
      runCommand(o, () =>
        withDb(async (db) => {
          const l = await confirmLink(db, o.client, o.person, { ...cliActor(), role: "sso" });
          return { text: `linked: ${l.personId} → ${l.clientId}:${l.accountId}`, json: { ...l, requestedAt: l.requestedAt.toISOString(), confirmedAt: l.confirmedAt?.toISOString() } };
        }),
      ),
    );

  const card = program.command("card").description("using an HPKI card");
  registerCardHolderCommands(card);
  card
    .command("login")
    .description("sign a login challenge (SSO center, or a console's card sign-in page) with the card's authentication key (asks for the PIN); prints the JSON to post or paste")
    .requiredOption("--card <label>", "card token label (card-…)")
    .option("--challenge-file <file>", "challenge text (default: stdin)")
    .option("--pin-file <file>", "read the PIN from this file instead of asking")
    .action(async (o: { card: string; challengeFile?: string; pinFile?: string }) =>
      runCommand({ json: true }, async () => {
        const cfg = loadConfig();
        const challenge = fs.readFileSync(o.challengeFile ?? 0, "utf8").replace(/\r\n/g, "\n").replace(/\n$/, "");
        const pin = o.pinFile ? fs.readFileSync(o.pinFile, "utf8").trim() : await askSecret({ en: "PIN", ja: "暗証番号" }, "--pin-file");
        ensureSoftHsmConfig(cfg);
        const mod = Pkcs11Module.open(cfg.pkcs11Module);
        try {
          return { text: "", json: await signLoginChallenge(new CardStation(mod), o.card, pin, challenge) };
        } catch (e) {
          // The card refused the PIN: print the report to post or paste (the server shows a clear
          // page and audits it), the message on stderr, and fail.
          const report = cardLoginFailure(e, challenge);
          if (report) {
            process.stderr.write(`${MESSAGES[report.error].en}\n${MESSAGES[report.error].ja}\n`);
            process.exitCode = 1;
            return { text: "", json: report };
          }
          throw e;
        } finally {
          mod.close();
        }
      }),
    );

  card
    .command("agent")
    .description("local card agent on 127.0.0.1 for the SSO login page: shows which service and SSO origin ask, asks for the PIN on this terminal, signs the challenge with the card's authentication key")
    .requiredOption("--card <label>", "card token label (card-…)")
    .requiredOption("--sso-origin <origin>", "the SSO center's origin, e.g. https://sso.example.jp: only its pages may call the agent, only its challenges are signed")
    .option("--port <port>", "port on 127.0.0.1 (default HPKI_SSO_CARD_AGENT_PORT, 7390)", (v) => Number.parseInt(v, 10))
    .option("--pin-file <file>", "read the PIN from this file at each request instead of asking on the terminal (unattended tests; keep it mode 0600)")
    .action(async (o: { card: string; ssoOrigin: string; port?: number; pinFile?: string }) => {
      const cfg = loadConfig();
      ensureSoftHsmConfig(cfg);
      if (!o.pinFile && !process.stdin.isTTY) throw new Error("no terminal to ask for the PIN: run the agent in a terminal, or use --pin-file / 端末がないため暗証番号を入力できません");
      const mod = Pkcs11Module.open(cfg.pkcs11Module);
      const station = new CardStation(mod);
      const agent = await startCardAgent({
        ssoOrigin: o.ssoOrigin,
        port: o.port ?? cfg.sso.cardAgentPort,
        sign: async (challenge) => {
          // The PIN is asked for here, after the request was shown, never taken from the page.
          const pin = o.pinFile ? fs.readFileSync(o.pinFile, "utf8").trim() : await askSecret({ en: "PIN (empty: refuse)", ja: "暗証番号（空欄で拒否）" }, "--pin-file");
          if (pin === "") throw new Error("the card holder refused the request / カード所持者が要求を拒否しました");
          try {
            return await signLoginChallenge(station, o.card, pin, challenge.text);
          } catch (e) {
            const report = cardLoginFailure(e, challenge.text);
            if (report) return report;
            throw e;
          }
        },
      });
      process.stdout.write(`${JSON.stringify({ agent: agent.url, ssoOrigin: new URL(o.ssoOrigin).origin, card: o.card })}\n`);
      process.stderr.write(`カードエージェント待機中 / card agent listening on ${agent.url} for ${o.ssoOrigin} (Ctrl-C で終了 / to stop)\n`);
      await new Promise<void>((resolve) => {
        for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve());
      });
      await agent.close();
      mod.close();
    });
}
