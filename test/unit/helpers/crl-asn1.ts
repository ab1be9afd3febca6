/**
 * An independent CRL reader for tests, built on asn1js (not on our encoder): splits a DER CRL into
 * its TBSCertList fields, raw entry bytes and extensions so tests can compare byte for byte.
 */
import * as asn1js from "asn1js";

const raw = (b: asn1js.BaseBlock): Buffer => Buffer.from(b.valueBeforeDecodeView);
const children = (b: asn1js.BaseBlock): asn1js.BaseBlock[] => (b as asn1js.Sequence).valueBlock.value;

export interface ParsedCrlEntry {
  der: Buffer;
  serial: Buffer;
  revocationDate: Date;
  reasonCode?: number;
  invalidityDate?: Date;
}

export interface ParsedCrl {
  tbs: Buffer;
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: ParsedCrlEntry[];
  /** Content octets of revokedCertificates (the concatenated entries), or null when absent. */
  revokedCertificates: Buffer | null;
  extensions: Map<string, { critical: boolean; value: Buffer }>;
  crlNumber: bigint;
}

function parseTime(b: asn1js.BaseBlock): Date {
  return (b as asn1js.UTCTime).toDate();
}

function parseExtensions(seq: asn1js.BaseBlock): Map<string, { critical: boolean; value: Buffer }> {
  const out = new Map<string, { critical: boolean; value: Buffer }>();
  for (const ext of children(seq)) {
    const k = children(ext);
    const id = (k[0] as asn1js.ObjectIdentifier).valueBlock.toString();
    const critical = k.length === 3 ? (k[1] as asn1js.Boolean).valueBlock.value : false;
    out.set(id, { critical, value: Buffer.from((k[k.length - 1] as asn1js.OctetString).valueBlock.valueHexView) });
  }
  return out;
}

/** Parses a DER CRL; throws on anything that is not a v2 CertificateList. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const top = asn1js.fromBER(der);
  if (top.offset === -1) throw new Error(top.result.error);
  const tbsBlock = children(top.result)[0];
  const f = children(tbsBlock);
  let i = 0;
  if (f[i] instanceof asn1js.Integer) i++; // version
  i++; // signature
  const issuer = raw(f[i++]);
  const thisUpdate = parseTime(f[i++]);
  const nextUpdate = parseTime(f[i++]);
  let entries: ParsedCrlEntry[] = [];
  let revokedCertificates: Buffer | null = null;
  if (f[i] instanceof asn1js.Sequence) {
    const list = f[i++];
    revokedCertificates = Buffer.from(list.valueBeforeDecodeView.subarray(list.valueBeforeDecodeView.length - list.lenBlock.length));
    entries = children(list).map((e) => {
      const k = children(e);
      const exts = k[2] ? parseExtensions(k[2]) : new Map();
      const reason = exts.get("2.5.29.21");
      const inv = exts.get("2.5.29.24");
      return {
        der: raw(e),
        serial: Buffer.from((k[0] as asn1js.Integer).valueBlock.valueHexView),
        revocationDate: parseTime(k[1]),
        reasonCode: reason ? reason.value[2] : undefined,
        invalidityDate: inv ? (asn1js.fromBER(inv.value).result as asn1js.GeneralizedTime).toDate() : undefined,
      };
    });
  }
  const extensions = parseExtensions(children(f[i])[0]);
  const num = asn1js.fromBER(extensions.get("2.5.29.20")!.value).result as asn1js.Integer;
  return { tbs: raw(tbsBlock), issuer, thisUpdate, nextUpdate, entries, revokedCertificates, extensions, crlNumber: num.toBigInt() };
}
