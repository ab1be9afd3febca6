/**
 * The CA hierarchy as the IA sees it: rows of certificate_authorities turned into what issuance
 * needs (HSM key reference, IssuerContext for the tbsCertificate, validity cap).
 */
import type { Knex } from "knex";
import type { HsmKeyRef, KeyAlgorithm } from "../hsm/ca-keys.ts";
import type { CertificateUrls, IssuerContext, SignatureAlgorithmName } from "../pki/tbs.ts";
import { toBuffer } from "../store/rows.ts";

export type CaPurpose = "root" | "sign" | "auth-person" | "auth-org" | "enc";

/**
 * The CA purpose that issues an end-entity profile: its own name, except enc-org, which the
 * encryption CA (purpose "enc") issues beside enc (HPKI-PROFILE §12: one encryption CA, ours).
 */
export function caPurposeOfProfile(profile: string): string {
  return profile === "enc-org" ? "enc" : profile;
}

export interface CaRecord {
  id: number;
  name: string;
  kind: "root" | "issuing";
  purpose: CaPurpose;
  parentId: number | null;
  key: Omit<HsmKeyRef, "spki"> & { spki?: Buffer };
  serialHex: string;
  subjectDer: Buffer;
  ski: Buffer;
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
  crlUrl: string | null;
}

/** Signature algorithm a CA key produces (RFC 4055 §5 / RFC 5758 §3.2). */
export function signatureAlgorithmFor(alg: KeyAlgorithm): SignatureAlgorithmName {
  return alg === "RSA-2048" ? "sha256WithRSAEncryption" : "ecdsa-with-SHA256";
}

export function caFromRow(r: Record<string, any>): CaRecord {
  return {
    id: Number(r.id),
    name: r.name,
    kind: r.kind,
    purpose: r.purpose,
    parentId: r.parent_id == null ? null : Number(r.parent_id),
    key: { label: r.key_label, id: toBuffer(r.key_id), algorithm: r.key_algorithm },
    serialHex: r.serial_hex,
    subjectDer: toBuffer(r.subject_der),
    ski: toBuffer(r.ski),
    certificate: toBuffer(r.certificate),
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    crlUrl: r.crl_url ?? null,
  };
}

/** Serial magnitude from its hex form (odd-length hex gets its leading zero back). */
function serialBytes(hex: string): Buffer {
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex");
}

/** All CAs, root first then issuing CAs by name. */
export async function listCas(db: Knex): Promise<CaRecord[]> {
  const rows = await db("certificate_authorities").orderByRaw("kind = 'root' DESC, name");
  return rows.map(caFromRow);
}

export async function findCaByName(db: Knex, name: string): Promise<CaRecord | null> {
  const r = await db("certificate_authorities").where({ name }).first();
  return r ? caFromRow(r) : null;
}

/**
 * The IssuerContext for certificates signed by `ca` (RFC 5280 §4.1.2.4 issuer, §4.2.1.1 AKI):
 * AKI carries keyid plus the CA certificate's own issuer name and serial, as real HPKI
 * certificates do. `parent` is the CA that issued `ca`'s certificate (null for the root, whose
 * certificate is self-issued). `urls`: the deployment's repository URL and production strictness.
 */
export function issuerContextFor(ca: CaRecord, parent: CaRecord | null, urls: CertificateUrls = {}): IssuerContext {
  return {
    ...urls,
    caName: ca.name,
    name: ca.subjectDer,
    keyIdentifier: ca.ski,
    authorityCertIssuer: (parent ?? ca).subjectDer,
    authorityCertSerialNumber: serialBytes(ca.serialHex),
    signatureAlgorithm: signatureAlgorithmFor(ca.key.algorithm),
    crlDistributionPointUrl: ca.crlUrl ?? undefined,
  };
}

/**
 * The issuing CA for an end-entity `profile` (sign → the CA whose purpose is sign, …), or the CA
 * named `caName`, which must be an issuing CA of that purpose. Throws a clear error otherwise.
 */
export async function resolveIssuingCa(db: Knex, profile: string, caName?: string): Promise<{ ca: CaRecord; parent: CaRecord | null }> {
  const all = await listCas(db);
  const candidates = all.filter((c) => c.kind === "issuing" && c.purpose === caPurposeOfProfile(profile) && (!caName || c.name === caName));
  if (candidates.length === 0) {
    throw new Error(caName
      ? `CA "${caName}" is not an issuing CA for profile "${profile}" (see \`hpki ca list\`)`
      : `no issuing CA for profile "${profile}": run \`hpki ca init\` first`);
  }
  if (candidates.length > 1) throw new Error(`several issuing CAs for profile "${profile}": name one with --ca`);
  const ca = candidates[0];
  return { ca, parent: all.find((c) => c.id === ca.parentId) ?? null };
}
