/**
 * hcRole codec: the ISO/TS 17090 healthcare-actor attribute (id-hcpki-at-healthcareactor,
 * 1.0.17090.0.1) carried in the subjectDirectoryAttributes extension (RFC 5280 §4.2.1.8), in the
 * Japanese HPKI profile (HPKI CP §7.1; docs/HPKI-PROFILE.md §6):
 *
 *   HCActorData ::= SET OF HCActor
 *   HCActor     ::= SEQUENCE { codedData [0] EXPLICIT CodedData, regionalHCActorData [1] … OPTIONAL }
 *   CodedData   ::= SET { codingSchemeReference [0] EXPLICIT OID,
 *                         codeDataValue [1] EXPLICIT NumericString OPTIONAL,
 *                         codeDataFreeText [2] EXPLICIT DirectoryString }
 */
import * as pkijs from "pkijs";
import { explicit, oid, sequence, set, utf8String } from "./der.ts";
import {
  ab,
  children,
  decodeString,
  DIRECTORY_STRING_TYPES,
  isContext,
  isUniversal,
  oidOf,
  parseDer,
  type Fail,
  type Tlv,
} from "./der-cursor.ts";
import { OID } from "./oids.ts";

/**
 * Encodes the extnValue (the DER inside the OCTET STRING) of a subjectDirectoryAttributes
 * extension holding one hcRole. `role` is the code table's English name (e.g. "Medical Doctor"),
 * NFC-normalised and written as UTF8String like every real HPKI certificate; `codingScheme`
 * defaults to id-jhpki-cdata (1.2.392.100495.1.6.1.1). Throws on an empty role.
 */
export function encodeHcRoleExtension(role: string, codingScheme: string = OID.idJhpkiCdata): Buffer {
  const text = role.normalize("NFC");
  if (!text.trim()) throw new Error("hcRole: empty role name");
  const codedData = set(explicit(0, oid(codingScheme)), explicit(2, utf8String(text)));
  const hcActorData = set(sequence(explicit(0, codedData)));
  return sequence(sequence(oid(OID.idHcpkiAtHealthcareActor), set(hcActorData)));
}

/** One decoded HCActor (its codedData); regionalHCActorData, unused in Japan, is skipped. */
export interface HcRole {
  /** Coding scheme OID, dotted (Japan: id-jhpki-cdata 1.2.392.100495.1.6.1.1). */
  codingSchemeReference: string;
  /** NumericString code, when present (not used in Japan). */
  codeDataValue?: string;
  /** The role name, e.g. "Medical Doctor". */
  codeDataFreeText: string;
  /** Which DirectoryString choice carried codeDataFreeText (real certificates: UTF8String). */
  freeTextType: "UTF8String" | "PrintableString" | "BMPString" | "TeletexString" | "UniversalString";
}

/** Thrown by decodeHcRoleExtension / extractHcRoles on malformed input; `message` says where. */
export class HcRoleDecodeError extends Error {
  override name = "HcRoleDecodeError";
}

const failHc: Fail = (message) => {
  throw new HcRoleDecodeError(message);
};

/**
 * Decodes the extnValue of a subjectDirectoryAttributes extension (RFC 5280 §4.2.1.8:
 * `SEQUENCE SIZE (1..MAX) OF Attribute`) and returns every HCActor of every hcRole attribute
 * (type 1.0.17090.0.1; ISO/TS 17090-2 HCActorData, HPKI CP §7.1), in encoding order. Attributes
 * of other types are ignored. codeDataFreeText may be any DirectoryString choice.
 * Throws HcRoleDecodeError on non-DER input, trailing bytes, a wrong structure, a missing
 * codingSchemeReference or codeDataFreeText, a duplicate or unknown CodedData field, a
 * non-numeric codeDataValue or an undecodable string.
 */
export function decodeHcRoleExtension(extnValue: Uint8Array): HcRole[] {
  const b = extnValue; // every Tlv below points into this buffer
  const top = parseDer(b, "subjectDirectoryAttributes", failHc);
  if (!isUniversal(top, 16)) failHc("subjectDirectoryAttributes: expected a SEQUENCE");
  const attrs = children(b, top, "subjectDirectoryAttributes", failHc);
  if (attrs.length === 0) failHc("subjectDirectoryAttributes: empty (SIZE (1..MAX))");
  const roles: HcRole[] = [];
  for (const attr of attrs) {
    const parts = isUniversal(attr, 16) ? children(b, attr, "Attribute", failHc) : failHc("Attribute: expected a SEQUENCE");
    if (parts.length !== 2) failHc("Attribute: expected { type, values }");
    if (oidOf(b, parts[0], "Attribute.type", failHc) !== OID.idHcpkiAtHealthcareActor) continue;
    if (!isUniversal(parts[1], 17)) failHc("hcRole attribute: values must be a SET");
    const values = children(b, parts[1], "hcRole values", failHc);
    if (values.length === 0) failHc("hcRole attribute: empty value set");
    for (const v of values) roles.push(...decodeHcActorData(b, v));
  }
  return roles;
}

function decodeHcActorData(b: Uint8Array, block: Tlv): HcRole[] {
  if (!isUniversal(block, 17)) failHc("HCActorData: expected a SET OF HCActor");
  const actors = children(b, block, "HCActorData", failHc);
  if (actors.length === 0) failHc("HCActorData: empty");
  return actors.map((actor) => {
    if (!isUniversal(actor, 16)) failHc("HCActor: expected a SEQUENCE");
    const fields = children(b, actor, "HCActor", failHc);
    const first = fields[0];
    if (!first || !isContext(first, 0, true)) failHc("HCActor: codedData [0] missing");
    // [1] regionalHCActorData is optional and unused in Japan: allowed, not decoded.
    if (fields.length > 2 || (fields[1] && !isContext(fields[1], 1, true))) failHc("HCActor: unexpected field after codedData");
    const inner = children(b, first, "HCActor.codedData", failHc);
    if (inner.length !== 1) failHc("HCActor.codedData: [0] EXPLICIT must wrap one element");
    return decodeCodedData(b, inner[0]);
  });
}

function decodeCodedData(b: Uint8Array, block: Tlv): HcRole {
  if (!isUniversal(block, 17)) failHc("CodedData: expected a SET");
  const seen = new Map<number, Tlv>();
  for (const f of children(b, block, "CodedData", failHc)) {
    const n = f.tag & 0x1f;
    if ((f.tag & 0xe0) !== 0xa0 || n > 2) failHc("CodedData: unknown field");
    if (seen.has(n)) failHc(`CodedData: field [${n}] appears twice`);
    const inner = children(b, f, `CodedData [${n}]`, failHc);
    if (inner.length !== 1) failHc(`CodedData [${n}]: EXPLICIT tag must wrap one element`);
    seen.set(n, inner[0]);
  }
  const scheme = seen.get(0) ?? failHc("CodedData: codingSchemeReference [0] missing");
  const text = seen.get(2) ?? failHc("CodedData: codeDataFreeText [2] missing");
  const free = decodeString(b, text, "codeDataFreeText", failHc);
  if (!DIRECTORY_STRING_TYPES.has(free.stringType)) failHc(`codeDataFreeText: ${free.stringType} is not a DirectoryString choice`);
  const role: HcRole = {
    codingSchemeReference: oidOf(b, scheme, "codingSchemeReference", failHc),
    codeDataFreeText: free.value,
    freeTextType: free.stringType as HcRole["freeTextType"],
  };
  const code = seen.get(1);
  if (code) {
    const v = decodeString(b, code, "codeDataValue", failHc);
    if (v.stringType !== "NumericString" || !/^[0-9 ]*$/.test(v.value)) failHc("codeDataValue: expected a NumericString");
    role.codeDataValue = v.value;
  }
  return role;
}

/**
 * Finds the subjectDirectoryAttributes extension (2.5.29.9) of a DER certificate and decodes its
 * hcRole attributes. Returns [] when the extension is absent (e.g. CA certificates).
 * Throws HcRoleDecodeError when the certificate is not parseable or the extension is malformed.
 */
export function extractHcRoles(certDer: Uint8Array): HcRole[] {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(ab(certDer));
  } catch (e) {
    throw new HcRoleDecodeError(`certificate: not parseable (${(e as Error).message})`);
  }
  const ext = cert.extensions?.find((e) => e.extnID === OID.subjectDirectoryAttributes);
  return ext ? decodeHcRoleExtension(ext.extnValue.valueBlock.valueHexView) : [];
}
