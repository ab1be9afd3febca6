/**
 * The encryption-certificate directory of the repository (issue 15 §4): the current certificates
 * of the `enc` (professionals) and `enc-org` (facilities) profiles, searchable by subscriber id,
 * facility (organisation name or the facility's subscriber id) and hcRole; only valid ones — issued, inside
 * their validity period, not revoked (nor on hold). JSON, public like the rest of the repository:
 * encryption certificates are meant to be found by senders.
 *
 *   GET /directory/enc?subscriber=…&facility=…&hcRole=…&limit=…
 *   → {certificates: [{subscriberId, hcRole, organization, profile, ca, serialHex, notBefore, notAfter,
 *       certificate (base64 DER), issuer (base64 DER of the issuing CA), issuerUrl (/certs/<ca>.cer)}]}
 *
 * A sending client must still validate the chain and the revocation status itself (CRL or OCSP):
 * this answer is a search, not a status statement.
 */
import express, { type Router } from "express";
import type { Knex } from "knex";
import { z } from "zod";

export const ENC_PROFILES = ["enc", "enc-org"] as const;
const MAX_RESULTS = 200;

const QuerySchema = z.object({
  subscriber: z.string().trim().min(1).max(64).optional(),
  facility: z.string().trim().min(1).max(200).optional(),
  hcRole: z.string().trim().min(1).max(100).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_RESULTS).default(50),
});

export interface DirectoryEntry {
  subscriberId: string | null;
  hcRole: string | null;
  organization: { latin?: string; kanji?: string } | null;
  profile: string;
  ca: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  certificate: string;
  issuer: string;
  issuerUrl: string;
}

/** The valid encryption certificates matching the query (all criteria together), newest first. */
export async function searchEncryptionCertificates(db: Knex, q: z.infer<typeof QuerySchema>, at = new Date()): Promise<DirectoryEntry[]> {
  const query = db("certificates as c").join("certificate_authorities as a", "a.id", "c.ca_id")
    .whereIn("c.profile", ENC_PROFILES).where("c.status", "issued").where("c.not_before", "<=", at).where("c.not_after", ">", at)
    .whereNotExists(db("revocations as r").whereRaw("r.certificate_id = c.id").where((w) => w.whereNull("r.released_at")))
    .orderBy("c.id", "desc").limit(q.limit)
    .select("c.subscriber_id", "c.hc_role", "c.subject", "c.profile", "c.serial_hex", "c.not_before", "c.not_after", "c.der", "a.name as ca", "a.certificate as ca_der");
  if (q.subscriber) query.where("c.subscriber_id", q.subscriber.normalize("NFC"));
  if (q.hcRole) query.whereRaw("lower(c.hc_role) = lower(?)", [q.hcRole]);
  if (q.facility) {
    const f = q.facility.normalize("NFC");
    query.where((w) => w.whereRaw("c.subject->'organization'->>'latin' = ?", [f]).orWhereRaw("c.subject->'organization'->>'kanji' = ?", [f])
      .orWhere((o) => o.where("c.profile", "enc-org").where("c.subscriber_id", f)));
  }
  const rows = await query;
  return rows.map((r) => ({
    subscriberId: r.subscriber_id, hcRole: r.hc_role, organization: r.subject?.organization ?? null, profile: r.profile, ca: r.ca, serialHex: r.serial_hex,
    notBefore: r.not_before, notAfter: r.not_after, certificate: Buffer.from(r.der).toString("base64"), issuer: Buffer.from(r.ca_der).toString("base64"),
    issuerUrl: `/certs/${encodeURIComponent(r.ca)}.cer`,
  }));
}

/** GET /directory/enc (see the module comment); 400 with the field on a bad query. */
export function directoryRouter(db: Knex): Router {
  const r = express.Router();
  r.get("/directory/enc", (req, res, next) => {
    const q = QuerySchema.safeParse(req.query);
    if (!q.success) {
      res.status(400).json({ error: "bad_query", message: q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "), messageJa: "検索条件が正しくありません" });
      return;
    }
    searchEncryptionCertificates(db, q.data).then((certificates) => {
      res.setHeader("Cache-Control", "no-store");
      res.json({ certificates });
    }, next);
  });
  return r;
}
