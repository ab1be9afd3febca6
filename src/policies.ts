/**
 * Loads policies/ from disk: certificate profiles (policies/profiles/*.yaml) and the hcRole code
 * table (policies/hcrole-codes.yaml). Parsing and validation live in src/pki (pure); this is the
 * file-reading shell around them.
 */
import fs from "node:fs";
import path from "node:path";
import { processConfig } from "./config.ts";
import { parseProfile, type CertificateProfile } from "./pki/profile.ts";
import { parseHcRoleTable } from "./pki/hcrole-table.ts";

/** The policies/ directory of this process: HPKI_POLICIES, else the repository's (processConfig). */
export const POLICIES_DIR = processConfig().policiesDir;

export interface Policies {
  profiles: ReadonlyMap<string, CertificateProfile>;
  hcRoles: ReturnType<typeof parseHcRoleTable>;
}

/** Reads and validates every profile and the hcRole table. Throws naming the offending file. */
export function loadPolicies(dir: string = POLICIES_DIR): Policies {
  const profileDir = path.join(dir, "profiles");
  const profiles = new Map<string, CertificateProfile>();
  for (const f of fs.readdirSync(profileDir).filter((f) => f.endsWith(".yaml")).sort()) {
    const file = path.join(profileDir, f);
    const p = parseProfile(fs.readFileSync(file, "utf8"), file);
    if (profiles.has(p.name)) throw new Error(`${file}: profile "${p.name}" defined twice`);
    profiles.set(p.name, p);
  }
  const hcRoles = parseHcRoleTable(fs.readFileSync(path.join(dir, "hcrole-codes.yaml"), "utf8"));
  return { profiles, hcRoles };
}
