/**
 * Turning a CRL into one issuer's entry of the RevocationIndex (RFC 5280 §6.3.3): the CRL must be
 * signed by a CA certificate of the TrustStore whose subject is the CRL issuer (direct CRL), and
 * carry a nextUpdate, which becomes the list's goodUntil. Pure apart from node:crypto.
 */
import { parseCrl } from "./crl-parse.ts";
import { bytesEqual } from "./der-cursor.ts";
import { formatName } from "./name-decode.ts";
import { verifySignature, type TrustStore } from "./path-validation.ts";
import { DigestListBuilder, type IssuerRevocations } from "./revocation-index.ts";
import { CertificateParseError } from "./x509-parse.ts";

/** The verified list and the key id of the CA it belongs to. */
export interface VerifiedCrl {
  issuerKeyId: string;
  issuerName: string;
  list: IssuerRevocations;
  crlEntries: number;
}

/**
 * Parses and verifies `crlDer` (`source` names it in the list, e.g. the URL) against the CA
 * certificates in `store`. @throws CertificateParseError when the CRL does not parse, has no
 * nextUpdate, no CA in the store issued it, or its signature does not verify.
 */
export function verifiedCrlRevocations(crlDer: Uint8Array, store: TrustStore, source: string): VerifiedCrl {
  const crl = parseCrl(crlDer);
  if (!crl.nextUpdate) throw new CertificateParseError(`CRL ${source}: no nextUpdate (RFC 5280 §5.1.2.5)`);
  const candidates = store.all().filter((c) => bytesEqual(c.cert.subject, crl.issuer));
  const issuer = candidates.find((c) => verifySignature(crl.signatureAlgorithm, crl.signatureParameters, c.key, crl.tbs, crl.signature));
  if (!issuer) {
    throw new CertificateParseError(
      candidates.length ? `CRL ${source}: signature does not verify with ${candidates[0].name}` : `CRL ${source}: issuer ${formatName(crl.issuer)} is not a configured CA`,
    );
  }
  const b = new DigestListBuilder(crl.entries);
  crl.forEachSerial((s) => b.add(s));
  return {
    issuerKeyId: issuer.keyId,
    issuerName: issuer.name,
    crlEntries: crl.entries,
    list: { digests: b.finish(), thisUpdate: crl.thisUpdate, goodUntil: crl.nextUpdate, source },
  };
}
