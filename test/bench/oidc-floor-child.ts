/**
 * The reference of the SSO bench (sso-logins.ts): oidc-provider as its README shows it — in-memory
 * storage, one confidential client, RS256 ID tokens, express with the provider mounted — and a
 * login that is one POST with no card and no database. The same five requests as our login
 * (authorize, login page, login post, resume, token) cost here what the library itself costs;
 * the SSO center's CPU per login is reported against it, as issuance is against the raw HSM rate.
 *
 * Run: node --import tsx oidc-floor-child.ts <client secret>; prints {"url","pid"} once it listens.
 */
import { generateKeyPairSync } from "node:crypto";
import type { AddressInfo } from "node:net";
import express from "express";
import Provider from "oidc-provider";

const secret = process.argv[2];
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const app = express();
const server = app.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: "bench-rp", client_secret: secret, redirect_uris: ["http://rp.bench/cb"] }],
    jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "floor", alg: "RS256", use: "sig" }] as never },
    cookies: { keys: ["bench-floor-cookie-key"] },
    pkce: { required: () => true },
    claims: { openid: ["sub"], hcrole: ["hcRole"] },
    scopes: ["openid", "hcrole"],
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, hcRole: "Medical Doctor" }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  app.get("/interaction/:uid", async (req, res) => {
    const d = await provider.interactionDetails(req, res);
    res.json({ challenge: "none", submit: `${issuer}/interaction/${d.uid}/login` });
  });
  app.post("/interaction/:uid/login", express.json(), async (req, res) => {
    const d = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: "person-1", clientId: String(d.params.client_id) });
    grant.addOIDCScope(String(d.params.scope));
    const grantId = await grant.save();
    const redirectTo = await provider.interactionResult(req, res, { login: { accountId: "person-1" }, consent: { grantId } }, { mergeWithLastSubmission: false });
    res.json({ redirectTo });
  });
  app.use(provider.callback());
  process.stdout.write(`${JSON.stringify({ url: issuer, pid: process.pid })}\n`);
});
