/**
 * What sealing an envelope reads of a reader's certificate (RFC 5280 §4.1): issuer and serial
 * (issuerAndSerialNumber, RFC 5652 §10.2.4), the SubjectPublicKeyInfo, and the keyUsage (§4.2.1.3)
 * and subjectKeyIdentifier (§4.2.1.2) extensions — a light walk over the DER with der-cursor, about
 * a tenth of parseCertificate's time. The certificate was parsed strictly and its chain validated
 * before anyone seals to it (the sending client's directory look-up, src/cli/pobox-recipients.ts);
 * this read still refuses anything that is not well-formed DER of that shape.
 * Pure: bytes in, views into them out.
 */
import { bytesEqual, bytesOf, childrenOf, contentOf, readSingle, type Tlv } from "./der-cursor.ts";
import { integerMagnitude, type ParsedCertificate } from "./x509-parse.ts";

/** The fields of a certificate an envelope uses; a full ParsedCertificate has them too. */
export type RecipientCertificateFields = Pick<ParsedCertificate, "issuer" | "serial" | "spki" | "extensions">;

/** extnID contents of the two extensions read (id-ce 15 and 14). */
const EXTENSIONS: readonly { oid: string; content: Uint8Array }[] = [
  { oid: "2.5.29.15", content: Uint8Array.of(0x55, 0x1d, 0x0f) },
  { oid: "2.5.29.14", content: Uint8Array.of(0x55, 0x1d, 0x0e) },
];

function element(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`certificate: ${what} missing or mis-tagged`);
  return t;
}

/** Reads the fields above from a DER certificate. @throws Error (or DerReadError) when it is not of that shape. */
export function readRecipientCertificate(der: Uint8Array): RecipientCertificateFields {
  const [tbs] = childrenOf(der, element(readSingle(der), 0x30, "Certificate"));
  const fields = childrenOf(der, element(tbs, 0x30, "tbsCertificate"));
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version
  const serial = integerMagnitude(der, element(fields[i++], 0x02, "serialNumber"));
  element(fields[i++], 0x30, "signature");
  const issuer = bytesOf(der, element(fields[i++], 0x30, "issuer"));
  element(fields[i++], 0x30, "validity");
  element(fields[i++], 0x30, "subject");
  const spki = bytesOf(der, element(fields[i++], 0x30, "subjectPublicKeyInfo"));
  const extensions: ParsedCertificate["extensions"] = new Map();
  const wrapped = fields.slice(i).find((t) => t.tag === 0xa3);
  for (const ext of wrapped ? childrenOf(der, element(childrenOf(der, wrapped)[0], 0x30, "extensions")) : []) {
    const parts = childrenOf(der, element(ext, 0x30, "Extension"));
    const id = contentOf(der, element(parts[0], 0x06, "extnID"));
    const known = EXTENSIONS.find((e) => bytesEqual(e.content, id));
    if (!known) continue;
    if (extensions.has(known.oid)) throw new Error(`certificate: extension ${known.oid} appears twice (RFC 5280 §4.2)`);
    const value = element(parts[parts.length - 1], 0x04, "extnValue");
    extensions.set(known.oid, { critical: parts.length === 3 && der[parts[1].contentStart] !== 0, value: contentOf(der, value) });
  }
  return { issuer, serial, spki, extensions };
}
