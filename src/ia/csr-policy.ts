/** Which CSR keys a profile accepts, from its keyAlgorithms (e.g. RSA-2048 → RSA of exactly 2048 bits). */
import type { CertificateProfile } from "../pki/profile.ts";

export type CsrKeyRule = { algorithm: "RSA" | "EC"; bits?: number[]; curves?: string[] };

export function csrKeyPolicy(profile: CertificateProfile): CsrKeyRule[] {
  const rules: CsrKeyRule[] = [];
  for (const alg of profile.keyAlgorithms) {
    const m = /^RSA-(\d+)$/.exec(alg);
    if (m) rules.push({ algorithm: "RSA", bits: [Number(m[1])] });
    else rules.push({ algorithm: "EC", curves: [alg] });
  }
  return rules;
}
