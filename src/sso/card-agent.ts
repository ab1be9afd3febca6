/**
 * The card side of the signed-challenge login (`hpki card login`, a local agent for native clients
 * and tests): opens the card with the PIN, takes the authentication certificate (the one whose
 * key usage has digitalSignature — never the signature certificate), signs the challenge text with
 * that certificate's key ON the card and returns what the SSO center's login endpoint accepts.
 * The private key never leaves the card; only the signature does.
 */
import type { CardStation } from "../hsm/cards.ts";
import { OID } from "../pki/oids.ts";
import { decodeKeyUsage, parseCertificate } from "../pki/x509-parse.ts";

/** The JSON body of POST /sso/interaction/:uid/card. */
export interface SignedChallenge {
  challenge: string;
  /** Authentication certificate, base64 DER. */
  certificate: string;
  /** Signature over the challenge text, base64. */
  signature: string;
}

/**
 * Signs `challengeText` with the authentication key of card `cardLabel`.
 * @throws HsmError (wrong PIN: CKR_PIN_INCORRECT, CARD_NOT_FOUND, …) or Error when the card holds
 *   no authentication certificate.
 */
export async function signLoginChallenge(station: CardStation, cardLabel: string, pin: string, challengeText: string): Promise<SignedChallenge> {
  const card = await station.openCard(cardLabel, pin);
  try {
    const certs = await card.listCertificates();
    const auth = certs.find((c) => {
      const ku = parseCertificate(c.der).extensions.get(OID.keyUsage);
      return ku !== undefined && decodeKeyUsage(ku.value).has("digitalSignature");
    });
    if (!auth) throw new Error(`card "${cardLabel}" holds no authentication certificate / 認証用証明書がカードにありません`);
    const signature = await card.sign(auth.id, Buffer.from(challengeText, "utf8"));
    return { challenge: challengeText, certificate: auth.der.toString("base64"), signature: signature.toString("base64") };
  } finally {
    card.close();
  }
}
