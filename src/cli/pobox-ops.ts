/**
 * What `hpki pobox` does on the user's computer (issue 15 §5–§7): encrypt for validated readers
 * and send; fetch and open (as a reader: the card's key agreement; as a designee of a facility: the
 * box's capsule fragment and the person's PRE key, itself kept in an envelope to their card); forward
 * by re-wrapping the content key for a new reader; register a PRE key. Plaintext exists only here.
 */
import type { RecipientKeyAgent } from "../pki/envelope-key-agent.ts";
import { addRecipient, decryptContent, isAddressedTo, openEnvelope, sealEnvelope, unwrapContentKey } from "../pki/envelope.ts";
import { sealForOrganisations } from "../pki/envelope-organisation.ts";
import type { PathValidationPolicy } from "../pki/path-validation.ts";
import { checkPatientEncryptionCertificate } from "../pki/jpki.ts";
import { generatePreKeyPair, openReencrypted } from "../pki/pre.ts";
import { boxCall, type PoboxSession } from "./pobox-client.ts";
import { validatedRecipient } from "./pobox-recipients.ts";

export interface Addressee {
  kind: "person" | "facility" | "patient";
  subscriberId: string;
}

/** How readers' certificates are found and checked: the repository and the trust anchors. */
export interface DirectoryTrust {
  repoUrl: string;
  anchors: Uint8Array[];
  policy: PathValidationPolicy;
}

/** "DOC0001,facility:PHARM01" → addressees. */
export function parseTo(list: string): Addressee[] {
  return list.split(",").map((s) => s.trim()).filter(Boolean).map((t) => {
    const [kind, id] = t.includes(":") ? t.split(":", 2) : ["person", t];
    if (kind !== "person" && kind !== "facility" && kind !== "patient") throw new Error(`unknown addressee kind "${kind}" / 宛先の種類「${kind}」は使えません`);
    return { kind, subscriberId: id };
  });
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

/**
 * A reader's encryption certificate: a person's from the repository's directory, validated now
 * (chain, policy, validity, CRL); a patient's from the box (registered after the JPKI proof, issue
 * 15 §8 — the box's registration is what vouches for it), checked to be a current self-signed P-256
 * certificate.
 */
async function readerCertificate(s: PoboxSession, trust: DirectoryTrust, a: Addressee): Promise<Uint8Array> {
  if (a.kind === "patient") {
    const k = await boxCall<{ certificate: string }>(s, "GET", `/patients/${encodeURIComponent(a.subscriberId)}/key`);
    const cert = bytes(k.certificate);
    checkPatientEncryptionCertificate(cert, new Date());
    return cert;
  }
  return validatedRecipient(trust.repoUrl, a.subscriberId, trust.anchors, trust.policy);
}

/**
 * Encrypts `content` for `to` and sends it: each person's encryption certificate is taken from the
 * directory and validated now (chain, policy, validity, CRL) — a revoked or expired one is refused
 * before anything is encrypted; a facility gets our organisation recipient for its published key.
 */
export async function sendDocument(s: PoboxSession, trust: DirectoryTrust, p: { content: Uint8Array; to: Addressee[]; documentClass: string; forwardAllowed: boolean }): Promise<{ id: string; expiresAt: string }> {
  const certs: Uint8Array[] = [];
  const facilityKeys: Uint8Array[] = [];
  for (const a of p.to) {
    if (a.kind === "facility") {
      const k = await boxCall<{ prePublicKey: string }>(s, "GET", `/facilities/${encodeURIComponent(a.subscriberId)}/key`);
      facilityKeys.push(bytes(k.prePublicKey));
    } else {
      certs.push(await readerCertificate(s, trust, a));
    }
  }
  const envelope = facilityKeys.length ? await sealForOrganisations(p.content, certs, facilityKeys) : await sealEnvelope(p.content, certs);
  return boxCall(s, "POST", "/messages", { recipients: p.to, documentClass: p.documentClass, forwardAllowed: p.forwardAllowed, envelope: b64(envelope) });
}

/** The content key of message `id`: as a named reader (card key agreement) or as a designee (re-encryption). */
async function contentKeyOf(s: PoboxSession, id: string, envelope: Uint8Array, agent: RecipientKeyAgent): Promise<{ key: Uint8Array; as: "reader" | "designee" }> {
  if (isAddressedTo(envelope, agent.certificate)) return { key: await unwrapContentKey(envelope, agent), as: "reader" };
  const pre = await boxCall<{ wrappedSecret: string }>(s, "GET", "/pre-key");
  const designeeSk = await openEnvelope(bytes(pre.wrappedSecret), agent);
  try {
    const r = await boxCall<Record<string, string>>(s, "GET", `/messages/${id}/reencryption`);
    const key = await openReencrypted({ designeeSk, facilityPk: bytes(r.facilityKey), verifyingPk: bytes(r.verifyingKey), capsule: bytes(r.capsule), cfrag: bytes(r.cfrag), encryptedKey: bytes(r.encryptedKey) });
    return { key, as: "designee" };
  } finally {
    designeeSk.fill(0);
  }
}

/** Fetches and opens message `id` with `agent` (the card), then sends the read receipt. */
export async function receiveDocument(s: PoboxSession, id: string, agent: RecipientKeyAgent): Promise<{ content: Uint8Array; as: string }> {
  const envelope = new Uint8Array(await boxCall<Buffer>(s, "GET", `/messages/${id}/envelope`));
  const { key, as } = await contentKeyOf(s, id, envelope, agent);
  try {
    const content = decryptContent(envelope, key);
    await boxCall(s, "POST", `/messages/${id}/read`).catch(() => undefined);
    return { content, as };
  } finally {
    key.fill(0);
  }
}

/**
 * Forwards message `id` to `to` (persons): the content key is unwrapped with the card and
 * re-wrapped for each new reader's validated certificate; the encrypted content is not touched.
 */
export async function forwardDocument(s: PoboxSession, trust: DirectoryTrust, id: string, agent: RecipientKeyAgent, to: Addressee[]): Promise<{ id: string; rootId: string }> {
  let envelope: Uint8Array = new Uint8Array(await boxCall<Buffer>(s, "GET", `/messages/${id}/envelope`));
  const { key } = await contentKeyOf(s, id, envelope, agent);
  try {
    for (const a of to) {
      if (a.kind === "facility") throw new Error("forwarding to a facility is not supported / 施設への転送はできません");
      envelope = await addRecipient(envelope, key, await readerCertificate(s, trust, a));
    }
  } finally {
    key.fill(0);
  }
  return boxCall(s, "POST", `/messages/${id}/forward`, { recipients: to, envelope: b64(envelope) });
}

/**
 * Creates the caller's PRE key pair (organisational encryption, §7) here and registers it: the
 * public key in clear, the secret key sealed to the caller's own encryption certificate, so only
 * their card opens it. Returns the public key.
 */
export async function registerOwnPreKey(s: PoboxSession, encCertificate: Uint8Array): Promise<Uint8Array> {
  const k = await generatePreKeyPair();
  try {
    const wrapped = await sealEnvelope(k.secretKey, [encCertificate]);
    await boxCall(s, "POST", "/pre-key", { publicKey: b64(k.publicKey), wrappedSecret: b64(wrapped) });
    return k.publicKey;
  } finally {
    k.secretKey.fill(0);
  }
}
