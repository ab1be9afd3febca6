/**
 * X.509 certificate objects on a token (PKCS#11 v2.40 §4.6.3, CKO_CERTIFICATE / CKC_X_509).
 */
import * as pkijs from "pkijs";
import type graphene from "graphene-pk11";
import pkcs11 from "pkcs11js";
import { HsmError } from "./errors.ts";
import { findObjects, getAttributes } from "./keys.ts";

/**
 * The attribute template of a token certificate object: CKA_VALUE = `der`, CKA_SUBJECT, CKA_ISSUER
 * (Name DER) and CKA_SERIAL_NUMBER (the DER INTEGER) taken from the certificate, CKA_ID = the key's
 * id so applications pair certificate and key, CKA_TOKEN true, CKA_PRIVATE false.
 * @throws HsmError "BAD_CERTIFICATE" when `der` is not an X.509 certificate.
 */
export function certificateTemplate(id: Buffer, der: Uint8Array, label: string): pkcs11.Template {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  } catch (err) {
    throw new HsmError("not a DER X.509 certificate", "BAD_CERTIFICATE", { cause: err });
  }
  return [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_CERTIFICATE },
    { type: pkcs11.CKA_CERTIFICATE_TYPE, value: pkcs11.CKC_X_509 },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: false },
    { type: pkcs11.CKA_LABEL, value: label },
    { type: pkcs11.CKA_ID, value: id },
    { type: pkcs11.CKA_SUBJECT, value: Buffer.from(cert.subject.toSchema().toBER(false)) },
    { type: pkcs11.CKA_ISSUER, value: Buffer.from(cert.issuer.toSchema().toBER(false)) },
    { type: pkcs11.CKA_SERIAL_NUMBER, value: Buffer.from(cert.serialNumber.toBER(false)) },
    { type: pkcs11.CKA_VALUE, value: Buffer.from(der) },
  ];
}

/** Every X.509 certificate object on the session's token with its CKA_ID, CKA_LABEL and CKA_VALUE. */
export function readCertificates(session: graphene.Session): { id: Buffer; label: string; der: Buffer }[] {
  const handles = findObjects(session, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_CERTIFICATE },
    { type: pkcs11.CKA_CERTIFICATE_TYPE, value: pkcs11.CKC_X_509 },
  ]);
  return handles.map((h) => {
    const [id, label, der] = getAttributes(session, h, [pkcs11.CKA_ID, pkcs11.CKA_LABEL, pkcs11.CKA_VALUE]);
    return { id, label: label.toString("utf8"), der };
  });
}
