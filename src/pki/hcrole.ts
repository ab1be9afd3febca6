/**
 * hcRole codec: the ISO/TS 17090 healthcare-actor attribute (id-hcpki-at-healthcareactor,
 * 1.0.17090.0.1) carried in the subjectDirectoryAttributes extension (RFC 5280 §4.2.1.8), in the
 * Japanese HPKI profile (HPKI CP §7.1; ../shared/hpki/HPKI-PROFILE.md §6):
 *
 *   HCActorData ::= SET OF HCActor
 *   HCActor     ::= SEQUENCE { codedData [0] EXPLICIT CodedData, regionalHCActorData [1] … OPTIONAL }
 *   CodedData   ::= SET { codingSchemeReference [0] EXPLICIT OID,
 *                         codeDataValue [1] EXPLICIT NumericString OPTIONAL,
 *                         codeDataFreeText [2] EXPLICIT DirectoryString }
 */
import { explicit, oid, sequence, set, utf8String } from "./der.ts";
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
