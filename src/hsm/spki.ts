/**
 * Public-key and signature encodings between PKCS#11 attribute values and X.509 DER.
 * The key material itself is handled by node:crypto and asn1js; nothing here does crypto math.
 */
import { createPublicKey } from "node:crypto";
import * as asn1js from "asn1js";

/** Algorithms the HSM layer generates and signs with. */
export type KeyAlgorithm = "RSA-2048" | "P-256";

/** DER of the OID 1.2.840.10045.3.1.7 (prime256v1 / P-256): the CKA_EC_PARAMS value (v2.40 §2.3.3). */
export const P256_EC_PARAMS = Buffer.from("06082a8648ce3d030107", "hex");

const b64url = (b: Buffer): string => b.toString("base64url");

/** SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7) for an RSA key from CKA_MODULUS / CKA_PUBLIC_EXPONENT (big-endian). */
export function rsaSpki(modulus: Buffer, publicExponent: Buffer): Buffer {
  return createPublicKey({ key: { kty: "RSA", n: b64url(modulus), e: b64url(publicExponent) }, format: "jwk" }).export({
    type: "spki",
    format: "der",
  });
}

/**
 * SubjectPublicKeyInfo DER for a P-256 key from CKA_EC_POINT, which v2.40 §2.3.3 defines as the DER
 * OCTET STRING wrapping the uncompressed point 04‖X‖Y (some modules return the bare point: accepted).
 * @throws Error when the point is not a 65-byte uncompressed P-256 point.
 */
export function p256Spki(ecPoint: Buffer): Buffer {
  let point = ecPoint;
  if (point.length !== 65) {
    const parsed = asn1js.fromBER(ecPoint);
    if (parsed.offset === -1 || !(parsed.result instanceof asn1js.OctetString)) throw new Error("CKA_EC_POINT is not an OCTET STRING");
    point = Buffer.from(parsed.result.valueBlock.valueHexView);
  }
  if (point.length !== 65 || point[0] !== 0x04) throw new Error("CKA_EC_POINT is not an uncompressed P-256 point");
  const jwk = { kty: "EC", crv: "P-256", x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) };
  return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "der" });
}

/**
 * Converts a CKM_ECDSA signature (r‖s, each half the length, v2.40 §2.3.1) to the DER
 * Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER } used in X.509 (RFC 3279 §2.2.3).
 * Written out directly (X.690 §8.3, §8.9): asn1js took ~27 µs per signature, a fifth of the
 * per-signature budget at P-256 speeds. Supports halves up to 66 bytes (P-521).
 */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) throw new Error(`bad ECDSA signature length ${raw.length}`);
  const half = raw.length / 2;
  const r = derUnsignedInteger(raw.subarray(0, half));
  const s = derUnsignedInteger(raw.subarray(half));
  const len = r.length + s.length;
  const head = len < 0x80 ? Buffer.from([0x30, len]) : Buffer.from([0x30, 0x81, len]);
  return Buffer.concat([head, r, s]);
}

/** INTEGER TLV of an unsigned big-endian magnitude: minimal octets, 0x00 prefix when the top bit is set. */
function derUnsignedInteger(mag: Uint8Array): Buffer {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const body = mag.subarray(i);
  const pad = body[0] & 0x80 ? 1 : 0;
  return Buffer.concat([Buffer.from(pad ? [0x02, body.length + 1, 0] : [0x02, body.length]), body]);
}
