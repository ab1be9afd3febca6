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

export const ID_ORI_UMBRAL = "2.25.230476955692269207486125756803315426931";

export interface PreRecipient {
  facilityKey: Uint8Array;
  capsule: Uint8Array;
  encryptedKey: Uint8Array;
}

/** DER of the oriValue. */
export function encodePreRecipient(r: PreRecipient): Buffer {
  const os = (b: Uint8Array) => new asn1js.OctetString({ valueHex: new Uint8Array(b).buffer });
  return Buffer.from(new asn1js.Sequence({ value: [new asn1js.Integer({ value: 0 }), os(r.facilityKey), os(r.capsule), os(r.encryptedKey)] }).toBER(false));
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
