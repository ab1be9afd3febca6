/**
 * Delegated OCSP responder certificates (RFC 6960 §4.2.2.2), issued by the IA — the only role
 * that holds CA keys — for every issuing CA: a fresh key pair generated sensitive and
 * non-extractable on the OCSP token (never the CA token), a short-lived certificate signed by the
 * CA with id-kp-OCSPSigning and id-pkix-ocsp-nocheck. Idempotent: a CA whose current responder
 * has more than renewBeforeDays left is left alone; a key left on the token by an interrupted run
 * is reused, never duplicated. Serialised with the key ceremony lock.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import type { Knex } from "knex";
import { appendAudit } from "../audit/log.ts";
import type { CaKeyStore } from "../hsm/ca-keys.ts";
import { encodeCertificate } from "../pki/certificate.ts";
import { encodeHpkiName } from "../pki/name.ts";
import { buildResponderTbsCertificate } from "../pki/ocsp-responder-certificate.ts";
import type { OcspPolicy } from "../pki/ocsp-policy.ts";
import { subjectPublicKeyBits } from "../pki/ocsp-response.ts";
import { newSerialNumber, serialHex } from "../pki/serial.ts";
import { responderFromRow } from "../ocsp/responders.ts";
import { listCas, signatureAlgorithmFor } from "./ca-registry.ts";
import { withCeremonyLock } from "./ceremony-lock.ts";
import type { Actor } from "../audit/actor.ts";

export interface OcspResponderDeps {
  db: Knex;
  /** CA keys (CA token): signs the responder certificates. */
  caKeys: CaKeyStore;
  /** Responder keys (OCSP token): where the responder key pairs are generated. */
  ocspKeys: CaKeyStore;
  policy: OcspPolicy;
  now?: () => Date;
}

export interface OcspResponderOutcome {
  caName: string;
  /** created: first responder of the CA; renewed: replaces one close to notAfter; unchanged. */
  result: "created" | "renewed" | "unchanged";
  keyLabel: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** Responder certificate DER. */
  certificate: Buffer;
}

/** Backdating of notBefore, for relying parties whose clocks run a little behind. */
const NOT_BEFORE_SKEW_MS = 5 * 60_000;

/**
 * Ensures every issuing CA has a current responder certificate (see the module comment); returns
 * one outcome per issuing CA, by CA name. Each new certificate is stored with its audit record
 * ("ocsp.responder-created") in one transaction.
 * @throws Error when a CA key is missing from the HSM or a responder certificate's signature does
 *   not verify with the CA's key (nothing stored for that CA).
 */
export function ensureOcspResponders(deps: OcspResponderDeps, by: Actor): Promise<OcspResponderOutcome[]> {
  return withCeremonyLock(deps.db, async () => {
    const now = (deps.now ?? (() => new Date()))();
    const out: OcspResponderOutcome[] = [];
    for (const ca of (await listCas(deps.db)).filter((c) => c.kind === "issuing")) {
      const rows = await deps.db("ocsp_responders").where({ ca_id: ca.id }).orderBy("not_after", "desc");
      const current = rows[0] ? responderFromRow(rows[0]) : null;
      const renewAt = current ? current.notAfter.getTime() - deps.policy.responder.renewBeforeDays * 86_400_000 : 0;
      if (current && renewAt > now.getTime()) {
        out.push({ caName: ca.name, result: "unchanged", keyLabel: current.key.label, serialHex: current.serialHex, notBefore: current.notBefore, notAfter: current.notAfter, certificate: current.certificate });
        continue;
      }
      const label = `${ca.name}-ocsp-${rows.length + 1}`;
      const key = (await deps.ocspKeys.findKey(label)) ?? (await deps.ocspKeys.generateKeyPair(label, deps.policy.responder.keyAlgorithm));
      const caKey = await deps.caKeys.findKey(ca.key.label);
      if (!caKey) throw operatorError(`CA key "${ca.key.label}" of ${ca.name} is not in the HSM`, `${ca.name} の CA 鍵「${ca.key.label}」が HSM にありません`);
      const serial = newSerialNumber();
      const notBefore = new Date(Math.floor((now.getTime() - NOT_BEFORE_SKEW_MS) / 1000) * 1000);
      const notAfter = new Date(Math.min(now.getTime() + deps.policy.responder.validityDays * 86_400_000, ca.notAfter.getTime()));
      const signatureAlgorithm = signatureAlgorithmFor(ca.key.algorithm);
      const tbs = buildResponderTbsCertificate({
        issuerName: ca.subjectDer,
        issuerKeyIdentifier: ca.ski,
        signatureAlgorithm,
        serialNumber: serial,
        subjectName: encodeHpkiName({ c: "JP", o: deps.policy.responder.organization, cn: `${ca.name} OCSP Responder` }),
        subjectPublicKeyInfo: key.spki,
        notBefore,
        notAfter,
      });
      const signature = await deps.caKeys.sign(caKey, tbs);
      if (!verify("sha256", tbs, createPublicKey({ key: caKey.spki, format: "der", type: "spki" }), signature)) {
        throw operatorError(`responder certificate for ${ca.name} does not verify with its CA key "${caKey.label}"; nothing stored`,
          `${ca.name} の OCSP レスポンダ証明書が CA 鍵「${caKey.label}」で検証できません（何も保存していません）`);
      }
      const certificate = encodeCertificate(tbs, signatureAlgorithm, signature);
      await deps.db.transaction(async (trx) => {
        await trx("ocsp_responders").insert({
          ca_id: ca.id,
          key_label: label,
          key_id: key.id,
          key_algorithm: key.algorithm,
          spki: key.spki,
          key_hash: createHash("sha1").update(subjectPublicKeyBits(key.spki)).digest(),
          serial_hex: serialHex(serial),
          certificate,
          not_before: notBefore,
          not_after: notAfter,
        });
        await appendAudit(trx, [{
          ...by,
          action: "ocsp.responder-created",
          objectType: "ocsp-responder",
          objectId: `${ca.name}:${serialHex(serial)}`,
          details: { keyLabel: label, keyAlgorithm: key.algorithm, notBefore, notAfter, replaces: current?.serialHex ?? null },
        }]);
      });
      out.push({ caName: ca.name, result: current ? "renewed" : "created", keyLabel: label, serialHex: serialHex(serial), notBefore, notAfter, certificate });
    }
    return out;
  });
}

/** An Error with the Japanese message the CLI prints under the English one. */
function operatorError(english: string, japanese: string): Error & { messageJa: string } {
  return Object.assign(new Error(english), { messageJa: japanese });
}
