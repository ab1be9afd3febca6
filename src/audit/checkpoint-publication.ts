/**
 * Publication of the signed audit checkpoints by the repository role (issue 10 §5), so auditors
 * can fetch and keep them outside the database owner's reach:
 *
 *   GET /audit/checkpoints          JSON listing, newest first: {checkpoints: [{id, seq, hash, signedAt, signerSha256, url}]}
 *   GET /audit/checkpoints/latest   the newest checkpoint, CMS SignedData DER (application/pkcs7-mime; smime-type=signed-data)
 *   GET /audit/checkpoints/<id>     one checkpoint, the same
 *
 * Verify one with `openssl cms -verify -inform DER -in cp.p7m -CAfile audit-signer.pem` (the
 * signer certificate from `hpki audit checkpoint --signer-out`, pinned once); the output is the
 * checkpoint JSON {type, version, seq, hash, signedAt}.
 */
import express, { type Router } from "express";
import type { Knex } from "knex";
import { checkpointById, latestCheckpoint, listCheckpoints, type StoredCheckpoint } from "./checkpoint.ts";

/** RFC 8551 §3.2.1 media type of a SignedData. */
const CMS_TYPE = "application/pkcs7-mime; smime-type=signed-data";

/** The express router serving the endpoints above from `db` (read-only). */
export function auditCheckpointRouter(db: Knex): Router {
  const router = express.Router();
  const send = (res: express.Response, c: StoredCheckpoint | null, cache: string) => {
    if (!c) {
      res.status(404).type("text").send("no such audit checkpoint / 該当する監査チェックポイントはありません\n");
      return;
    }
    res.setHeader("Content-Type", CMS_TYPE);
    res.setHeader("Content-Disposition", `attachment; filename="audit-checkpoint-${c.id}.p7m"`);
    res.setHeader("Cache-Control", cache);
    res.send(c.cms);
  };
  router.get("/audit/checkpoints", async (_req, res, next) => {
    try {
      const list = await listCheckpoints(db);
      res.setHeader("Cache-Control", "no-cache");
      res.json({ checkpoints: list.map((c) => ({ ...c, url: `/audit/checkpoints/${c.id}` })) });
    } catch (e) {
      next(e);
    }
  });
  router.get("/audit/checkpoints/latest", async (_req, res, next) => {
    try {
      send(res, await latestCheckpoint(db), "no-cache");
    } catch (e) {
      next(e);
    }
  });
  router.get("/audit/checkpoints/:id", async (req, res, next) => {
    try {
      const id = /^[1-9][0-9]{0,15}$/.test(String(req.params.id)) ? Number(req.params.id) : null;
      // A checkpoint never changes once signed.
      send(res, id === null ? null : await checkpointById(db, id), "public, max-age=86400, immutable");
    } catch (e) {
      next(e);
    }
  });
  return router;
}
