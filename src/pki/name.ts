/**
 * X.501 Name encoding for HPKI (RFC 5280 §4.1.2.4; HPKI-PROFILE §2): a RDNSequence in which every
 * RelativeDistinguishedName holds exactly one AttributeTypeAndValue, as every real HPKI certificate
 * does. (pkijs would put all attributes into one multi-valued RDN — not acceptable here.)
 */
import { Tag, oid, printableString, sequence, set, tlv } from "./der.ts";
import { OID } from "./oids.ts";

/** DirectoryString choice used for one attribute. */
export type RdnStringType = "printable" | "utf8";

/** One attribute = one RDN: `type` is a dotted OID, `value` the text (NFC-normalised on encode). */
export interface Rdn {
  type: string;
  value: string;
  stringType: RdnStringType;
}

/**
 * The HPKI name attributes in encoding order (most significant first) with their string types
 * [CERT]: C and serialNumber PrintableString, O / OU / CN UTF8String. Used by the encoder and,
 * as a specification table, by the lint.
 */
export const HPKI_NAME_ATTRIBUTES = [
  { key: "c", type: OID.countryName, stringType: "printable" },
  { key: "o", type: OID.organizationName, stringType: "utf8" },
  { key: "ou", type: OID.organizationalUnitName, stringType: "utf8" },
  { key: "cn", type: OID.commonName, stringType: "utf8" },
  { key: "serialNumber", type: OID.serialNumber, stringType: "printable" },
] as const;

/**
 * Encodes a Name (RDNSequence) with one AttributeTypeAndValue per RDN, in the given order.
 * Values are NFC-normalised first. Throws on an empty value or a value outside the
 * PrintableString alphabet (X.680 §41.4) when `stringType` is "printable".
 */
export function encodeName(rdns: readonly Rdn[]): Buffer {
  const parts = rdns.map((r) => {
    const v = r.value.normalize("NFC");
    if (v.length === 0) throw new Error(`Name: empty value for attribute ${r.type}`);
    const value = r.stringType === "printable" ? printableString(v) : tlv(Tag.UTF8String, Buffer.from(v, "utf8"));
    return set(sequence(oid(r.type), value));
  });
  return sequence(...parts);
}

/** The HPKI DN fields; `ou` may repeat (the MHLW root has two OUs). */
export interface HpkiNameFields {
  c?: string;
  o?: string;
  ou?: string | readonly string[];
  cn?: string;
  serialNumber?: string;
}

/**
 * Encodes an HPKI DN in the real order C, O, OU…, CN, serialNumber (C defaults to "JP"; absent
 * fields are skipped). C and serialNumber are PrintableString, the others UTF8String; all text is
 * NFC-normalised. Same errors as encodeName.
 */
export function encodeHpkiName(n: HpkiNameFields): Buffer {
  const rdns: Rdn[] = [];
  for (const a of HPKI_NAME_ATTRIBUTES) {
    const raw = a.key === "c" ? (n.c ?? "JP") : n[a.key];
    if (raw === undefined) continue;
    for (const value of typeof raw === "string" ? [raw] : raw) rdns.push({ type: a.type, value, stringType: a.stringType });
  }
  return encodeName(rdns);
}

/**
 * The kanji directoryName carried in subjectAltName [CERT: MEDIS 015e]: C=JP, O=facility name in
 * kanji (omitted when unknown), CN=family name + U+3000 + given name, serialNumber = the same
 * subscriber id as in the subject. `kanjiName` must already hold the U+3000 separator
 * (parseSubscriberSubject produces it). Returns the Name DER (without the [4] GeneralName tag).
 */
export function encodeKanjiDirectoryName(n: { organizationKanji?: string; kanjiName: string; serialNumber: string }): Buffer {
  return encodeHpkiName({ c: "JP", o: n.organizationKanji, cn: n.kanjiName, serialNumber: n.serialNumber });
}
