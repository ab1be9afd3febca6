/**
 * Who a validated HPKI authentication certificate names (HPKI-PROFILE §2, §6, §10.5–10.7): the
 * subscriber id (subject serialNumber) and issuer that identify the person across renewals, the
 * romaji name (subject CN), the kanji name and organisation (subjectAltName directoryName) and the
 * hcRole. Strings are NFC-normalised so comparisons do not depend on how the CA composed them.
 */
import { children, isUniversal, parseDer, type Fail } from "../pki/der-cursor.ts";
import { decodeHcRoleExtension } from "../pki/hcrole.ts";
import { decodeName, decodeNameAt, formatName, type NameAttribute } from "../pki/name-decode.ts";
import { OID } from "../pki/oids.ts";
import { PathValidationError, type ValidatedPath } from "../pki/path-validation.ts";

/** The person behind a login certificate. */
export interface CertificateIdentity {
  /** Issuing CA subject DN (one display line) — with subscriberId, the stable person key. */
  issuer: string;
  subscriberId: string;
  nameLatin: string | null;
  nameKanji: string | null;
  organizationLatin: string | null;
  organizationKanji: string | null;
  /** codeDataFreeText of the hcRole (id-jhpki-cdata scheme), e.g. "Medical Doctor"; null when absent. */
  hcRole: string | null;
  /** Certificate serial, uppercase hex. */
  serialHex: string;
}

const nfc = (s: string | undefined | null) => (s == null ? null : s.normalize("NFC"));
const first = (rdns: NameAttribute[][], type: string) => rdns.flat().find((a) => a.type === type)?.value;

const failSan: Fail = (m) => {
  throw new PathValidationError("malformed-certificate", m);
};

/**
 * Extracts the identity of a validated path's end entity. @throws PathValidationError
 * "malformed-certificate" when the subject has no serialNumber or a name/hcRole does not decode.
 */
export function certificateIdentity(path: ValidatedPath): CertificateIdentity {
  const leaf = path.leaf;
  try {
    const subject = decodeName(leaf.subject);
    const subscriberId = first(subject, OID.serialNumber);
    if (!subscriberId) throw new PathValidationError("malformed-certificate", "subject has no serialNumber (subscriber id)");
    let kanji: NameAttribute[][] = [];
    const san = leaf.extensions.get(OID.subjectAltName);
    if (san) {
      const top = parseDer(san.value, "subjectAltName", failSan);
      const dir = (isUniversal(top, 16) ? children(san.value, top, "subjectAltName", failSan) : []).find((g) => g.tag === 0xa4);
      if (dir) kanji = decodeNameAt(san.value, children(san.value, dir, "directoryName", failSan)[0]);
    }
    const sda = leaf.extensions.get(OID.subjectDirectoryAttributes);
    const role = sda ? decodeHcRoleExtension(sda.value).find((r) => r.codingSchemeReference === OID.idJhpkiCdata) : undefined;
    return {
      issuer: formatName(leaf.issuer),
      subscriberId: subscriberId.normalize("NFC"),
      nameLatin: nfc(first(subject, OID.commonName)),
      nameKanji: nfc(first(kanji, OID.commonName)),
      organizationLatin: nfc(first(subject, OID.organizationName)),
      organizationKanji: nfc(first(kanji, OID.organizationName)),
      hcRole: nfc(role?.codeDataFreeText),
      serialHex: Buffer.from(leaf.serial).toString("hex").toUpperCase(),
    };
  } catch (e) {
    if (e instanceof PathValidationError) throw e;
    throw new PathValidationError("malformed-certificate", (e as Error).message);
  }
}

/**
 * hcRole authorisation (HPKI-PROFILE §10.5): exact, case-sensitive match of the NFC forms against
 * `allowed`; an empty `allowed` admits any role but still requires one.
 * @throws PathValidationError "hcrole-missing" | "hcrole-not-allowed".
 */
export function checkHcRole(identity: CertificateIdentity, allowed: readonly string[]): void {
  if (!identity.hcRole) throw new PathValidationError("hcrole-missing", "no hcRole with coding scheme id-jhpki-cdata");
  if (allowed.length === 0) return;
  if (!allowed.some((r) => r.normalize("NFC") === identity.hcRole)) {
    throw new PathValidationError("hcrole-not-allowed", `hcRole "${identity.hcRole}" is not one of ${allowed.map((r) => `"${r}"`).join(", ")}`);
  }
}
