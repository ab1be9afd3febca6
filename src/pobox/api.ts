/**
 * The PO box's JSON API (issue 15 §5–§7), for `hpki pobox` and other clients. Binary values
 * (envelopes, keys, capsules) travel as base64; GET …/envelope answers the DER itself
 * (application/cms). Input is checked with zod; refusals are PoboxErrors rendered by server.ts.
 *
 *   GET  /api/me                                    the signed-in account
 *   GET  /api/messages?box=inbox|sent               summaries with delivery / read receipts
 *   POST /api/messages                              {recipients, documentClass, forwardAllowed, envelope}
 *   GET  /api/messages/:id/envelope                 the envelope DER
 *   POST /api/messages/:id/read                     read receipt
 *   POST /api/messages/:id/forward                  {recipients, envelope}: same encrypted content, recipient infos added
 *   GET  /api/messages/:id/chain                    the forward chain
 *   GET  /api/messages/:id/reencryption             capsule fragment for a designee (組織暗号)
 *   GET|POST /api/pre-key                           the caller's PRE key (public + wrapped secret)
 *   GET  /api/people/:id/pre-key                    a person's PRE public key (for the facility's key holder)
 *   GET  /api/facilities/:id/key, POST …            a facility's organisation key (publish: admins)
 *   GET  /api/designations, POST, POST /:id/revoke  designations (admins of the facility)
 *   GET  /api/patients/:boxNumber/key               a registered patient's encryption certificate (professionals; audited)
 */
import express, { type Request, type Response, type Router } from "express";
import type { Knex } from "knex";
import { z } from "zod";
import { AddresseeSchema, type Account } from "./accounts.ts";
import { PoboxError } from "./errors.ts";
import { fetchEnvelope, forwardChain, forwardMessage, listInbox, listSent, markRead, sendMessage, type PoboxLimits } from "./messages.ts";
import { patientKeyFor } from "./patients.ts";
import { designate, facilityKeys, listDesignations, preKeyOf, publishFacilityKey, registerPreKey, reencryptFor, revokeDesignation } from "./organisation.ts";

const b64 = z.string().max(200_000_000).regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64").transform((s) => Buffer.from(s, "base64"));
const documentClass = z.string().trim().min(1).max(64).regex(/^[\w.-]+$/, "letters, digits, . _ -");
const SendSchema = z.strictObject({ recipients: z.array(AddresseeSchema).min(1).max(100), documentClass, forwardAllowed: z.boolean().default(true), envelope: b64 });
const ForwardSchema = z.strictObject({ recipients: z.array(AddresseeSchema).min(1).max(100), envelope: b64 });
const PreKeySchema = z.strictObject({ publicKey: b64, wrappedSecret: b64 });
const FacilityKeySchema = z.strictObject({ prePublicKey: b64, verifyingKey: b64 });
const DesignateSchema = z.strictObject({ facility: z.string().min(1).max(64), documentClass, designee: z.string().min(1).max(64), kfrag: b64 });

/** Parses `body` with `schema`; a refusal names the fields. */
export function parseInput<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body);
  if (!r.success) {
    const fields = r.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
    throw new PoboxError("BAD_INPUT", `invalid input: ${fields}`, `入力が正しくありません: ${fields}`);
  }
  return r.data;
}

const hex = (b: Buffer): string => b.toString("base64");

/** The API router; `who(req)` is the signed-in account (server.ts has refused anonymous requests). */
export function apiRouter(db: Knex, limits: PoboxLimits, who: (req: Request) => Account): Router {
  const r = express.Router();
  const wrap = (f: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: (e?: unknown) => void) => {
    f(req, res).then((out) => { if (out !== undefined && !res.headersSent) res.json(out); }, next);
  };
  r.get("/me", wrap(async (req) => who(req)));
  r.get("/messages", wrap(async (req) => ({ messages: req.query.box === "sent" ? await listSent(db, who(req)) : await listInbox(db, who(req)) })));
  r.post("/messages", wrap(async (req, res) => {
    const m = await sendMessage(db, who(req), parseInput(SendSchema, req.body), limits);
    res.status(201);
    return m;
  }));
  r.get("/messages/:id/envelope", wrap(async (req, res) => {
    const m = await fetchEnvelope(db, who(req), String(req.params.id));
    res.setHeader("Content-Type", "application/cms");
    res.setHeader("X-Document-Class", m.documentClass);
    res.send(m.envelope);
  }));
  r.post("/messages/:id/read", wrap(async (req) => markRead(db, who(req), String(req.params.id))));
  r.post("/messages/:id/forward", wrap(async (req, res) => {
    const m = await forwardMessage(db, who(req), String(req.params.id), parseInput(ForwardSchema, req.body), limits);
    res.status(201);
    return m;
  }));
  r.get("/messages/:id/chain", wrap(async (req) => ({ chain: await forwardChain(db, who(req), String(req.params.id)) })));
  r.get("/messages/:id/reencryption", wrap(async (req) => {
    const x = await reencryptFor(db, who(req), String(req.params.id));
    return { capsule: hex(x.capsule), cfrag: hex(x.cfrag), encryptedKey: hex(x.encryptedKey), facilityKey: hex(x.facilityKey), verifyingKey: hex(x.verifyingKey) };
  }));
  r.get("/pre-key", wrap(async (req) => {
    const me = who(req);
    const k = await preKeyOf(db, { kind: me.kind, subscriberId: me.subscriberId });
    if (!k) throw new PoboxError("NOT_FOUND", "no PRE key registered", "再暗号化用の鍵が登録されていません");
    return { publicKey: hex(k.publicKey), wrappedSecret: hex(k.wrappedSecret) };
  }));
  r.post("/pre-key", wrap(async (req) => {
    await registerPreKey(db, who(req), parseInput(PreKeySchema, req.body));
    return { ok: true };
  }));
  r.get("/people/:id/pre-key", wrap(async (req) => {
    const k = await preKeyOf(db, { kind: "person", subscriberId: String(req.params.id) });
    if (!k) throw new PoboxError("NOT_FOUND", `${req.params.id} has registered no PRE key`, `${req.params.id} の再暗号化用の鍵は登録されていません`);
    return { publicKey: hex(k.publicKey) };
  }));
  r.get("/facilities/:id/key", wrap(async (req) => {
    const k = await facilityKeys(db, String(req.params.id));
    if (!k) throw new PoboxError("NOT_FOUND", `facility ${req.params.id} has published no organisation key`, `施設 ${req.params.id} の組織暗号鍵は公開されていません`);
    return { prePublicKey: hex(k.prePublicKey), verifyingKey: hex(k.verifyingKey) };
  }));
  r.post("/facilities/:id/key", wrap(async (req) => {
    await publishFacilityKey(db, who(req), String(req.params.id), parseInput(FacilityKeySchema, req.body));
    return { ok: true };
  }));
  r.get("/patients/:id/key", wrap(async (req) => {
    const k = await patientKeyFor(db, who(req), String(req.params.id));
    return { subscriberId: k.subscriberId, certificate: hex(k.certificate), registeredAt: k.registeredAt };
  }));
  r.get("/designations", wrap(async (req) => ({ designations: await listDesignations(db, who(req)) })));
  r.post("/designations", wrap(async (req, res) => {
    const d = await designate(db, who(req), parseInput(DesignateSchema, req.body));
    res.status(201);
    return d;
  }));
  r.post("/designations/:id/revoke", wrap(async (req) => {
    const id = Number(req.params.id);
    if (!Number.isSafeInteger(id)) throw new PoboxError("NOT_FOUND", "no such designation", "該当する指定はありません");
    await revokeDesignation(db, who(req), id);
    return { ok: true };
  }));
  return r;
}
