/**
 * The signed-challenge card login (issue 5 §2b). The SSO center issues a fresh 256-bit nonce bound
 * to one oidc-provider interaction; the card signs the challenge text with its authentication key
 * (PKCS#1 v1.5 / ECDSA with SHA-256, as CardSession.sign does, JAHIS "challenge signing"); the
 * first attempt that presents the nonce consumes it, so a replay finds it used.
 *
 * Challenge text (UTF-8, LF-separated, signed as is):
 *
 *   HPKI-SSO-LOGIN-1
 *   issuer=<OpenID issuer URL>
 *   interaction=<interaction uid>
 *   nonce=<base64url of 32 random bytes>
 *   expires=<ISO 8601 UTC>
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { PathValidationError } from "../pki/path-validation.ts";

// The signature check is shared with the consoles' card sign-in (src/status/challenge-signature.ts).
export { verifyChallengeSignature } from "../status/challenge-signature.ts";

const HEADER = "HPKI-SSO-LOGIN-1";

/** The parts of a challenge. */
export interface LoginChallenge {
  issuer: string;
  interaction: string;
  nonce: string;
  expires: Date;
  /** The exact text to sign. */
  text: string;
}

/** Lifetime of a challenge, ms. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** Creates and stores a fresh challenge for interaction `uid`. */
export async function issueChallenge(db: Knex, issuer: string, uid: string, now: Date = new Date()): Promise<LoginChallenge> {
  const nonce = randomBytes(32).toString("base64url");
  const expires = new Date(now.getTime() + CHALLENGE_TTL_MS);
  await db("sso_challenges").insert({ nonce, interaction_uid: uid, created_at: now, expires_at: expires });
  const text = [HEADER, `issuer=${issuer}`, `interaction=${uid}`, `nonce=${nonce}`, `expires=${expires.toISOString()}`].join("\n");
  return { issuer, interaction: uid, nonce, expires, text };
}

/** Parses challenge text; @throws PathValidationError "challenge-invalid" when it is not one. */
export function parseChallenge(text: string): LoginChallenge {
  const lines = text.split("\n");
  const field = (i: number, name: string) => {
    const l = lines[i] ?? "";
    if (!l.startsWith(`${name}=`)) throw new PathValidationError("challenge-invalid", `line ${i + 1} must be ${name}=…`);
    return l.slice(name.length + 1);
  };
  if (lines.length !== 5 || lines[0] !== HEADER) throw new PathValidationError("challenge-invalid", "not an HPKI-SSO-LOGIN-1 challenge");
  const expires = new Date(field(4, "expires"));
  if (Number.isNaN(expires.getTime())) throw new PathValidationError("challenge-invalid", "bad expires");
  return { issuer: field(1, "issuer"), interaction: field(2, "interaction"), nonce: field(3, "nonce"), expires, text };
}

/**
 * Consumes the challenge for interaction `uid` inside `trx`: it must be ours, for this issuer and
 * interaction, unexpired and unused. @throws PathValidationError "challenge-replayed" (already
 * used) or "challenge-invalid" (unknown, other interaction/issuer, expired).
 */
export async function consumeChallenge(trx: Knex | Knex.Transaction, c: LoginChallenge, issuer: string, uid: string, now: Date = new Date()): Promise<void> {
  if (c.issuer !== issuer || c.interaction !== uid) throw new PathValidationError("challenge-invalid", "challenge is for another issuer or interaction");
  const row = await trx("sso_challenges").where({ nonce: c.nonce }).first();
  if (!row || row.interaction_uid !== uid) throw new PathValidationError("challenge-invalid", "unknown nonce");
  if (new Date(row.expires_at).getTime() !== c.expires.getTime()) throw new PathValidationError("challenge-invalid", "expiry does not match the issued challenge");
  const n = await trx("sso_challenges").where({ nonce: c.nonce }).whereNull("used_at").where("expires_at", ">", now).update({ used_at: now });
  if (n === 1) return;
  if (row.used_at) throw new PathValidationError("challenge-replayed", `nonce used at ${new Date(row.used_at).toISOString()}`);
  throw new PathValidationError("challenge-invalid", "challenge expired");
}
