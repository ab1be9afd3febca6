/**
 * The patient's client of the PO box (issue 15 §8): registration with the My Number card's
 * authentication certificate (JPKI 利用者証明用電子証明書) and the patient's own encryption key.
 *
 * The client generates an EC P-256 key pair here (the patient's; never sent), makes a self-signed
 * certificate of it (proof of possession, and what senders and `openssl cms` address), asks the box
 * for a challenge, has the JPKI authentication key sign patientChallengeMessage (which covers the
 * box URL, the challenge and the SHA-256 of that certificate), and registers. The private key is
 * written as PKCS #8 PEM (0600) beside the certificate; the bearer token goes to the session file.
 */
import { generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { patientChallengeMessage, patientEncryptionCertificate } from "../pki/jpki.ts";
import { toPem } from "../pki/pem.ts";
import { PoboxClientError, type PoboxSession } from "./pobox-client.ts";

/** Signs the challenge message with the JPKI authentication key (the card, or a simulated key in the demo). */
export type JpkiSigner = (message: Buffer) => Promise<Uint8Array> | Uint8Array;

/** A signer over a software JPKI key (simulated JPKI CA of tests and the demo): RSA PKCS #1 v1.5 or ECDSA, SHA-256. */
export function softwareJpkiSigner(key: KeyObject): JpkiSigner {
  return (message) => nodeSign("sha256", message, key);
}

async function post<T>(box: string, p: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${box}${p}`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  const j = await res.json().catch(() => ({})) as Record<string, unknown>;
  if (!res.ok) throw new PoboxClientError(res.status, String(j.error ?? "error"), String(j.message ?? `HTTP ${res.status}`), j.messageJa as string | undefined);
  return j as T;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** The patient's encryption key files in `dir`: key.pem (PKCS #8) and cert.pem. */
export function patientKeyFiles(dir: string): { key: string; cert: string } {
  return { key: path.join(dir, "patient-enc-key.pem"), cert: path.join(dir, "patient-enc-cert.pem") };
}

/**
 * Registers at `box` (…/pobox): a new EC P-256 encryption key (written to `keyDir`), proven with
 * `jpkiCertificate` and `signJpki`. With `session` (signed in with an earlier JPKI certificate) the
 * new certificate is linked to the same box number. Returns the session (token, box number).
 */
export async function registerPatientAt(p: { box: string; jpkiCertificate: Uint8Array; signJpki: JpkiSigner; keyDir: string; session?: PoboxSession; validityDays?: number }): Promise<PoboxSession & { certificate: Buffer }> {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const now = new Date();
  const certificate = await patientEncryptionCertificate({
    spki: publicKey.export({ format: "der", type: "spki" }), serial: Buffer.concat([Buffer.from([0x01]), randomBytes(15)]),
    notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + (p.validityDays ?? 5 * 365) * 86_400_000),
    sign: (tbs) => nodeSign("sha256", tbs, privateKey),
  });
  const { challenge } = await post<{ challenge: string }>(p.box, "/patient/challenge", {});
  const signature = await p.signJpki(patientChallengeMessage({ box: p.box, challenge, encryptionCertificate: certificate }));
  const r = await post<{ token: string; account: { subscriberId: string; kind: string } }>(p.box, "/patient/register",
    { challenge, jpkiCertificate: b64(p.jpkiCertificate), signature: b64(signature), encryptionCertificate: b64(certificate) }, p.session?.token);
  const files = patientKeyFiles(p.keyDir);
  fs.mkdirSync(p.keyDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(files.key, privateKey.export({ format: "pem", type: "pkcs8" }) as string, { mode: 0o600 });
  fs.writeFileSync(files.cert, toPem(certificate), { mode: 0o644 });
  return { box: p.box, token: r.token, account: r.account, certificate };
}

/** Signs a registered patient in with the JPKI proof: a new session. */
export async function signInPatientAt(box: string, jpkiCertificate: Uint8Array, signJpki: JpkiSigner): Promise<PoboxSession> {
  const { challenge } = await post<{ challenge: string }>(box, "/patient/challenge", {});
  const signature = await signJpki(patientChallengeMessage({ box, challenge }));
  const r = await post<{ token: string; account: { subscriberId: string; kind: string } }>(box, "/patient/sign-in", { challenge, jpkiCertificate: b64(jpkiCertificate), signature: b64(signature) });
  return { box, token: r.token, account: r.account };
}
