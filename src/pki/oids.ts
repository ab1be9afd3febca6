/**
 * Object identifiers used by hpki-ca, named by their standard names.
 * HPKI arcs follow docs/HPKI-PROFILE.md §7.3; "inferred" entries there are marked below.
 */
export const OID = {
  // RFC 5280 §4.1.2.4 / X.520 attribute types
  countryName: "2.5.4.6",
  organizationName: "2.5.4.10",
  organizationalUnitName: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  // RFC 5280 §4.2 certificate extensions
  subjectDirectoryAttributes: "2.5.29.9",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  cRLNumber: "2.5.29.20",
  cRLReason: "2.5.29.21",
  issuingDistributionPoint: "2.5.29.28",
  cRLDistributionPoints: "2.5.29.31",
  certificatePolicies: "2.5.29.32",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  idQtCps: "1.3.6.1.5.5.7.2.1",
  // RFC 5280 §4.2.1.12 key purposes
  idKpServerAuth: "1.3.6.1.5.5.7.3.1",
  idKpClientAuth: "1.3.6.1.5.5.7.3.2",
  idKpEmailProtection: "1.3.6.1.5.5.7.3.4",
  idKpOcspSigning: "1.3.6.1.5.5.7.3.9",
  // RFC 6960 OCSP
  idAdOcsp: "1.3.6.1.5.5.7.48.1",
  idPkixOcspBasic: "1.3.6.1.5.5.7.48.1.1",
  idPkixOcspNonce: "1.3.6.1.5.5.7.48.1.2",
  idPkixOcspNocheck: "1.3.6.1.5.5.7.48.1.5",
  idSha1: "1.3.14.3.2.26",
  idSha256: "2.16.840.1.101.3.4.2.1",
  // algorithms (RFC 4055, RFC 5480, RFC 5758)
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  idEcPublicKey: "1.2.840.10045.2.1",
  secp256r1: "1.2.840.10045.3.1.7",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  // ISO 17090 / HPKI
  idHcpkiAtHealthcareActor: "1.0.17090.0.1",
  idJhpkiCdata: "1.2.392.100495.1.6.1.1",
  hpkiSignatureEePolicy: "1.2.392.100495.1.5.1.1.0.1",
  hpkiSignatureCaPolicy: "1.2.392.100495.1.5.1.1.3.1",
  hpkiAuthPersonCaPolicy: "1.2.392.100495.1.5.1.2.3.1",
  /** inferred from the signature arc; unverified against Auth(person) CP 1.81 */
  hpkiAuthPersonEePolicy: "1.2.392.100495.1.5.1.2.0.1",
} as const;
