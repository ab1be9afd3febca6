/** Loads the real HPKI certificates in test/fixtures/hpki-real/certs (DER) by file stem. */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Absolute path of the real-certificate fixture directory. */
export const REAL_CERT_DIR = fileURLToPath(new URL("../../fixtures/hpki-real/certs/", import.meta.url));

/** Every fixture as { name (file stem), file (absolute path), der }. */
export const realCerts: { name: string; file: string; der: Buffer }[] = readdirSync(REAL_CERT_DIR)
  .filter((f) => f.endsWith(".der"))
  .sort()
  .map((f) => ({ name: f.replace(/\.der$/, ""), file: REAL_CERT_DIR + f, der: readFileSync(REAL_CERT_DIR + f) }));

/** One fixture's DER by stem, e.g. "medis-ee-sign-doctor-015e"; throws if unknown. */
export function realCert(name: string): Buffer {
  const c = realCerts.find((x) => x.name === name);
  if (!c) throw new Error(`no real cert ${name}`);
  return c.der;
}
