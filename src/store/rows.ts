/** Normalises driver differences: pg returns bytea as Buffer; Uint8Array is accepted too. */
export function toBuffer(v: Uint8Array | Buffer | null | undefined): Buffer {
  if (v == null) throw new Error("expected bytea, got null");
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
