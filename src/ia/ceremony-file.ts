/**
 * The key-ceremony file (policies/ceremony.*.yaml): a reviewed description of the CA hierarchy —
 * root and issuing CAs, their HSM key labels and algorithms, subject names, policies and CRL
 * URLs — in the manner of Boulder's ceremony tool. Parsing only; `runCeremony` acts on it.
 *
 * CRL URLs: per CA in the file (`arlUrl`, `crlUrl`), or by default `{repoUrl}/crl/<name>.crl`;
 * `{repoUrl}` is the deployment's public repository URL (HPKI_REPO_URL), expanded at the ceremony.
 */
import fs from "node:fs";
import { z } from "zod";
import { readYamlDocument } from "../pki/yaml-document.ts";

const caName = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, "lowercase letters, digits and '-' (used in file names and URLs)");
const key = z.strictObject({
  label: z.string().min(1).max(64),
  algorithm: z.enum(["RSA-2048", "P-256"]),
});
const subject = z.strictObject({
  c: z.literal("JP").default("JP"),
  o: z.string().min(1).max(64),
  ou: z.string().min(1).max(64).optional(),
  cn: z.string().min(1).max(64),
});
const httpUrl = z.string().regex(/^(https?:\/\/|\{repoUrl\}\/)\S+$/, "an http(s) URL, or {repoUrl}/…");
const dottedOid = z.string().regex(/^[0-2](\.(0|[1-9]\d*))+$/, "a dotted OID");

const ceremonySchema = z.strictObject({
  version: z.literal(1),
  root: z.strictObject({
    name: caName,
    profile: z.string().default("root"),
    key,
    subject,
    /** Where the root publishes its ARL; written into the issuing CA certificates' CRLDP. Default {repoUrl}/crl/<name>.crl. */
    arlUrl: httpUrl.optional(),
  }),
  issuingCAs: z
    .array(
      z.strictObject({
        name: caName,
        /** The end-entity profile this CA issues: sign | auth-person | auth-org | enc (enc and enc-org, ours: HPKI-PROFILE §12). */
        purpose: z.enum(["sign", "auth-person", "auth-org", "enc"]),
        profile: z.string().default("issuing-ca"),
        key,
        subject,
        /** The CA policy OIDs of this CA's certificate: a subset of the profile's list. */
        certificatePolicies: z.array(dottedOid).min(1).optional(),
        /** Where this CA publishes its CRL; written into its end-entity certificates' CRLDP. Default {repoUrl}/crl/<name>.crl. */
        crlUrl: httpUrl.optional(),
      }),
    )
    .min(1),
});

export type CeremonyFile = z.infer<typeof ceremonySchema>;
export type CeremonyRoot = CeremonyFile["root"];
export type CeremonyIssuingCa = CeremonyFile["issuingCAs"][number];

/**
 * Parses and validates a ceremony file. Throws an Error listing every problem as "path: message",
 * and refuses duplicate CA names or key labels (a key label names one HSM key, forever).
 */
export function parseCeremonyFile(text: string, source: string): CeremonyFile {
  const r = readYamlDocument(text, ceremonySchema);
  if (!r.ok) throw new Error(`${source}: invalid ceremony file:\n  ${r.issues.join("\n  ")}`);
  const all = [r.data.root, ...r.data.issuingCAs];
  for (const field of ["name", "label"] as const) {
    const values = all.map((c) => (field === "name" ? c.name : c.key.label));
    const dup = values.find((v, i) => values.indexOf(v) !== i);
    if (dup) throw new Error(`${source}: ${field === "name" ? "CA name" : "key label"} "${dup}" appears twice`);
  }
  return r.data;
}

/** Reads and parses the ceremony file at `file` (see parseCeremonyFile for the errors). */
export function readCeremonyFile(file: string): CeremonyFile {
  return parseCeremonyFile(fs.readFileSync(file, "utf8"), file);
}
