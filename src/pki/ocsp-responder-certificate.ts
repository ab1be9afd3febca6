/**
 * The delegated OCSP responder certificate (RFC 6960 §4.2.2.2): issued by the CA whose
 * certificates it answers for, extKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck (§4.2.2.2.1:
 * clients need not check the responder certificate's own status, so it is short-lived instead)
 * and no CRL distribution point. Pure: the caller signs the returned tbsCertificate.
 */
import { Tag, derNull, octetString, sequence, time, tlv, unsignedInteger } from "./der.ts";
import { algorithmIdentifier, type SignatureAlgorithmName } from "./certificate.ts";
import { authorityKeyIdentifierValue, extension, extKeyUsageValue, keyUsageValue, subjectKeyIdentifier } from "./extensions.ts";
import { OID } from "./oids.ts";

export interface ResponderCertificateRequest {
  /** The issuing CA: its subject Name DER (= our issuer), its SKI (→ AKI keyIdentifier), its signature algorithm. */
  issuerName: Uint8Array;
  issuerKeyIdentifier: Uint8Array;
  signatureAlgorithm: SignatureAlgorithmName;
  /** Serial magnitude, nonzero, ≤ 20 octets. */
  serialNumber: Uint8Array;
  /** Subject Name DER of the responder. */
  subjectName: Uint8Array;
  /** SubjectPublicKeyInfo DER of the responder key (generated in the HSM). */
  subjectPublicKeyInfo: Uint8Array;
  notBefore: Date;
  notAfter: Date;
}

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/**
 * tbsCertificate of a responder certificate: v3; extensions AKI (keyid), SKI, keyUsage critical
 * digitalSignature, extKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck (NULL). Returns DER.
 * @throws RangeError for an invalid validity (notAfter ≤ notBefore or an invalid Date).
 */
export function buildResponderTbsCertificate(r: ResponderCertificateRequest): Buffer {
  if (!(r.notAfter.getTime() > r.notBefore.getTime())) throw new RangeError("responder certificate: notAfter must be after notBefore");
  const exts = [
    extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(r.issuerKeyIdentifier)),
    extension(OID.subjectKeyIdentifier, false, octetString(subjectKeyIdentifier(r.subjectPublicKeyInfo))),
    extension(OID.keyUsage, true, keyUsageValue(["digitalSignature"])),
    extension(OID.extKeyUsage, false, extKeyUsageValue(["OCSPSigning"])),
    extension(OID.idPkixOcspNocheck, false, derNull()),
  ];
  return tlv(
    Tag.SEQUENCE,
    VERSION_V3,
    unsignedInteger(r.serialNumber),
    algorithmIdentifier(r.signatureAlgorithm),
    Buffer.from(r.issuerName),
    sequence(time(r.notBefore), time(r.notAfter)),
    Buffer.from(r.subjectName),
    Buffer.from(r.subjectPublicKeyInfo),
    tlv(0xa3, sequence(...exts)),
  );
}
