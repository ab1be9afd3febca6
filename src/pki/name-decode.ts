/**
 * X.501 Name decoding (RFC 5280 §4.1.2.4): `Name ::= RDNSequence`, `RDNSequence ::= SEQUENCE OF
 * RelativeDistinguishedName`, `RelativeDistinguishedName ::= SET SIZE (1..MAX) OF
 * AttributeTypeAndValue`. Pure: DER in, values out; strict DER via der-cursor.ts.
 */
import { bytesOf, children, decodeString, isUniversal, oidOf, parseDer, STRING_TYPES, type Fail, type Tlv } from "./der-cursor.ts";

/** One AttributeTypeAndValue. `type` is the dotted OID; `stringType` the ASN.1 string type. */
export interface NameAttribute {
  type: string;
  /** OpenSSL short name (C, ST, L, O, OU, CN, serialNumber, …) when the type is a known one. */
  shortName?: string;
  /** Decoded text; for a non-string value, "#" + hex of its DER (RFC 4514 §2.4). */
  value: string;
  /** e.g. "UTF8String", "PrintableString"; "DER" for a non-string value. */
  stringType: string;
}

/** Thrown by decodeName / formatName on bytes that are not a DER Name. */
export class NameDecodeError extends Error {
  override name = "NameDecodeError";
}

const failName: Fail = (message) => {
  throw new NameDecodeError(message);
};

/** Attribute types → OpenSSL short names (X.520, RFC 4519, PKCS #9). */
export const NAME_SHORT_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "street",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.42": "GN",
  "2.5.4.43": "initials",
  "2.5.4.46": "dnQualifier",
  "2.5.4.65": "pseudonym",
  "2.5.4.97": "organizationIdentifier",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "emailAddress",
};

/**
 * Decodes a DER Name into RDNs in encoding order (most significant first); each RDN is the list
 * of its attributes (usually one). Strings of every ASN.1 character-string type are decoded.
 * Throws NameDecodeError on non-DER input, trailing bytes, a non-Name structure, an empty RDN
 * or an undecodable string (e.g. invalid UTF-8).
 */
export function decodeName(nameDer: Uint8Array): NameAttribute[][] {
  const top = parseDer(nameDer, "Name", failName);
  return decodeNameAt(nameDer, top);
}

/**
 * As decodeName, for a Name at `name` inside `buf` whose DER has already been checked (parseDer
 * or readDer), e.g. inside a GeneralName. Throws NameDecodeError.
 */
export function decodeNameAt(buf: Uint8Array, name: Tlv): NameAttribute[][] {
  if (!isUniversal(name, 16)) failName("Name: expected a SEQUENCE (RDNSequence)");
  return children(buf, name, "Name", failName).map((rdn) => {
    if (!isUniversal(rdn, 17)) failName("RelativeDistinguishedName: expected a SET");
    const atvs = children(buf, rdn, "RelativeDistinguishedName", failName);
    if (atvs.length === 0) failName("RelativeDistinguishedName: empty SET");
    return atvs.map((atv) => decodeAtv(buf, atv));
  });
}

function decodeAtv(buf: Uint8Array, atv: Tlv): NameAttribute {
  if (!isUniversal(atv, 16)) failName("AttributeTypeAndValue: expected a SEQUENCE");
  const parts = children(buf, atv, "AttributeTypeAndValue", failName);
  if (parts.length !== 2) failName("AttributeTypeAndValue: expected { type, value }");
  const type = oidOf(buf, parts[0], "AttributeType", failName);
  const shortName = NAME_SHORT_NAMES[type];
  const isString = (parts[1].tag & 0xc0) === 0 && STRING_TYPES[parts[1].tag & 0x1f] !== undefined;
  const { value, stringType } = isString
    ? decodeString(buf, parts[1], `${shortName ?? type} value`, failName)
    : { value: "#" + Buffer.from(bytesOf(buf, parts[1])).toString("hex"), stringType: "DER" };
  return shortName ? { type, shortName, value, stringType } : { type, value, stringType };
}

/**
 * One-line display of a DER Name in encoding order, as
 * `openssl x509 -nameopt esc_2253,esc_ctrl,utf8,sep_comma_plus_space,sname` prints it:
 * "C=JP, O=MEDIS, OU=MEDIS HPKI CA, CN=…". Multi-valued RDNs are joined with " + ".
 * Values are escaped per RFC 4514 §2.4 (`,+"\<>;`, leading '#' or space, trailing space) and
 * control characters as \XX; non-ASCII text is kept as is. Unknown types show as dotted OIDs.
 * Throws NameDecodeError like decodeName.
 */
export function formatName(nameDer: Uint8Array): string {
  return formatRdns(decodeName(nameDer));
}

/** Formats already-decoded RDNs the way formatName does. */
export function formatRdns(rdns: NameAttribute[][]): string {
  return rdns
    .map((rdn) => rdn.map((a) => `${a.shortName ?? a.type}=${a.stringType === "DER" ? a.value : escapeValue(a.value)}`).join(" + "))
    .join(", ");
}

function escapeValue(v: string): string {
  let out = v.replace(/[,+"\\<>;]/g, "\\$&").replace(/[\u0000-\u001f\u007f]/g, (c) => "\\" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
  if (out.startsWith("#") || out.startsWith(" ")) out = "\\" + out;
  if (out.endsWith(" ") && out.length > 1) out = out.slice(0, -1) + "\\ ";
  return out;
}
