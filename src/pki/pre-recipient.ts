/**
 * The organisation recipient of an envelope (組織暗号, issue 15 §7): a CMS OtherRecipientInfo
 * (RFC 5652 §6.2.5) of our own, carrying the content-encryption key encapsulated to a facility's
 * Umbral key. Recorded as ours in docs/POBOX.md §3; no standard type exists for proxy
 * re-encryption in CMS.
 *
 *   oriType  id-hpkica-ori-umbral (ID_ORI_UMBRAL, a UUID OID under 2.25, ITU-T X.667)
 *   oriValue PreRecipient ::= SEQUENCE {
 *     version       INTEGER (0),
 *     facilityKey   OCTET STRING,   -- Umbral public key of the facility (compressed SEC1)
 *     capsule       OCTET STRING,   -- Umbral capsule
 *     encryptedKey  OCTET STRING }  -- the CEK under the capsule's key (Umbral DEM)
 */
import * as asn1js from "asn1js";
import { octetString, oid, sequence, smallInteger, tlv } from "./der.ts";

export const ID_ORI_UMBRAL = "2.25.230476955692269207486125756803315426931";
/** DER of ID_ORI_UMBRAL (asn1js prints arcs beyond 2^53 oddly: compare encodings, not text). */
export const ID_ORI_UMBRAL_DER = oid(ID_ORI_UMBRAL);

export interface PreRecipient {
  facilityKey: Uint8Array;
  capsule: Uint8Array;
  encryptedKey: Uint8Array;
}

/** DER of the oriValue. */
export function encodePreRecipient(r: PreRecipient): Buffer {
  return sequence(smallInteger(0), octetString(r.facilityKey), octetString(r.capsule), octetString(r.encryptedKey));
}

/** RecipientInfo ori [4] IMPLICIT OtherRecipientInfo { oriType, oriValue } (RFC 5652 §6.2.5) carrying `r`. */
export function encodePreRecipientInfo(r: PreRecipient): Buffer {
  return tlv(0xa4, ID_ORI_UMBRAL_DER, encodePreRecipient(r));
}

/** The PreRecipient of a RecipientInfo encoding, or undefined when it is not our ori. @throws Error on a malformed one. */
export function preRecipientOfInfo(riDer: Uint8Array): PreRecipient | undefined {
  const parsed = asn1js.fromBER(new Uint8Array(riDer)).result as asn1js.Constructed;
  if (parsed.idBlock.tagClass !== 3 || parsed.idBlock.tagNumber !== 4 || !parsed.idBlock.isConstructed) return undefined;
  const [oriType, oriValue] = parsed.valueBlock.value;
  if (!oriType || !oriValue || !Buffer.from(oriType.toBER(false)).equals(ID_ORI_UMBRAL_DER)) return undefined;
  return decodePreRecipient(new Uint8Array(oriValue.toBER(false)));
}

/** Parses the oriValue. @throws Error when it is not a version-0 PreRecipient. */
export function decodePreRecipient(der: Uint8Array): PreRecipient {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  const seq = parsed.result;
  if (parsed.offset === -1 || !(seq instanceof asn1js.Sequence) || seq.valueBlock.value.length !== 4) throw new Error("PreRecipient: not a SEQUENCE of 4");
  const [v, ...rest] = seq.valueBlock.value;
  if (!(v instanceof asn1js.Integer) || v.valueBlock.valueDec !== 0) throw new Error("PreRecipient: unsupported version");
  const bytes = rest.map((x, i) => {
    if (!(x instanceof asn1js.OctetString)) throw new Error(`PreRecipient: field ${i + 2} is not an OCTET STRING`);
    return new Uint8Array(x.valueBlock.valueHexView);
  });
  return { facilityKey: bytes[0], capsule: bytes[1], encryptedKey: bytes[2] };
}
