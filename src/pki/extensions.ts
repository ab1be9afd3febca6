/**
 * DER encoders for the X.509 v3 extensions HPKI uses (RFC 5280 §4.2), byte-compatible with the
 * real HPKI certificates. Each `…Value` function returns the extnValue content (the DER inside the
 * OCTET STRING); `extension` wraps it into an Extension.
 */
import { createHash } from "node:crypto";
import { Tag, bitString, derBoolean, ia5String, octetString, oid, sequence, smallInteger, tlv, unsignedInteger } from "./der.ts";
import { DerReadError, childrenOf, readSingle } from "./der-cursor.ts";
import { OID } from "./oids.ts";
import { KEY_PURPOSES, KEY_USAGE_BITS, type KeyUsageBit } from "./profile.ts";

/**
 * Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
 * (RFC 5280 §4.1). A FALSE critical flag is omitted, as DER requires for DEFAULT values.
 */
export function extension(extnId: string, critical: boolean, extnValue: Uint8Array): Buffer {
  return critical ? sequence(oid(extnId), derBoolean(true), octetString(extnValue)) : sequence(oid(extnId), octetString(extnValue));
}

/**
 * AuthorityKeyIdentifier (RFC 5280 §4.2.1.1): [0] keyIdentifier, and when both are given
 * [1] authorityCertIssuer = GeneralNames { directoryName [4] Name } and [2]
 * authorityCertSerialNumber (INTEGER content, IMPLICIT). `issuerName` is a Name DER, `serial` a
 * magnitude. HPKI certificates carry all three [CERT].
 */
export function authorityKeyIdentifierValue(keyIdentifier: Uint8Array, issuerName?: Uint8Array, serial?: Uint8Array): Buffer {
  const parts = [tlv(0x80, keyIdentifier)];
  if (issuerName && serial) {
    parts.push(tlv(0xa1, tlv(0xa4, issuerName)));
    const int = unsignedInteger(serial);
    int[0] = 0x82; // [2] IMPLICIT INTEGER: same length and content, context tag
    parts.push(int);
  }
  return sequence(...parts);
}

/**
 * SubjectKeyIdentifier by RFC 5280 §4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT
 * STRING value (without tag, length and unused-bits octet). `spki` is SubjectPublicKeyInfo DER.
 * Returns the 20-octet key identifier. Throws DerReadError on a malformed SPKI.
 */
export function subjectKeyIdentifier(spki: Uint8Array): Buffer {
  const top = readSingle(spki);
  const kids = childrenOf(spki, top);
  const key = kids[1];
  if (top.tag !== Tag.SEQUENCE || kids.length !== 2 || key.tag !== Tag.BIT_STRING || key.end - key.contentStart < 2) {
    throw new DerReadError("not a SubjectPublicKeyInfo", 0);
  }
  return createHash("sha1").update(spki.subarray(key.contentStart + 1, key.end)).digest();
}

/** KeyUsage named-bit BIT STRING in DER (X.690 §11.2.2: trailing zero bits removed). */
export function keyUsageValue(bits: readonly KeyUsageBit[]): Buffer {
  const nums = bits.map((b) => KEY_USAGE_BITS.indexOf(b));
  const highest = Math.max(...nums);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const n of nums) bytes[n >> 3] |= 0x80 >> (n & 7);
  return bitString(bytes, 7 - (highest & 7));
}

/** ExtKeyUsageSyntax: SEQUENCE OF KeyPurposeId; purposes by RFC 5280 name or dotted OID. */
export function extKeyUsageValue(purposes: readonly string[]): Buffer {
  return sequence(...purposes.map((p) => oid(KEY_PURPOSES[p as keyof typeof KEY_PURPOSES] ?? p)));
}

/** BasicConstraints (RFC 5280 §4.2.1.9); cA FALSE (the DEFAULT) encodes as an empty SEQUENCE. */
export function basicConstraintsValue(cA: boolean, pathLenConstraint?: number): Buffer {
  if (!cA) return sequence();
  return pathLenConstraint === undefined ? sequence(derBoolean(true)) : sequence(derBoolean(true), smallInteger(pathLenConstraint));
}

/**
 * GeneralNames (RFC 5280 §4.2.1.6): an optional directoryName [4] (EXPLICIT, Name is a CHOICE; the
 * kanji SAN) followed by dNSName [2] IA5String host names. `dnsNames` must already be valid ASCII.
 */
export function subjectAltNameValue(directoryName: Uint8Array | undefined, dnsNames: readonly string[] = []): Buffer {
  const names = directoryName ? [tlv(0xa4, directoryName)] : [];
  for (const d of dnsNames) names.push(tlv(0x82, Buffer.from(d, "ascii")));
  return sequence(...names);
}

/**
 * CRLDistributionPoints with one DistributionPoint whose fullName is one URI [6], no reasons,
 * no cRLIssuer (RFC 5280 §4.2.1.13), as the real HPKI EE certificates [CERT].
 */
export function crlDistributionPointsValue(url: string): Buffer {
  return sequence(sequence(tlv(0xa0, tlv(0xa0, tlv(0x86, Buffer.from(url, "ascii"))))));
}

/**
 * certificatePolicies (RFC 5280 §4.2.1.4): one PolicyInformation per entry, with an id-qt-cps
 * qualifier (IA5String URI) when `cpsUri` is given.
 */
export function certificatePoliciesValue(policies: readonly { oid: string; cpsUri?: string }[]): Buffer {
  return sequence(
    ...policies.map((p) =>
      p.cpsUri ? sequence(oid(p.oid), sequence(sequence(oid(OID.idQtCps), ia5String(p.cpsUri)))) : sequence(oid(p.oid)),
    ),
  );
}

/** AuthorityInfoAccess with one id-ad-ocsp access description (RFC 5280 §4.2.2.1). */
export function authorityInfoAccessOcspValue(url: string): Buffer {
  return sequence(sequence(oid(OID.idAdOcsp), tlv(0x86, Buffer.from(url, "ascii"))));
}
