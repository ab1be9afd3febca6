/**
 * Lint of an encoded X.501 Name against the HPKI DN rules (HPKI-PROFILE §2): one attribute per
 * RDN, attributes in the order C, O, OU, CN, serialNumber, C and serialNumber PrintableString,
 * the others UTF8String, NFC text, no control/bidi/invisible characters (text-rules.ts), X.520 upper bounds. Used for the subject
 * and for the kanji subjectAltName directoryName.
 */
import { Tag } from "./der.ts";
import { childrenOf, contentOf, decodeOid, utf8Text, type Tlv } from "./der-cursor.ts";
import { HPKI_NAME_ATTRIBUTES } from "./name.ts";
import { SUBJECT_ATTRIBUTES, type SubjectAttributeName } from "./profile.ts";
import { codePointLabel, textViolation } from "./text-rules.ts";

export type Report = (code: string, message: string) => void;

const BY_OID = new Map<string, { name: SubjectAttributeName; tag: number }>(
  HPKI_NAME_ATTRIBUTES.map((a, i) => [a.type, { name: SUBJECT_ATTRIBUTES[i], tag: a.stringType === "printable" ? Tag.PrintableString : Tag.UTF8String }]),
);
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const UB = 64;

/**
 * Checks the Name at `name` and reports violations with codes prefixed by `prefix` ("subject" /
 * "san"). `attrs` gives the allowed attributes and whether each is required. Returns the decoded
 * values (the last value per attribute).
 */
export function lintName(
  buf: Uint8Array,
  name: Tlv,
  prefix: string,
  attrs: readonly { attribute: SubjectAttributeName; presence: "required" | "optional" }[],
  report: Report,
): Map<SubjectAttributeName, string> {
  const values = new Map<SubjectAttributeName, string>();
  if (name.tag !== Tag.SEQUENCE) {
    report(`${prefix}.malformed`, `${prefix}: Name is not a SEQUENCE`);
    return values;
  }
  let last = -1;
  for (const rdn of childrenOf(buf, name)) {
    const atvs = rdn.tag === Tag.SET ? childrenOf(buf, rdn) : [];
    if (atvs.length !== 1) {
      report(`${prefix}.multi-valued-rdn`, `${prefix}: each RDN must hold exactly one attribute (found ${atvs.length})`);
      continue;
    }
    const parts = atvs[0].tag === Tag.SEQUENCE ? childrenOf(buf, atvs[0]) : [];
    if (parts.length !== 2 || parts[0].tag !== Tag.OID) {
      report(`${prefix}.malformed`, `${prefix}: malformed AttributeTypeAndValue`);
      continue;
    }
    const type = decodeOid(contentOf(buf, parts[0]), parts[0].contentStart);
    const spec = BY_OID.get(type);
    if (!spec || !attrs.some((a) => a.attribute === spec.name)) {
      report(`${prefix}.unexpected-attribute`, `${prefix}: attribute ${spec?.name ?? type} is not allowed by the profile`);
      continue;
    }
    const idx = SUBJECT_ATTRIBUTES.indexOf(spec.name);
    if (idx <= last) report(`${prefix}.order`, `${prefix}: ${spec.name} is out of the HPKI order C, O, OU, CN, serialNumber or repeated`);
    last = idx;
    const value = lintValue(buf, parts[1], spec, prefix, report);
    if (value !== undefined) values.set(spec.name, value);
  }
  for (const a of attrs) {
    if (a.presence === "required" && !values.has(a.attribute)) report(`${prefix}.missing-attribute`, `${prefix}: required attribute ${a.attribute} is missing`);
  }
  if (values.get("C") !== undefined && values.get("C") !== "JP") report(`${prefix}.country`, `${prefix}: C must be "JP"`);
  return values;
}

function lintValue(buf: Uint8Array, v: Tlv, spec: { name: SubjectAttributeName; tag: number }, prefix: string, report: Report): string | undefined {
  const where = `${prefix} ${spec.name}`;
  if (v.tag !== spec.tag) {
    report(`${prefix}.string-type`, `${where}: must be ${spec.tag === Tag.PrintableString ? "PrintableString" : "UTF8String"}`);
    return undefined;
  }
  const bytes = contentOf(buf, v);
  const s = utf8Text(bytes);
  if (s === undefined) {
    report(`${prefix}.utf8`, `${where}: not valid UTF-8`);
    return undefined;
  }
  const ascii = s.length === bytes.length; // any multi-byte UTF-8 sequence yields fewer UTF-16 units
  if (s.length === 0) report(`${prefix}.empty-value`, `${where}: empty value`);
  if (spec.tag === Tag.PrintableString && !PRINTABLE.test(s)) report(`${prefix}.printable`, `${where}: character outside the PrintableString alphabet`);
  if (!ascii && s.normalize("NFC") !== s) report(`${prefix}.not-nfc`, `${where}: not NFC-normalised`);
  // The intake rule set (text-rules.ts): what the desk refuses, the lint refuses, and no more.
  const bad = textViolation(s);
  if (bad) report(`${prefix}.control-char`, `${where}: contains a ${bad.kind} character (${codePointLabel(bad.codePoint)})`);
  if ((ascii ? s.length : [...s].length) > UB) report(`${prefix}.too-long`, `${where}: longer than ${UB} characters (X.520)`);
  return s;
}
