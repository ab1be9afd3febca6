/**
 * Host names for subjectAltName dNSName (RFC 5280 §4.2.1.6: the preferred name syntax of RFC 1034
 * §3.5 as relaxed by RFC 1123 §2.1; RFC 6125 §6.4). HPKI organisation certificates name the
 * organisation's servers: fully qualified, no wildcard, no IP address, lowercase.
 */

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Why `name` is not a valid dNSName for an organisation certificate (English, Japanese), or
 * undefined when it is. Expects the form stored in certificates: lowercase, no trailing dot.
 */
export function dnsNameProblem(name: string): { en: string; ja: string } | undefined {
  if (name.length === 0 || name.length > 253) return { en: `"${name}" must be 1 to 253 characters`, ja: `"${name}" は1〜253文字で指定してください` };
  if (name.startsWith("*.")) return { en: `"${name}": wildcards are not issued`, ja: `"${name}": ワイルドカードは発行しません` };
  const labels = name.split(".");
  if (labels.length < 2) return { en: `"${name}" is not a fully qualified host name`, ja: `"${name}" は完全修飾ホスト名ではありません` };
  if (labels.some((l) => !LABEL.test(l))) {
    return { en: `"${name}" is not a host name (lowercase letters, digits and '-' in dot-separated labels of at most 63)`, ja: `"${name}" はホスト名ではありません（英小文字・数字・'-' の63文字以内のラベルをドットで区切ります）` };
  }
  if (/^\d+$/.test(labels[labels.length - 1])) return { en: `"${name}" looks like an IP address; a dNSName names a host`, ja: `"${name}" は IP アドレスのようです。ホスト名を指定してください` };
  return undefined;
}

/** The stored form of a host name as entered: trimmed, lowercase, without a trailing dot. */
export function normalizeDnsName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}
