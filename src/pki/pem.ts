/** PEM armour (RFC 7468): encode DER with a label, decode PEM or pass DER through. */

/** DER → PEM text with 64-column lines and a trailing newline. */
export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * Accepts PEM (first block with `label`, or any label when omitted) or raw DER bytes; returns DER.
 * Throws when the input is text without a matching PEM block.
 */
export function fromPemOrDer(input: Uint8Array | string, label?: string): Buffer {
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  if (!text.includes("-----BEGIN")) {
    if (typeof input === "string") throw new Error("no PEM block found");
    return Buffer.from(input);
  }
  const want = label ? label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") : "[A-Z0-9 ]+";
  const m = new RegExp(`-----BEGIN (${want})-----([\\s\\S]*?)-----END \\1-----`).exec(text);
  if (!m) throw new Error(`no PEM block${label ? ` labelled ${label}` : ""} found`);
  return Buffer.from(m[2].replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
}
