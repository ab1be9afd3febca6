/**
 * The PO box's pages (issue 15 §5), Japanese by default with English (`?lang=en`): inbox and sent
 * items with receipts, send (upload an envelope made on the sender's computer), forward (upload the
 * envelope with the added recipient info), designations (組織暗号). Envelopes are made and opened
 * by the client (`hpki pobox`), never in the browser page: the box sees only ciphertext.
 * Texts: views/locales/pobox.{ja,en}.json; templates: views/pobox/.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Request, type Response, type Router } from "express";
import type { Knex } from "knex";
import multer from "multer";
import { loadCatalog, requestLanguage } from "../web/i18n.ts";
import { createViewRenderer } from "../web/views.ts";
import type { Account, Addressee } from "./accounts.ts";
import { PoboxError } from "./errors.ts";
import { forwardMessage, listInbox, listSent, sendMessage, type PoboxLimits } from "./messages.ts";
import { listDesignations, revokeDesignation } from "./organisation.ts";

const VIEWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "views");
const BASE = "/pobox";

/** "person:DOC0001, facility:PHARM01" or one per line → addressees (kind defaults to person). */
export function parseAddressees(text: string): Addressee[] {
  return text.split(/[\s,、]+/).filter(Boolean).map((t) => {
    const [kind, id] = t.includes(":") ? t.split(":", 2) : ["person", t];
    if (kind !== "person" && kind !== "facility" && kind !== "patient") throw new PoboxError("BAD_INPUT", `unknown addressee kind "${kind}"`, `宛先の種類「${kind}」は使えません`);
    return { kind, subscriberId: id.normalize("NFC") };
  });
}

export function pagesRouter(db: Knex, limits: PoboxLimits, who: (req: Request) => Account, o: { csrfToken(req: Request, res: Response): string; secure: boolean }): Router {
  const catalog = loadCatalog(path.join(VIEWS, "locales"));
  const views = createViewRenderer({ viewsDir: VIEWS, catalog, cache: process.env.NODE_ENV === "production", staticUrl: (f) => `/static/${f}` });
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: limits.maxEnvelopeBytes, files: 1 } });
  const r = express.Router();
  const page = (req: Request, res: Response, view: string, data: Record<string, unknown>) => {
    const lang = requestLanguage(req, res, o.secure);
    res.type("html").send(views.render(`pobox/${view}`, { lang, base: BASE, me: who(req), csrfToken: o.csrfToken(req, res), ...data }, "pobox/layout"));
  };
  const wrap = (f: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: (e?: unknown) => void) => void f(req, res).catch(next);
  const file = (req: Request): Buffer => {
    const f = (req as Request & { file?: { buffer: Buffer } }).file;
    if (!f) throw new PoboxError("NOT_AN_ENVELOPE", "choose the envelope file (.p7m) made by hpki pobox", "暗号化文書のファイル（.p7m）を選んでください");
    return f.buffer;
  };

  r.get("/", wrap(async (req, res) => page(req, res, "inbox", { inbox: await listInbox(db, who(req)), sent: await listSent(db, who(req)) })));
  r.get("/send", wrap(async (req, res) => page(req, res, "send", {})));
  r.post("/send", upload.single("envelope"), wrap(async (req, res) => {
    const b = req.body as Record<string, string>;
    await sendMessage(db, who(req), { recipients: parseAddressees(b.recipients ?? ""), documentClass: (b.documentClass ?? "").trim(), forwardAllowed: b.forwardAllowed === "on", envelope: file(req) }, limits);
    res.redirect(303, `${BASE}/`);
  }));
  r.get("/messages/:id/forward", wrap(async (req, res) => page(req, res, "forward", { id: req.params.id })));
  r.post("/messages/:id/forward", upload.single("envelope"), wrap(async (req, res) => {
    await forwardMessage(db, who(req), String(req.params.id), { recipients: parseAddressees((req.body as Record<string, string>).recipients ?? ""), envelope: file(req) }, limits);
    res.redirect(303, `${BASE}/`);
  }));
  r.get("/designations", wrap(async (req, res) => page(req, res, "designations", { designations: await listDesignations(db, who(req)) })));
  r.post("/designations/:id/revoke", wrap(async (req, res) => {
    await revokeDesignation(db, who(req), Number(req.params.id));
    res.redirect(303, `${BASE}/designations`);
  }));
  return r;
}
