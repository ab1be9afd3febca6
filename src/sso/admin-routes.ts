/**
 * SSO center administration console (issue 5 §1, §3): the relying parties (clinical systems) and
 * their account links, at /sso/admin. Administrators register and change clients, disable them,
 * rotate their secret, and confirm, reject or remove account links for services that do not call
 * the link API themselves; auditors read everything and change nothing. Every change is one
 * transaction with its audit record (clients.ts, accounts.ts).
 *
 *   GET  /clients                              list                      admin, auditor
 *   GET  /clients/new, POST /clients           register → the secret, shown once        admin
 *   GET  /clients/:id                          settings, links           admin, auditor
 *   POST /clients/:id                          change settings           admin
 *   POST /clients/:id/disable | /enable        disable / enable          admin
 *   POST /clients/:id/secret                   new secret, shown once    admin
 *   POST /clients/:id/links/:person/confirm    confirm a requested link  admin
 *   POST /clients/:id/links/:person/remove     reject a request / remove a link        admin
 *
 * Forms post redirect URIs one per line, hcRoles and default scopes (granted without consent) as
 * repeated checkboxes, the access-token format (opaque | jwt) and its audience; JSON clients post
 * arrays. With Accept: application/json every page answers its data as JSON.
 */
import type { Request, Router } from "express";
import type { HcRoleCode } from "../pki/hcrole-table.ts";
import { auditActor } from "../pipeline/operator.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { confirmLink, linksAt, removeLink } from "./accounts.ts";
import { DEFAULT_SCOPES, findClient, listClients, NewClientSchema, SCOPES, registerClient, rotateClientSecret, setClientDisabled, updateClient, type ClientSettings, type SsoClient } from "./clients.ts";
import { NotFoundError, parseInput } from "../pipeline/errors.ts";

/** A form value as a list: an array as is, a string split into lines (URIs) or taken whole (checkbox). */
function list(v: unknown, lines: boolean): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v !== "string" || v === "") return [];
  return lines ? v.split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : [v];
}

/** Client settings from a form or JSON body (validated by the service). */
function settingsFrom(body: Record<string, unknown>): ClientSettings {
  return {
    name: typeof body.name === "string" ? body.name.normalize("NFC").trim() : "",
    redirectUris: list(body.redirectUris, true),
    postLogoutRedirectUris: list(body.postLogoutRedirectUris, true),
    allowedHcRoles: list(body.allowedHcRoles, false),
    accountMapping: body.accountMapping === "pairwise" ? "pairwise" : "linked",
    // Absent: unchanged; empty: none (no back-channel logout notices).
    ...("backchannelLogoutUri" in body ? { backchannelLogoutUri: typeof body.backchannelLogoutUri === "string" && body.backchannelLogoutUri.trim() ? body.backchannelLogoutUri.trim() : null } : {}),
    // Scopes granted without consent (issue 14 §7): the form marks that its checkboxes were shown,
    // so none checked means openid alone; absent (JSON without the field): unchanged.
    ...("defaultScopes" in body || "defaultScopesShown" in body ? { defaultScopes: ["openid", ...list(body.defaultScopes, false)] as ClientSettings["defaultScopes"] } : {}),
    ...(body.accessTokenFormat === "jwt" || body.accessTokenFormat === "opaque" ? { accessTokenFormat: body.accessTokenFormat } : {}),
    ...("accessTokenAudience" in body ? { accessTokenAudience: typeof body.accessTokenAudience === "string" && body.accessTokenAudience.trim() ? body.accessTokenAudience.trim() : null } : {}),
  };
}

/** A client as pages and JSON show it (never its secret hash). */
function clientView(c: SsoClient) {
  return {
    clientId: c.clientId, name: c.name, redirectUris: c.redirectUris, postLogoutRedirectUris: c.postLogoutRedirectUris,
    allowedHcRoles: c.allowedHcRoles, accountMapping: c.accountMapping, backchannelLogoutUri: c.backchannelLogoutUri, disabled: c.disabled,
    defaultScopes: c.defaultScopes, accessTokenFormat: c.accessTokenFormat, accessTokenAudience: c.accessTokenAudience,
  };
}

/** Registers the administration routes and their navigation; `issuer` is the OpenID issuer URL (for the discovery link). */
export function mountSsoAdminRoutes(router: Router, kit: ConsoleKit, hcRoles: ReadonlyMap<string, HcRoleCode>, issuer: string): void {
  const db = kit.deps.db;
  const read = kit.requireRole("admin", "auditor");
  const write = kit.requireRole("admin");
  const by = (req: Request) => auditActor(kit.operator(req));
  const discovery = `${issuer}/.well-known/openid-configuration`;
  const title = (en: string, ja: string) => ({ title: { en, ja } });
  kit.addNav({ path: "/clients", label: "Relying parties (clinical systems)", labelJa: "連携サービス（クライアント）" });
  kit.addNav({ path: "/clients/new", label: "Register a service", labelJa: "サービスの登録", roles: ["admin"] });

  /** The hcRole checkboxes: the code table, plus any role a client allows that the table lacks. */
  const roleChoices = (checked: readonly string[]) => {
    const codes = [...hcRoles.values()].map((c) => ({ code: c.code, ja: c.ja }));
    for (const r of checked) if (!hcRoles.has(r)) codes.push({ code: r, ja: r });
    return codes.map((c) => ({ ...c, checked: checked.includes(c.code) }));
  };
  const formData = (values: ClientSettings & { clientId?: string }) => ({
    roleChoices: roleChoices(values.allowedHcRoles ?? []),
    scopeChoices: SCOPES.filter((s) => s !== "openid").map((scope) => ({ scope, checked: (values.defaultScopes ?? DEFAULT_SCOPES).includes(scope) })),
    values: { ...values, redirectUris: (values.redirectUris ?? []).join("\n"), postLogoutRedirectUris: (values.postLogoutRedirectUris ?? []).join("\n") },
  });
  const clientOr404 = async (id: string) => {
    const c = await findClient(db, id);
    if (!c) throw new NotFoundError(`no client "${id}"`, `クライアント「${id}」は登録されていません。`);
    return c;
  };

  router.get("/clients", read, async (req, res) => {
    const pending = new Map<string, number>(
      ((await db("sso_account_links").where({ status: "requested" }).groupBy("client_id").select("client_id").count({ n: "*" })) as { client_id: string; n: string | number }[]).map((r) => [r.client_id, Number(r.n)]),
    );
    const clients = (await listClients(db)).map((c) => ({ ...clientView(c), pendingLinks: pending.get(c.clientId) ?? 0, href: kit.url(`/clients/${encodeURIComponent(c.clientId)}`) }));
    kit.render(res, "sso/admin-clients", { clients, canWrite: req.operator?.role === "admin" }, title("Relying parties", "連携サービス"));
  });

  router.get("/clients/new", write, async (_req, res) => {
    kit.render(res, "sso/admin-client-new", formData({ name: "", redirectUris: [], postLogoutRedirectUris: [], allowedHcRoles: [], accountMapping: "linked" }), title("Register a service", "サービスの登録"));
  });

  router.post("/clients", write, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const settings = settingsFrom(body);
    kit.formView(res, "sso/admin-client-new", formData({ ...settings, clientId: String(body.clientId ?? "") }));
    // Field-by-field issues for the form first; the service validates again (CLI, API).
    const input = parseInput(NewClientSchema, { clientId: String(body.clientId ?? "").trim(), ...settings });
    const { client, secret } = await registerClient(db, input, by(req));
    kit.render(res, "sso/admin-client-secret", { client: clientView(client), secret, discovery, href: kit.url(`/clients/${encodeURIComponent(client.clientId)}`), registered: true }, { status: 201, ...title("Service registered", "サービスを登録しました") });
  });

  router.get("/clients/:id", read, async (req, res) => {
    const c = await clientOr404(String(req.params.id));
    const links = (await linksAt(db, c.clientId)).map((l) => ({
      ...l, pending: l.status === "requested",
      confirmUrl: kit.url(`/clients/${encodeURIComponent(c.clientId)}/links/${encodeURIComponent(l.personId)}/confirm`),
      removeUrl: kit.url(`/clients/${encodeURIComponent(c.clientId)}/links/${encodeURIComponent(l.personId)}/remove`),
    }));
    kit.render(res, "sso/admin-client", { client: clientView(c), links, canWrite: req.operator?.role === "admin", ...formData(c) }, title(`Service ${c.clientId}`, `サービス ${c.clientId}`));
  });

  router.post("/clients/:id", write, async (req, res) => {
    const c = await clientOr404(String(req.params.id));
    const settings = settingsFrom((req.body ?? {}) as Record<string, unknown>);
    kit.formView(res, "sso/admin-client", { client: clientView(c), links: [], canWrite: true, ...formData(settings) });
    const updated = await updateClient(db, c.clientId, settings, by(req));
    if (kit.wantsJson(req)) return void res.json({ client: clientView(updated) });
    kit.flash(req, "success", "Settings saved.", "設定を保存しました。");
    res.redirect(303, kit.url(`/clients/${encodeURIComponent(c.clientId)}`));
  });

  for (const [action, disabled] of [["disable", true], ["enable", false]] as const) {
    router.post(`/clients/:id/${action}`, write, async (req, res) => {
      const c = await setClientDisabled(db, String(req.params.id), disabled, by(req));
      if (kit.wantsJson(req)) return void res.json({ client: clientView(c) });
      kit.flash(req, "success", disabled ? "The service is disabled: no login or token from now on." : "The service is enabled again.", disabled ? "サービスを停止しました。以後ログインもトークン発行もできません。" : "サービスを再開しました。");
      res.redirect(303, kit.url(`/clients/${encodeURIComponent(c.clientId)}`));
    });
  }

  router.post("/clients/:id/secret", write, async (req, res) => {
    const { client, secret } = await rotateClientSecret(db, String(req.params.id), by(req));
    kit.render(res, "sso/admin-client-secret", { client: clientView(client), secret, discovery, href: kit.url(`/clients/${encodeURIComponent(client.clientId)}`), registered: false }, title("New client secret", "新しいクライアントシークレット"));
  });

  router.post("/clients/:id/links/:person/:action", write, async (req, res) => {
    const clientId = String(req.params.id);
    const personId = String(req.params.person);
    const action = String(req.params.action);
    if (action !== "confirm" && action !== "remove") throw new NotFoundError();
    await clientOr404(clientId);
    const link = action === "confirm" ? await confirmLink(db, clientId, personId, by(req)) : await removeLink(db, clientId, personId, by(req));
    if (kit.wantsJson(req)) return void res.json({ link: action === "confirm" ? link : { ...link, removed: true } });
    if (action === "confirm") kit.flash(req, "success", `Linked to account ${link.accountId}.`, `アカウント ${link.accountId} と連携しました。`);
    else kit.flash(req, "success", `The link to account ${link.accountId} was removed.`, `アカウント ${link.accountId} との連携を解除しました。`);
    res.redirect(303, kit.url(`/clients/${encodeURIComponent(clientId)}`));
  });
}
