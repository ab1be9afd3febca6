/**
 * The patients' entrance of the PO box (issue 15 §8), before sign-in: JSON, no cookie session.
 *
 *   POST /patient/challenge   → {challenge, expiresAt}                       one-time, 5 minutes
 *   POST /patient/register    {challenge, jpkiCertificate, signature, encryptionCertificate} → {account, token}
 *                             (with a patient's bearer token: a renewed JPKI certificate is linked to that account)
 *   POST /patient/sign-in     {challenge, jpkiCertificate, signature} → {account, token}
 *
 * Binary values are base64. The token is then used on /api like a professional's (inbox, fetch, read).
 */
import express, { type Request, type Response, type Router } from "express";
import { z } from "zod";
import type { Account } from "./accounts.ts";
import { parseInput } from "./api.ts";
import { PoboxError } from "./errors.ts";
import { issuePatientChallenge, registerPatient, signInPatient, type PatientContext } from "./patients.ts";
import { accountOfToken } from "./sso-rp.ts";

const b64 = z.string().max(65_536).regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64").transform((s) => Buffer.from(s, "base64"));
const challenge = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "the box's challenge");
const SignInSchema = z.strictObject({ challenge, jpkiCertificate: b64, signature: b64 });
const RegisterSchema = SignInSchema.extend({ encryptionCertificate: b64 });

/** The router of /patient. */
export function patientRouter(ctx: PatientContext): Router {
  const r = express.Router();
  const wrap = (f: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: (e?: unknown) => void) => {
    f(req, res).then((out) => res.json(out), next);
  };
  r.post("/challenge", wrap(async () => issuePatientChallenge(ctx.db)));
  r.post("/register", wrap(async (req, res) => {
    const input = parseInput(RegisterSchema, req.body);
    const auth = req.headers.authorization;
    let current: Account | undefined;
    if (auth?.startsWith("Bearer ")) {
      // Linking a renewed certificate: an expired or unknown token must not silently make a new box number.
      current = await accountOfToken(ctx.db, auth.slice(7));
      if (!current) throw new PoboxError("UNAUTHENTICATED", "the session has expired: sign in with the current JPKI certificate first (hpki pobox patient sign-in)", "セッションの有効期限が切れています。現在の利用者証明用電子証明書でサインインし直してください");
    }
    const out = await registerPatient(ctx, input, input.encryptionCertificate, current);
    res.status(201);
    return out;
  }));
  r.post("/sign-in", wrap(async (req) => signInPatient(ctx, parseInput(SignInSchema, req.body))));
  return r;
}
