/**
 * OCSP plumbing shared by the IA (which issues responder certificates and pre-signs responses)
 * and the repository role (which answers requests and signs nonce responses live): the OCSP
 * token, the policy file, the current responder of each CA and the signing of one
 * BasicOCSPResponse. Never touches the CA token.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Knex } from "knex";
import type { Config } from "../config.ts";
import { CaKeyStore, type HsmKeyRef, type KeyAlgorithm } from "../hsm/ca-keys.ts";
import type { Pkcs11Module } from "../hsm/module.ts";
import { SessionPool } from "../hsm/pool.ts";
import { ensureOcspToken } from "../hsm/softhsm.ts";
import type { SignatureAlgorithmName } from "../pki/certificate.ts";
import { encodeOcspResponse, encodeResponseData, type ResponseDataInput } from "../pki/ocsp-response.ts";
import { parseOcspPolicy, type OcspPolicy } from "../pki/ocsp-policy.ts";
import { POLICIES_DIR } from "../policies.ts";
import { toBuffer } from "../store/rows.ts";

/** Reads policies/ocsp.yaml (or `dir`/ocsp.yaml). @throws Error naming the file when invalid. */
export function loadOcspPolicy(dir: string = POLICIES_DIR): OcspPolicy {
  const file = path.join(dir, "ocsp.yaml");
  return parseOcspPolicy(fs.readFileSync(file, "utf8"), file);
}

/** The responder key store on the OCSP token, and its session pool (close it with pool.close()). */
export interface OcspKeys {
  pool: SessionPool;
  keys: CaKeyStore;
}

/**
 * Opens a session pool on the OCSP token (cfg.ocspTokenLabel; created in embedded mode) of the
 * already open `mod`. `size` defaults to 2 × cores. @throws HsmError as ensureOcspToken.
 */
export function openOcspKeys(mod: Pkcs11Module, cfg: Config, size: number = os.availableParallelism() * 2): OcspKeys {
  const { pin } = ensureOcspToken(mod, cfg);
  const pool = new SessionPool(mod, { tokenLabel: cfg.ocspTokenLabel, pin, size });
  return { pool, keys: new CaKeyStore(pool) };
}

/** A delegated responder (a row of ocsp_responders) with its key reference on the OCSP token. */
export interface OcspResponder {
  id: number;
  caId: number;
  key: HsmKeyRef;
  /** ResponderID byKey: SHA-1 of the responder's subjectPublicKey (RFC 6960 §4.2.1). */
  keyHash: Buffer;
  serialHex: string;
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
  signatureAlgorithm: SignatureAlgorithmName;
}

/** An ocsp_responders row as an OcspResponder (RSA-2048 keys sign sha256WithRSAEncryption, P-256 ecdsa-with-SHA256). */
export function responderFromRow(r: Record<string, any>): OcspResponder {
  const algorithm = r.key_algorithm as KeyAlgorithm;
  return {
    id: Number(r.id),
    caId: Number(r.ca_id),
    key: { label: r.key_label, id: toBuffer(r.key_id), algorithm, spki: toBuffer(r.spki) },
    keyHash: toBuffer(r.key_hash),
    serialHex: r.serial_hex,
    certificate: toBuffer(r.certificate),
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    signatureAlgorithm: algorithm === "RSA-2048" ? "sha256WithRSAEncryption" : "ecdsa-with-SHA256",
  };
}

/**
 * The current responder of every CA that has one at `now`: the valid one (notBefore ≤ now <
 * notAfter) with the latest notAfter. Map keyed by CA id.
 */
export async function currentResponders(db: Knex, now: Date): Promise<Map<number, OcspResponder>> {
  const rows = await db("ocsp_responders").where("not_before", "<=", now).where("not_after", ">", now).orderBy([{ column: "ca_id" }, { column: "not_after", order: "desc" }]);
  const out = new Map<number, OcspResponder>();
  for (const r of rows) if (!out.has(Number(r.ca_id))) out.set(Number(r.ca_id), responderFromRow(r));
  return out;
}

/**
 * Signs one BasicOCSPResponse with `responder`'s key on the OCSP token and returns the complete
 * OCSPResponse DER (RFC 6960 §4.2.1), the responder certificate included. `data.responderKeyHash`
 * is taken from the responder. @throws HsmError when the key is missing from the token.
 */
export async function signOcspResponse(keys: CaKeyStore, responder: OcspResponder, data: Omit<ResponseDataInput, "responderKeyHash">): Promise<Buffer> {
  const tbs = encodeResponseData({ ...data, responderKeyHash: responder.keyHash });
  const signature = await keys.sign(responder.key, tbs);
  return encodeOcspResponse(tbs, responder.signatureAlgorithm, signature, [responder.certificate]);
}
