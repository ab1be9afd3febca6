/**
 * A simulated JPKI CA for patients' 利用者証明用電子証明書 (issue 15 §8), made with OpenSSL (the
 * independent judge): a self-signed RSA-2048 root named like J-LIS's user-authentication CA, end
 * entities in the JPKI user-authentication shape (subject C=JP + an issuance-number CN, no name;
 * RSA-2048; keyUsage digitalSignature critical; the JPKI auth policy OID), revocation and a CRL
 * (`openssl ca -gencrl`). Not J-LIS's profile verbatim: see src/pki/jpki.ts for what is unsure. For
 * `hpki pobox demo` and the tests; never for production, where HPKI_JPKI_ANCHORS are J-LIS's.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { JPKI_AUTH_POLICY_OID } from "../pki/jpki.ts";
import { fromPemOrDer } from "../pki/pem.ts";

export const JPKI_ROOT_SUBJECT = "/C=JP/O=JPKI/OU=JPKI for user authentication/OU=Japan Agency for Local Authority Information Systems";

export interface JpkiUser {
  certFile: string;
  keyFile: string;
  der: Buffer;
  /** The subject CN (an issuance string; no name). */
  cn: string;
  serialHex: string;
}

export interface JpkiSim {
  dir: string;
  rootFile: string;
  crlFile: string;
  issue(name: string): JpkiUser;
  revoke(u: JpkiUser): void;
  /** Writes a current CRL (nextUpdate in one day) to crlFile. */
  gencrl(): void;
}

const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

/** A simulated JPKI CA in `dir` (created), with an empty current CRL. */
export function simulatedJpkiCa(dir: string, subject = JPKI_ROOT_SUBJECT): JpkiSim {
  fs.mkdirSync(path.join(dir, "newcerts"), { recursive: true });
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), `${randomBytes(8).toString("hex").replace(/^./, "1")}\n`);
  fs.writeFileSync(path.join(dir, "crlnumber"), "01\n");
  const cnf = path.join(dir, "ca.cnf");
  fs.writeFileSync(cnf, [
    "[ca]", "default_ca = jpki", "[jpki]", `dir = ${dir}`, "database = $dir/index.txt", "new_certs_dir = $dir/newcerts",
    "serial = $dir/serial", "crlnumber = $dir/crlnumber", "default_md = sha256", "policy = any", "unique_subject = no",
    "default_days = 1825", "default_crl_days = 1", "preserve = yes", "copy_extensions = none",
    "[any]", "countryName = optional", "commonName = optional",
    "[ee]", "keyUsage = critical,digitalSignature", `certificatePolicies = ${JPKI_AUTH_POLICY_OID}`,
    "authorityKeyIdentifier = keyid", "subjectKeyIdentifier = hash",
    "[crl]", "authorityKeyIdentifier = keyid", "",
  ].join("\n"));
  const rootKey = path.join(dir, "root.key");
  const rootFile = path.join(dir, "root.pem");
  const crlFile = path.join(dir, "crl.pem");
  openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rootKey);
  openssl("req", "-x509", "-new", "-key", rootKey, "-subj", subject, "-days", "3650", "-sha256",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", rootFile);
  const sim: JpkiSim = {
    dir, rootFile, crlFile,
    issue(name) {
      const keyFile = path.join(dir, `${name}.key`);
      const certFile = path.join(dir, `${name}.pem`);
      const csr = path.join(dir, `${name}.csr`);
      const cn = `${randomBytes(12).toString("hex").toUpperCase().slice(0, 12)}A${Date.now().toString().slice(-10)}`;
      openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyFile);
      openssl("req", "-new", "-key", keyFile, "-subj", `/C=JP/CN=${cn}`, "-out", csr);
      openssl("ca", "-batch", "-config", cnf, "-extensions", "ee", "-keyfile", rootKey, "-cert", rootFile, "-in", csr, "-out", certFile, "-notext");
      const serialHex = openssl("x509", "-in", certFile, "-noout", "-serial").trim().replace(/^serial=/, "");
      return { certFile, keyFile, der: fromPemOrDer(fs.readFileSync(certFile)), cn, serialHex };
    },
    revoke(u) {
      openssl("ca", "-config", cnf, "-keyfile", rootKey, "-cert", rootFile, "-revoke", u.certFile, "-crl_reason", "keyCompromise");
    },
    gencrl() {
      openssl("ca", "-config", cnf, "-keyfile", rootKey, "-cert", rootFile, "-gencrl", "-crlexts", "crl", "-out", crlFile);
    },
  };
  sim.gencrl();
  return sim;
}
