/**
 * What a revoking process does right after its revocation commits (issue 11 §2): re-signs the
 * pre-signed OCSP responses of the certificates it changed and regenerates the CRL of each CA
 * concerned, so status is current without waiting for a scheduler — `hpki revoke` and the IA
 * revocation worker (console and emergency requests) both hold the CA and OCSP tokens.
 *
 * Stated bound: the CRL and the pre-signed responses are current when this returns (the CLI
 * prints it); when a step fails (an HSM away, the process killed), OCSP is still never stale —
 * the revocation transaction invalidated the pre-signed response, so repositories sign live —
 * and the status scheduler (IA server, `hpki crl schedule`) catches up within its poll interval
 * (15 s by default), since the revocation is newer than the CRL.
 */
import type { Knex } from "knex";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { exportRegisteredDirs, type ExportOutcome } from "../ocsp/export.ts";
import { OcspPresigner } from "../ocsp/presigner.ts";
import type { CrlPolicy } from "../pki/crl-policy.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { generateCrl } from "./crl-generation.ts";
import type { Actor } from "../audit/actor.ts";

export interface StatusRefreshDeps {
  db: Knex;
  /** CA keys: sign the CRL. */
  keys: CaKeyStore;
  crlPolicy: CrlPolicy;
  /** Responder keys on the OCSP token; a function so the token is opened only when needed. */
  ocsp: () => { keys: CaKeyStore; policy: OcspPolicy };
}

/** What happened to one CA's status after the revocation. */
export interface CaStatusRefresh {
  caName: string;
  /** Certificates whose pre-signed responses were re-signed (0: the CA has no responder), or the error. */
  ocsp: { resigned: number } | { error: string };
  crl: { crlNumber: number; entries: number; thisUpdate: Date } | { error: string };
  /** Export directories of this host brought up to date (hpki ocsp export). */
  exported: ExportOutcome[] | { error: string };
}

/**
 * For each CA in `changed` (CA name → serials changed), re-signs those serials' OCSP responses,
 * then generates the CRL; then refreshes this host's registered export directories once (the
 * same outcome in every entry). Never throws: each failure is reported in its CA's entry.
 */
export async function refreshStatusAfterRevocation(deps: StatusRefreshDeps, changed: Map<string, string[]>, by: Actor): Promise<CaStatusRefresh[]> {
  const out: CaStatusRefresh[] = [];
  for (const [caName, serials] of changed) {
    const r: CaStatusRefresh = { caName, ocsp: { resigned: 0 }, crl: { error: "not attempted" }, exported: [] };
    try {
      const { keys, policy } = deps.ocsp();
      r.ocsp = { resigned: await new OcspPresigner({ db: deps.db, keys, policy }).signNow(caName, serials, by) };
    } catch (e) {
      r.ocsp = { error: (e as Error).message };
    }
    try {
      const crl = await generateCrl({ db: deps.db, keys: deps.keys, policy: deps.crlPolicy }, caName, by);
      r.crl = { crlNumber: crl.crlNumber, entries: crl.entries, thisUpdate: crl.thisUpdate };
    } catch (e) {
      r.crl = { error: (e as Error).message };
    }
    out.push(r);
  }
  // One export pass covers every CA: it reads what was written since its watermark.
  let exported: CaStatusRefresh["exported"];
  try {
    exported = await exportRegisteredDirs(deps.db, () => deps.ocsp().policy);
  } catch (e) {
    exported = { error: (e as Error).message };
  }
  for (const r of out) r.exported = exported;
  return out;
}

/** Lines for the CLI (English; the console shows its own): what happened to OCSP and the CRL. */
export function describeStatusRefresh(r: CaStatusRefresh): string[] {
  const lines: string[] = [];
  if ("error" in r.ocsp) {
    lines.push(`OCSP: the pre-signed response was invalidated with the revocation; re-signing failed (${r.ocsp.error}).`,
      "      Repositories sign each answer live until the status scheduler re-signs it.");
  } else if (r.ocsp.resigned > 0) {
    lines.push(`OCSP: the pre-signed response was invalidated with the revocation and re-signed (${r.ocsp.resigned} certificate(s)); every request, with or without a nonce, gets the new status now.`);
  } else {
    lines.push(`OCSP: ${r.caName} has no current OCSP responder (\`hpki ocsp init\`); nothing pre-signed to update.`);
  }
  if ("error" in r.crl) {
    lines.push(`CRL: generation failed (${r.crl.error}).`,
      `     The status scheduler regenerates it within its poll interval, or run \`hpki crl generate --ca ${r.caName} --out FILE\`.`);
  } else {
    lines.push(`CRL: ${r.caName} CRL #${r.crl.crlNumber} generated (${r.crl.entries} entries, thisUpdate ${r.crl.thisUpdate.toISOString()}); the repository serves it now.`);
  }
  if ("error" in r.exported) lines.push(`OCSP export: failed (${r.exported.error}); the scheduler retries.`);
  else for (const e of r.exported) lines.push(`OCSP export: ${e.dir}: ${e.written} file(s) written, ${e.removed} removed.`);
  return lines;
}
