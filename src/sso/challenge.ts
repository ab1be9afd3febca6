/**
 * The signed-challenge card login (issue 5 §2b). The SSO center issues a fresh 256-bit nonce bound
 * to one oidc-provider interaction; the card signs the challenge text with its authentication key
 * (PKCS#1 v1.5 / ECDSA with SHA-256, as CardSession.sign does, JAHIS "challenge signing"); the
 * first attempt that presents the nonce consumes it, so a replay finds it used.
 *
 * Challenge text (UTF-8, NFC, LF-separated, signed as is; issue 14 §9):
 *
 *   HPKI-SSO-LOGIN-2
 *   origin=<origin of the SSO center (RFC 6454 §6.1), e.g. https://sso.example.jp>
 *   issuer=<OpenID issuer URL>
 *   client_id=<client id of the relying party that asked>
 *   client_name=<its display name, for the card agent to show; control characters become spaces>
 *   interaction=<interaction uid>
 *   nonce=<base64url of 32 random bytes>
 *   expires=<ISO 8601 UTC>
 *
 * The origin, client id and interaction are bound into the signature: the card agent signs only a
 * challenge whose origin is the SSO origin it was configured for (and only for a page of that
 * origin), and the server accepts it only for the same origin, issuer, client and interaction, so a
 * challenge relayed by a page of another origin, or taken from another service's login, fails.
 */
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { PathValidationError } from "../pki/path-validation.ts";
import { prepared, runPrepared } from "../store/prepared.ts";

// The signature check is shared with the consoles' card sign-in (src/status/challenge-signature.ts).
export { verifyChallengeSignature } from "../status/challenge-signature.ts";

const HEADER = "HPKI-SSO-LOGIN-2";
const FIELDS = ["origin", "issuer", "client_id", "client_name", "interaction", "nonce", "expires"] as const;

/** The parts of a challenge. */
export interface LoginChallenge {
  /** Origin of the SSO center (scheme://host[:port]). */
  origin: string;
  issuer: string;
  clientId: string;
  /** Display name of the client (shown by the card agent; not checked). */
  clientName: string;
  interaction: string;
  nonce: string;
  expires: Date;
  /** The exact text to sign. */
  text: string;
}

/** Lifetime of a challenge, ms. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** The client a challenge is issued for. */
export interface ChallengeClient {
  clientId: string;
  name: string;
}

/** One line's value: NFC, control characters (line breaks included) replaced by spaces. */
const lineValue = (v: string): string => v.normalize("NFC").replace(/[\u0000-\u001f\u007f]/g, " ");

// Named statements (src/store/prepared.ts): one of each per login.
const SQL = {
  issue: prepared("sso_challenge_issue", "INSERT INTO sso_challenges (nonce, interaction_uid, created_at, expires_at) VALUES ($1, $2, $3, $4)"),
  consume: prepared("sso_challenge_consume",
    "UPDATE sso_challenges SET used_at = $4 WHERE nonce = $1 AND interaction_uid = $2 AND expires_at = $3 AND used_at IS NULL AND expires_at > $4"),
};

/** Creates and stores a fresh challenge for interaction `uid` of `client`. */
export async function issueChallenge(db: Knex, issuer: string, uid: string, client: ChallengeClient, now: Date = new Date()): Promise<LoginChallenge> {
  const nonce = randomBytes(32).toString("base64url");
  const expires = new Date(now.getTime() + CHALLENGE_TTL_MS);
  await runPrepared(db, SQL.issue, [nonce, uid, now, expires]);
  const c = { origin: new URL(issuer).origin, issuer, clientId: lineValue(client.clientId), clientName: lineValue(client.name), interaction: uid, nonce, expires };
  const values = [c.origin, c.issuer, c.clientId, c.clientName, c.interaction, c.nonce, expires.toISOString()];
  const text = [HEADER, ...FIELDS.map((f, i) => `${f}=${values[i]}`)].join("\n");
  return { ...c, text };
}

/** Parses challenge text; @throws PathValidationError "challenge-invalid" when it is not one. */
export function parseChallenge(text: string): LoginChallenge {
  const lines = text.split("\n");
  if (lines.length !== FIELDS.length + 1 || lines[0] !== HEADER) throw new PathValidationError("challenge-invalid", `not an ${HEADER} challenge`);
  const v = FIELDS.map((name, i) => {
    const l = lines[i + 1];
    if (!l.startsWith(`${name}=`)) throw new PathValidationError("challenge-invalid", `line ${i + 2} must be ${name}=…`);
    return l.slice(name.length + 1);
  });
  const expires = new Date(v[6]);
  if (Number.isNaN(expires.getTime())) throw new PathValidationError("challenge-invalid", "bad expires");
  return { origin: v[0], issuer: v[1], clientId: v[2], clientName: v[3], interaction: v[4], nonce: v[5], expires, text };
}

/**
 * Consumes the challenge for interaction `uid` of client `clientId` (on its own, committed at once,
 * so a failed login still used it up): it must be ours,
 * for this origin, issuer, client and interaction, unexpired and unused. @throws
 * PathValidationError "challenge-replayed" (already used) or "challenge-invalid" (unknown, other
 * origin/issuer/client/interaction, expired).
 */
export async function consumeChallenge(db: Knex, c: LoginChallenge, issuer: string, clientId: string, uid: string, now: Date = new Date()): Promise<void> {
  if (c.origin !== new URL(issuer).origin || c.issuer !== issuer) throw new PathValidationError("challenge-invalid", `challenge is for another origin (${c.origin})`);
  if (c.clientId !== clientId) throw new PathValidationError("challenge-invalid", `challenge is for another client (${c.clientId})`);
  if (c.interaction !== uid) throw new PathValidationError("challenge-invalid", "challenge is for another interaction");
  // The common case in one statement: the issued, unused, unexpired challenge is marked used.
  if ((await runPrepared(db, SQL.consume, [c.nonce, uid, c.expires, now])).rowCount === 1) return;
  // Refused: read the row only to say why.
  const row = await db("sso_challenges").where({ nonce: c.nonce }).first();
  if (!row || row.interaction_uid !== uid) throw new PathValidationError("challenge-invalid", "unknown nonce");
  if (new Date(row.expires_at).getTime() !== c.expires.getTime()) throw new PathValidationError("challenge-invalid", "expiry does not match the issued challenge");
  if (row.used_at) throw new PathValidationError("challenge-replayed", `nonce used at ${new Date(row.used_at).toISOString()}`);
  throw new PathValidationError("challenge-invalid", "challenge expired");
}
