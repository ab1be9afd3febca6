/**
 * The signature check of a signed-challenge card login, shared by the SSO center (src/sso) and the
 * consoles' card sign-in (src/card-login/card-login.ts): the card signs the challenge text with its
 * authentication key (SHA-256; RSA PKCS#1 v1.5 or DER ECDSA, as CardSession.sign does).
 */
import { verify } from "node:crypto";
import { PathValidationError } from "../pki/path-validation.ts";
import { publicKeyFromSpki } from "../pki/public-key.ts";

/**
 * Checks `signature` over the challenge text with the certificate's public key (SHA-256;
 * RSA PKCS#1 v1.5 or DER ECDSA). @throws PathValidationError "bad-challenge-signature".
 */
export function verifyChallengeSignature(spki: Uint8Array, text: string, signature: Uint8Array): void {
  const key = publicKeyFromSpki(spki);
  let ok = false;
  try {
    ok = verify("sha256", Buffer.from(text, "utf8"), key.asymmetricKeyType === "ec" ? { key, dsaEncoding: "der" } : key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new PathValidationError("bad-challenge-signature", "signature does not verify with the certificate's key");
}
