/**
 * IA console — CAs and their CRLs (issue 4 item 5): per CA its subject, validity, key label and
 * algorithm, and the current CRL (the root's ARL): crlNumber, thisUpdate, nextUpdate, entries
 * and size; "generate CRL now" for IA operators.
 *
 *   GET  /cas             → {cas: [...]}
 *   POST /cas/:name/crl   → {crl}
 */
import type { Router } from "express";
import type { Knex } from "knex";
import { NotFoundError } from "../../pipeline/errors.ts";
import { auditActor } from "../../pipeline/operator.ts";
import type { ConsoleKit } from "../../web/console/kit.ts";
import { formatName } from "../../pki/name-decode.ts";
import { listCas } from "../ca-registry.ts";
import { generateCrl } from "../crl-generation.ts";
import { sendJson, type IaGuards, type IaRouteDeps } from "./common.ts";

/** The newest CRL row of each CA (size read from the stored value's header, not the bytes). */
async function currentCrls(db: Knex): Promise<Map<number, Record<string, any>>> {
  const rows = await db.raw(`SELECT DISTINCT ON (ca_id) ca_id, crl_number, this_update, next_update, entries,
      octet_length(der) AS bytes, encode(sha256, 'hex') AS sha256
    FROM crls ORDER BY ca_id, crl_number DESC`);
  return new Map((rows.rows as Record<string, any>[]).map((r) => [Number(r.ca_id), r]));
}

/** Every CA with its current CRL, root first. */
export async function caOverview(db: Knex, now = new Date()) {
  const cas = await listCas(db);
  const crls = await currentCrls(db);
  const byId = new Map(cas.map((c) => [c.id, c]));
  return cas.map((ca) => {
    const crl = crls.get(ca.id);
    const nextUpdate = crl ? new Date(crl.next_update) : null;
    return {
      name: ca.name,
      kind: ca.kind,
      purpose: ca.purpose,
      parent: ca.parentId == null ? null : (byId.get(ca.parentId)?.name ?? null),
      subject: formatName(ca.subjectDer),
      serialHex: ca.serialHex,
      notBefore: ca.notBefore,
      notAfter: ca.notAfter,
      keyLabel: ca.key.label,
      keyAlgorithm: ca.key.algorithm,
      crlUrl: ca.crlUrl,
      crl: crl
        ? {
            kind: ca.kind === "root" ? "arl" : "crl",
            crlNumber: Number(crl.crl_number),
            thisUpdate: new Date(crl.this_update),
            nextUpdate,
            entries: Number(crl.entries),
            bytes: Number(crl.bytes),
            sha256: crl.sha256 as string,
            overdue: nextUpdate !== null && nextUpdate.getTime() < now.getTime(),
          }
        : null,
    };
  });
}

/** Registers the CA / CRL routes. */
export function mountCaRoutes(router: Router, kit: ConsoleKit, deps: IaRouteDeps, guard: IaGuards): void {
  const { db, keys } = deps.ctx;

  router.get("/cas", guard.read, async (req, res) => {
    kit.render(res, "cas", { cas: await caOverview(db), hsm: deps.ctx.hsmHealth(), canGenerate: req.operator?.role === "ia_operator" }, { title: { en: "CAs and CRLs", ja: "認証局とCRL" } });
  });

  router.post("/cas/:name/crl", guard.write, async (req, res) => {
    const name = String(req.params.name);
    if (!(await db("certificate_authorities").where({ name }).first("id"))) {
      throw new NotFoundError(`no CA named "${name}"`, `認証局「${name}」は存在しません`);
    }
    const r = await generateCrl({ db, keys, policy: deps.crlPolicy }, name, auditActor(kit.operator(req)));
    const crl = {
      caName: r.caName, kind: r.kind, crlNumber: r.crlNumber, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate,
      entries: r.entries, bytes: r.der.length, sha256: r.sha256,
    };
    if (kit.wantsJson(req)) {
      sendJson(res, 200, { crl });
      return;
    }
    const what = r.kind === "arl" ? "ARL" : "CRL";
    kit.flash(req, "success", `${what} #${r.crlNumber} of ${r.caName} generated (${r.entries} entries, ${r.der.length} bytes).`,
      `${r.caName} の${what}（番号 ${r.crlNumber}、失効エントリ ${r.entries} 件、${r.der.length.toLocaleString("ja-JP")} バイト）を生成しました。`);
    res.redirect(303, kit.url("/cas"));
  });
}
