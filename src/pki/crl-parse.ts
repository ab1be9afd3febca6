/**
 * Strict parse of an X.509 v2 CRL (RFC 5280 §5.1) for relying-party use: header fields, the signed
 * bytes and a walk over the revoked serials that allocates nothing per entry (a 1,000,000-entry
 * CRL is read in one pass over its own buffer). Pure: bytes in, values out.
 * Throws CertificateParseError on non-DER input or a structure that is not a CRL; refuses what a
 * simple (complete, direct) CRL user cannot process: indirect CRLs, reason-partitioned CRLs and
 * unknown critical extensions (RFC 5280 §5.2, §5.3; §6.3.3).
 */
import { children, contentOf, isContext, isUniversal, oidOf, parseDer, type Fail } from "./der-cursor.ts";
import { OID } from "./oids.ts";
import { algorithmIdentifier, bitStringContent, CertificateParseError, integerMagnitude, readTime, splitSignedObject } from "./x509-parse.ts";

const fail: Fail = (message) => {
  throw new CertificateParseError(message);
};

/** A parsed CRL; byte fields are views into `der`. */
export interface ParsedCrl {
  der: Uint8Array;
  /** tbsCertList, whole TLV: the signed bytes. */
  tbs: Uint8Array;
  signatureAlgorithm: string;
  signatureParameters?: Uint8Array;
  signature: Uint8Array;
  /** Issuer Name DER (whole TLV). */
  issuer: Uint8Array;
  thisUpdate: Date;
  /** RFC 5280 §5.1.2.5: conforming CRLs carry it; a CRL without one is refused by the index. */
  nextUpdate?: Date;
  /** Number of revokedCertificates entries. */
  entries: number;
  /** issuingDistributionPoint onlyContainsCACerts (an ARL). */
  onlyContainsCACerts: boolean;
  onlyContainsUserCerts: boolean;
  /** Calls `f` with each revoked serial magnitude (a view; copy it to keep it), in CRL order. */
  forEachSerial(f: (serial: Uint8Array) => void): void;
}

/** Parses a DER CRL; see the module comment. @throws CertificateParseError. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const { tbsT, alg, sigT, fields: f } = splitSignedObject(der, "CRL", "tbsCertList");
  let i = 0;
  if (f[i]?.tag === 0x02) {
    const v = contentOf(der, f[i]);
    if (v.length !== 1 || v[0] !== 1) fail("tbsCertList: only v2 CRLs are supported");
    i++;
  }
  const inner = algorithmIdentifier(der, f[i++] ?? fail("tbsCertList: signature missing"), "signature");
  if (inner.oid !== alg.oid) fail("CRL: signature and signatureAlgorithm differ (RFC 5280 §5.1.1.2)");
  const issuerT = f[i++] ?? fail("tbsCertList: issuer missing");
  if (!isUniversal(issuerT, 16)) fail("issuer: expected a Name");
  const thisUpdate = readTime(der, f[i++] ?? fail("tbsCertList: thisUpdate missing"), "thisUpdate");
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i].tag === 0x17 || f[i].tag === 0x18)) nextUpdate = readTime(der, f[i++], "nextUpdate");
  const revokedT = f[i] && isUniversal(f[i], 16) ? f[i++] : undefined;
  let onlyContainsCACerts = false;
  let onlyContainsUserCerts = false;
  if (f[i] && isContext(f[i], 0, true)) {
    const wrap = children(der, f[i++], "crlExtensions", fail);
    if (wrap.length !== 1 || !isUniversal(wrap[0], 16)) fail("crlExtensions: expected [0] EXPLICIT SEQUENCE");
    for (const e of children(der, wrap[0], "crlExtensions", fail)) {
      const ef = children(der, e, "Extension", fail);
      const id = oidOf(der, ef[0], "extnID", fail);
      const critical = ef.length === 3 && der[ef[1].contentStart] !== 0;
      if (id === OID.issuingDistributionPoint) {
        const v = contentOf(der, ef[ef.length - 1]);
        const idpT = parseDer(v, "issuingDistributionPoint", fail);
        for (const p of children(v, idpT, "issuingDistributionPoint", fail)) {
          const n = p.tag & 0x1f;
          if (p.tag === 0xa0) continue; // distributionPoint: the CRL scope is the issuer's whole population
          if ((p.tag & 0xc0) !== 0x80 || n > 5) fail("issuingDistributionPoint: unknown field");
          if (n === 1) onlyContainsUserCerts = v[p.contentStart] !== 0;
          else if (n === 2) onlyContainsCACerts = v[p.contentStart] !== 0;
          else fail("issuingDistributionPoint: reason-partitioned, indirect or attribute CRLs are not supported");
        }
      } else if (critical && id !== OID.cRLNumber && id !== OID.authorityKeyIdentifier) {
        fail(`CRL: unknown critical extension ${id}`);
      }
    }
  }
  if (i !== f.length) fail("tbsCertList: unexpected field");
  const entries = revokedT ? children(der, revokedT, "revokedCertificates", fail) : [];
  for (const e of entries) {
    const ef = isUniversal(e, 16) ? children(der, e, "revokedCertificate", fail) : fail("revokedCertificate: expected a SEQUENCE");
    if (ef.length < 2 || ef.length > 3 || ef[0].tag !== 0x02) fail("revokedCertificate: expected { userCertificate, revocationDate, crlEntryExtensions? }");
    if (ef[2]) {
      for (const x of children(der, ef[2], "crlEntryExtensions", fail)) {
        const xf = children(der, x, "Extension", fail);
        if (xf.length === 3 && der[xf[1].contentStart] !== 0) {
          // certificateIssuer (2.5.29.29) is critical and makes the CRL indirect: not supported.
          fail(`CRL entry: unsupported critical extension ${oidOf(der, xf[0], "extnID", fail)}`);
        }
      }
    }
  }
  return {
    der,
    tbs: der.subarray(tbsT.start, tbsT.end),
    signatureAlgorithm: alg.oid,
    signatureParameters: alg.parameters,
    signature: bitStringContent(der, sigT, "signatureValue"),
    issuer: der.subarray(issuerT.start, issuerT.end),
    thisUpdate,
    nextUpdate,
    entries: entries.length,
    onlyContainsCACerts,
    onlyContainsUserCerts,
    forEachSerial(cb) {
      for (const e of entries) {
        const s = children(der, e, "revokedCertificate", fail)[0];
        cb(integerMagnitude(der, s));
      }
    },
  };
}
