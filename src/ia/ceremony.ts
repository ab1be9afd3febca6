/**
 * Runs a key ceremony (policies/ceremony.*.yaml): creates the root and issuing-CA keys in the HSM,
 * signs the CA certificates from the root and issuing-ca profiles, stores them and writes PEMs to
 * $HPKI_HOME/repo/<ca name>.pem. Idempotent: a CA that exists with the same ceremony entry is left
 * alone and reported "unchanged"; a different entry for an existing CA is refused; a key whose label
 * already exists in the HSM (a ceremony interrupted after key generation) is reused, never replaced.
 */
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import { appendAudit, canonicalJson } from "../audit/log.ts";
import type { CaKeyStore, HsmKeyRef } from "../hsm/ca-keys.ts";
import { encodeCertificate } from "../pki/certificate.ts";
import { encodeHpkiName } from "../pki/name.ts";
import { assertLintClean } from "../pki/lint.ts";
import { toPem } from "../pki/pem.ts";
import type { CertificateProfile } from "../pki/profile.ts";
import { newSerialNumber, serialHex } from "../pki/serial.ts";
import { buildTbsCertificate, subjectKeyIdentifier, type IssuerContext } from "../pki/tbs.ts";
import { computeValidity } from "../pki/validity.ts";
import { certificateUrlProblem } from "../pki/public-url.ts";
import { expandTemplate, type CertificateUrls } from "../pki/tbs.ts";
import { HpkiError } from "../pipeline/errors.ts";
import { caFromRow, issuerContextFor, signatureAlgorithmFor, type CaRecord } from "./ca-registry.ts";
import type { CeremonyFile, CeremonyIssuingCa, CeremonyRoot } from "./ceremony-file.ts";
import { withCeremonyLock } from "./ceremony-lock.ts";
import type { Actor } from "../audit/actor.ts";

export interface CeremonyOutcome {
  name: string;
  kind: "root" | "issuing";
  /** created: new key + certificate; key-reused: an existing HSM key got its certificate; unchanged. */
  result: "created" | "key-reused" | "unchanged";
  serialHex: string;
  subject: string;
  pem: string;
}

export interface CeremonyDeps {
  db: Knex;
  keys: CaKeyStore;
  profiles: ReadonlyMap<string, CertificateProfile>;
  repoDir: string;
  /** The deployment's repository URL and production strictness (certificateUrls(cfg)); default: the demo's. */
  urls?: CertificateUrls;
  now?: () => Date;
}

/** Runs `file`; returns one outcome per CA in file order. Throws before touching anything it refuses. */
export async function runCeremony(deps: CeremonyDeps, file: CeremonyFile, by: Actor): Promise<CeremonyOutcome[]> {
  return withCeremonyLock(deps.db, () => runCeremonyLocked(deps, file, by));
}

async function runCeremonyLocked(deps: CeremonyDeps, file: CeremonyFile, by: Actor): Promise<CeremonyOutcome[]> {
  const now = deps.now ?? (() => new Date());
  fs.mkdirSync(deps.repoDir, { recursive: true });
  // Refuse conflicts and (production) non-public CRL URLs for every CA up front, so a bad file
  // changes nothing at all.
  for (const entry of [file.root, ...file.issuingCAs]) await checkNoConflict(deps.db, entry);
  const crlUrl = (entry: CeremonyRoot | CeremonyIssuingCa) =>
    expandTemplate(("arlUrl" in entry ? entry.arlUrl : "crlUrl" in entry ? entry.crlUrl : undefined) ?? "{repoUrl}/crl/{caName}.crl", { caName: entry.name, repoUrl: deps.urls?.repoUrl });
  if (deps.urls?.publicUrlsOnly) {
    for (const entry of [file.root, ...file.issuingCAs]) {
      const why = certificateUrlProblem(crlUrl(entry));
      if (why) throw new HpkiError(`CA ${entry.name}: ${why.en} (production)`, `CA ${entry.name}: ${why.ja}（本番モード）`, 400, "url_not_public");
    }
  }

  const out: CeremonyOutcome[] = [];
  const rootResult = await ensureCa(deps, by, now(), { entry: file.root, kind: "root", purpose: "root", parent: null, crlUrl: crlUrl(file.root) });
  out.push(rootResult.outcome);
  for (const entry of file.issuingCAs) {
    const r = await ensureCa(deps, by, now(), { entry, kind: "issuing", purpose: entry.purpose, parent: rootResult.ca, crlUrl: crlUrl(entry) });
    out.push(r.outcome);
  }
  return out;
}

interface EnsureArgs {
  entry: CeremonyRoot | CeremonyIssuingCa;
  kind: "root" | "issuing";
  purpose: string;
  parent: CaRecord | null;
  crlUrl: string;
}

async function checkNoConflict(db: Knex, entry: CeremonyRoot | CeremonyIssuingCa): Promise<void> {
  const row = await db("certificate_authorities").where({ name: entry.name }).orWhere({ key_label: entry.key.label }).first();
  if (!row) return;
  if (row.name !== entry.name) {
    throw new Error(`key label "${entry.key.label}" already belongs to CA "${row.name}": a key label names one key`);
  }
  const stored = typeof row.ceremony === "string" ? JSON.parse(row.ceremony) : row.ceremony;
  if (canonicalJson(stored) !== canonicalJson(entry)) {
    throw new Error(
      `CA "${entry.name}" already exists and its ceremony entry differs from the file; a ceremony never changes an existing CA (use a new name and key label)`,
    );
  }
}

async function ensureCa(deps: CeremonyDeps, by: Actor, now: Date, a: EnsureArgs): Promise<{ ca: CaRecord; outcome: CeremonyOutcome }> {
  const pemPath = path.join(deps.repoDir, `${a.entry.name}.pem`);
  const existing = await deps.db("certificate_authorities").where({ name: a.entry.name }).first();
  if (existing) {
    const ca = caFromRow(existing);
    writePem(pemPath, ca.certificate);
    return { ca, outcome: outcome(ca, "unchanged", pemPath, a.entry) };
  }

  const profile = caProfile(deps.profiles, a.entry.profile, "certificatePolicies" in a.entry ? a.entry.certificatePolicies : undefined);
  let key: HsmKeyRef | null = await deps.keys.findKey(a.entry.key.label);
  const result = key ? "key-reused" : "created";
  if (key && key.algorithm !== a.entry.key.algorithm) {
    throw new Error(`HSM key "${a.entry.key.label}" is ${key.algorithm}, the ceremony file says ${a.entry.key.algorithm}`);
  }
  key ??= await deps.keys.generateKeyPair(a.entry.key.label, a.entry.key.algorithm);

  const subjectDer = encodeHpkiName({ c: a.entry.subject.c, o: a.entry.subject.o, ou: a.entry.subject.ou, cn: a.entry.subject.cn });
  const ski = subjectKeyIdentifier(key.spki);
  const serial = newSerialNumber();
  const issuer: IssuerContext = a.parent
    ? issuerContextFor(a.parent, null, deps.urls)
    : {
        ...deps.urls,
        // Self-issued root: AKI names itself, like the MHLW root [CERT].
        caName: a.entry.name,
        name: subjectDer,
        keyIdentifier: ski,
        authorityCertIssuer: subjectDer,
        authorityCertSerialNumber: serial,
        signatureAlgorithm: signatureAlgorithmFor(key.algorithm),
        crlDistributionPointUrl: a.crlUrl,
      };
  const signingKey = a.parent ? await deps.keys.findKey(a.parent.key.label) : key;
  if (!signingKey) throw new Error(`the key of ${a.parent?.name} is not in the HSM`);
  const validity = computeValidity(profile, now, a.parent ? { notAfterCap: a.parent.notAfter } : {});
  const tbs = buildTbsCertificate({
    profile,
    issuer,
    serialNumber: serial,
    subject: { kind: "ca", name: { c: a.entry.subject.c, o: a.entry.subject.o, ou: a.entry.subject.ou, cn: a.entry.subject.cn } },
    subjectPublicKeyInfo: key.spki,
    validity,
  });
  assertLintClean(tbs, profile, issuer);
  const certificate = encodeCertificate(tbs, issuer.signatureAlgorithm, await deps.keys.sign(signingKey, tbs));

  const row = await deps.db.transaction(async (trx) => {
    const [inserted] = await trx("certificate_authorities")
      .insert({
        name: a.entry.name,
        kind: a.kind,
        purpose: a.purpose,
        parent_id: a.parent?.id ?? null,
        key_label: key.label,
        key_id: key.id,
        key_algorithm: key.algorithm,
        serial_hex: serialHex(serial),
        subject_der: subjectDer,
        ski,
        certificate,
        not_before: validity.notBefore,
        not_after: validity.notAfter,
        crl_url: a.crlUrl,
        ceremony: JSON.stringify(a.entry),
      })
      .returning("*");
    await appendAudit(trx, [{
      ...by,
      action: "ca.created",
      objectType: "certificate_authority",
      objectId: a.entry.name,
      details: { kind: a.kind, purpose: a.purpose, keyLabel: key.label, keyAlgorithm: key.algorithm, serial: serialHex(serial), keyReused: result === "key-reused" },
    }]);
    return inserted;
  });
  const ca = caFromRow(row);
  writePem(pemPath, certificate);
  return { ca, outcome: outcome(ca, result, pemPath, a.entry) };
}

/** The CA profile, with certificatePolicies narrowed to `oids` (each must be in the profile). */
function caProfile(profiles: ReadonlyMap<string, CertificateProfile>, name: string, oids: string[] | undefined): CertificateProfile {
  const p = profiles.get(name);
  if (!p) throw new Error(`unknown profile "${name}"`);
  if (p.kind !== "ca") throw new Error(`profile "${name}" is not a CA profile`);
  if (!oids) return p;
  return {
    ...p,
    extensions: p.extensions.map((e) => {
      if (e.name !== "certificatePolicies") return e;
      const allowed = new Map(e.policies.map((q) => [q.oid, q]));
      const missing = oids.filter((o) => !allowed.has(o));
      if (missing.length) throw new Error(`policy ${missing.join(", ")} is not allowed by profile "${name}"`);
      return { ...e, policies: oids.map((o) => allowed.get(o)!) };
    }),
  };
}

function writePem(file: string, der: Uint8Array): void {
  const pem = toPem(der);
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== pem) fs.writeFileSync(file, pem);
}

function outcome(ca: CaRecord, result: CeremonyOutcome["result"], pem: string, entry: CeremonyRoot | CeremonyIssuingCa): CeremonyOutcome {
  const s = entry.subject;
  return {
    name: ca.name,
    kind: ca.kind,
    result,
    serialHex: ca.serialHex,
    subject: [`C=${s.c}`, `O=${s.o}`, s.ou ? `OU=${s.ou}` : "", `CN=${s.cn}`].filter(Boolean).join(", "),
    pem,
  };
}
