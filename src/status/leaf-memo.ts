/**
 * The login certificates a verifier saw lately, parsed, with the identity they name (issue 14,
 * Benchmark): a session's certificate is validated again at every use (login-binding.ts), and
 * parsing it and decoding its names each time was a tenth of the verification's CPU. Only what
 * cannot change for the same DER is kept — the parse and the names, and through the parse the
 * verified signature, which the trust store keeps with the parsed object; the path, validity and
 * revocation are checked on every use. Least recently used entries go first beyond `max`.
 */
import { createHash } from "node:crypto";
import type { ParsedCertificate } from "../pki/x509-parse.ts";
import type { CertificateIdentity } from "./certificate-identity.ts";

export interface KnownLeaf {
  leaf: ParsedCertificate;
  identity: CertificateIdentity;
}

export class LeafMemo {
  private readonly entries = new Map<string, KnownLeaf>();

  /** `max`: entries kept (a parsed certificate is a few kB). */
  constructor(private readonly max = 4096) {}

  /** The entry for the certificate `der`, or undefined. */
  get(der: Uint8Array): KnownLeaf | undefined {
    const key = keyOf(der);
    const hit = this.entries.get(key);
    if (hit) {
      // Map keeps insertion order: re-inserting makes it the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Remembers `known` for `der`. */
  set(der: Uint8Array, known: KnownLeaf): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(keyOf(der), known);
  }

  get size(): number {
    return this.entries.size;
  }
}

const keyOf = (der: Uint8Array): string => createHash("sha256").update(der).digest("base64");
