/**
 * Human-readable rendering of a CertificateDescription for `hpki inspect`, with Japanese or
 * English labels. Pure: value in, text out.
 */
import type { HcRoleCode } from "./hcrole-table.ts";
import type { CertificateDescription } from "./inspect.ts";

type Lang = "ja" | "en";

const LABELS: Record<string, Record<Lang, string>> = {
  version: { ja: "バージョン", en: "Version" },
  serial: { ja: "シリアル番号", en: "Serial number" },
  sigAlg: { ja: "署名アルゴリズム", en: "Signature algorithm" },
  issuer: { ja: "発行者", en: "Issuer" },
  subject: { ja: "主体者", en: "Subject" },
  subscriberId: { ja: "加入者識別子", en: "Subscriber serialNumber" },
  kanjiName: { ja: "氏名 (漢字)", en: "Name (kanji)" },
  kanjiOrg: { ja: "所属 (漢字)", en: "Organization (kanji)" },
  kanjiDn: { ja: "別名 (漢字DN)", en: "Kanji directoryName" },
  hcRole: { ja: "資格 (hcRole)", en: "Role (hcRole)" },
  validity: { ja: "有効期間", en: "Validity" },
  publicKey: { ja: "公開鍵", en: "Public key" },
  keyUsage: { ja: "鍵用途", en: "Key usage" },
  extKeyUsage: { ja: "拡張鍵用途", en: "Extended key usage" },
  basicConstraints: { ja: "基本制約", en: "Basic constraints" },
  policies: { ja: "証明書ポリシ", en: "Certificate policies" },
  crldp: { ja: "CRL配布点", en: "CRL distribution points" },
  aki: { ja: "機関鍵識別子", en: "Authority key identifier" },
  ski: { ja: "主体者鍵識別子", en: "Subject key identifier" },
  fingerprint: { ja: "SHA-256 フィンガープリント", en: "SHA-256 fingerprint" },
  critical: { ja: "重要", en: "critical" },
  none: { ja: "なし", en: "none" },
  ca: { ja: "CA", en: "CA" },
  endEntity: { ja: "エンドエンティティ", en: "end entity" },
  unverified: { ja: "英語名未確認", en: "English name unverified" },
};

const colonHex = (h: string) => h.replace(/(..)(?!$)/g, "$1:");

/**
 * Renders `d` as aligned "label: value" lines (one block per field, continuation lines indented)
 * with Japanese (`"ja"`) or English labels. When `table` (parseHcRoleTable) is given, the hcRole
 * line adds the Japanese role name, e.g. "Medical Doctor (医師)", and flags unverified codes.
 * Never throws for a value produced by describeCertificate.
 */
export function formatCertificateDescription(
  d: CertificateDescription,
  lang: Lang,
  table?: ReadonlyMap<string, HcRoleCode>,
): string {
  const L = (k: keyof typeof LABELS) => LABELS[k][lang];
  const crit = (c: boolean) => (c ? ` (${L("critical")})` : "");
  const rows: [string, string[]][] = [];
  const add = (k: keyof typeof LABELS, ...values: string[]) => rows.push([L(k), values.length ? values : [L("none")]]);

  add("version", `v${d.version}`);
  add("serial", `${colonHex(d.serialNumber)} (0x${d.serialNumber.replace(/^0+(?=.)/, "")})`);
  add("sigAlg", d.signatureAlgorithm.name ?? d.signatureAlgorithm.oid);
  add("issuer", d.issuer.text);
  add("subject", d.subject.text);
  if (d.subscriberSerialNumber !== null) add("subscriberId", d.subscriberSerialNumber);
  if (d.kanji) {
    if (d.kanji.name !== null) add("kanjiName", d.kanji.name);
    if (d.kanji.organization !== null) add("kanjiOrg", d.kanji.organization);
    add("kanjiDn", d.kanji.directoryName.text);
  }
  if (d.hcRoles.length) add("hcRole", ...d.hcRoles.map((r) => roleText(r.codeDataFreeText, lang, table)));
  add(
    "validity",
    `${d.validity.notBeforeJst} 〜 ${d.validity.notAfterJst}`,
    `(${d.validity.notBefore} .. ${d.validity.notAfter})`,
  );
  const k = d.publicKey;
  add("publicKey", [k.algorithm, k.namedCurve, k.bits ? `${k.bits} bit` : undefined, k.publicExponent ? `e=${k.publicExponent}` : undefined].filter(Boolean).join(" "));
  if (d.keyUsage) add("keyUsage", d.keyUsage.names.join(", ") + crit(d.keyUsage.critical));
  if (d.extKeyUsage) add("extKeyUsage", d.extKeyUsage.names.join(", ") + crit(d.extKeyUsage.critical));
  add(
    "basicConstraints",
    d.basicConstraints
      ? `${d.basicConstraints.ca ? L("ca") : L("endEntity")}${d.basicConstraints.pathLenConstraint === undefined ? "" : `, pathLen=${d.basicConstraints.pathLenConstraint}`}${crit(d.basicConstraints.critical)}`
      : L("endEntity"),
  );
  if (d.certificatePolicies) {
    const c = crit(d.certificatePolicies.critical);
    add("policies", ...d.certificatePolicies.policies.flatMap((p) => [`${p.oid}${p.label ? ` — ${p.label}` : ""}${c}`, ...p.cpsUris.map((u) => `  CPS: ${u}`)]));
  }
  if (d.crlDistributionPoints) add("crldp", ...d.crlDistributionPoints.uris, ...d.crlDistributionPoints.directoryNames);
  if (d.authorityKeyIdentifier) {
    const a = d.authorityKeyIdentifier;
    add("aki", ...[a.keyId && colonHex(a.keyId), ...(a.issuer ?? []), a.serialNumber && `serial ${colonHex(a.serialNumber)}`].filter((x): x is string => !!x));
  }
  if (d.subjectKeyIdentifier) add("ski", colonHex(d.subjectKeyIdentifier));
  add("fingerprint", d.fingerprintSha256);

  // Pad by display width so columns line up with full-width (2-column) Japanese labels.
  const width = (s: string) => [...s].reduce((n, ch) => n + (/[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1), 0);
  const w = Math.max(...rows.map(([l]) => width(l)));
  return rows
    .flatMap(([label, values]) =>
      values.map((v, i) => (i === 0 ? `${label}${" ".repeat(w - width(label))} : ${v}` : `${" ".repeat(w)}   ${v}`)),
    )
    .join("\n") + "\n";
}

function roleText(code: string, lang: Lang, table?: ReadonlyMap<string, HcRoleCode>): string {
  const row = table?.get(code.normalize("NFC"));
  if (!row) return code;
  const flag = row.status === "unverified" ? `, ${LABELS.unverified[lang]}` : "";
  return `${code} (${row.ja}${flag})`;
}
