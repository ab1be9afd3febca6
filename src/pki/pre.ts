/**
 * Proxy re-encryption for organisational encryption (組織暗号, issue 15 §7) with Umbral
 * (@nucypher/umbral-pre 0.10.0, the Rust implementation compiled to WASM; secp256k1). Chosen over
 * @ironcorelabs/recrypt-node-binding because it loads anywhere Node 20 runs (no native prebuilt
 * downloaded at install), verifies key and capsule fragments, and offers threshold (m-of-n)
 * re-encryption; see docs/POBOX.md §3 for the evaluation. The library is GPL-3.0-only: it is an
 * optionalDependency imported lazily, so only processes that use organisational encryption load
 * it, and an installation without it (npm ci --omit=optional) refuses organisational encryption.
 *
 * Roles:
 *   sender        encapsulate(facilityPk, cek)            → capsule + ciphertext of the CEK
 *   key holder    createKfrag(facilitySk, designeePk)      → kfrag (held by the box)
 *   box (proxy)   reencrypt(capsule, kfrag)                → cfrag; it never sees the CEK
 *   designee      openReencrypted(designeeSk, …, cfrag)    → CEK
 */
type Umbral = typeof import("@nucypher/umbral-pre");

let loaded: Umbral | undefined;

/** Organisational encryption was asked for but the optional Umbral package is not installed. */
export class PreUnavailableError extends Error {
  override name = "PreUnavailableError";
  readonly messageJa = "組織暗号には @nucypher/umbral-pre（GPL-3.0-only、任意の依存パッケージ）が必要です。npm ci（--omit=optional なし）で導入してください。";
  constructor(cause: unknown) {
    super("organisational encryption needs the optional package @nucypher/umbral-pre (GPL-3.0-only); install it with npm ci (without --omit=optional)", { cause });
  }
}

/**
 * Loads the Umbral WASM module once (about 30 ms). It is an optionalDependency (GPL-3.0-only, so
 * an Apache-2.0 installation can leave it out with `npm ci --omit=optional`).
 * @throws PreUnavailableError when the package is not installed.
 */
export async function umbral(): Promise<Umbral> {
  if (loaded) return loaded;
  try {
    return (loaded = await import("@nucypher/umbral-pre"));
  } catch (e) {
    throw new PreUnavailableError(e);
  }
}

/** A PRE key pair: secret key as 32 big-endian bytes, public key as compressed SEC1 (33 bytes). */
export interface PreKeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A fresh Umbral key pair (a facility's organisation key, a designee's key, a key holder's signing key). */
export async function generatePreKeyPair(): Promise<PreKeyPair> {
  const u = await umbral();
  const sk = u.SecretKey.random();
  const out = { secretKey: sk.toBEBytes(), publicKey: sk.publicKey().toCompressedBytes() };
  sk.free();
  return out;
}

/** Sender: encapsulates `cek` to the organisation key `facilityPk` (Umbral KEM + its DEM). */
export async function encapsulate(facilityPk: Uint8Array, cek: Uint8Array): Promise<{ capsule: Uint8Array; encryptedKey: Uint8Array }> {
  const u = await umbral();
  const [capsule, encryptedKey] = u.encrypt(u.PublicKey.fromCompressedBytes(facilityPk), cek);
  return { capsule: capsule.toBytes(), encryptedKey };
}

/**
 * Key holder: the re-encryption key from the organisation key to `designeePk`, signed with the
 * holder's `signerSk` over both public keys (so the box can check it before holding it). One
 * fragment (threshold 1 of 1): there is one proxy, the box.
 */
export async function createKfrag(facilitySk: Uint8Array, designeePk: Uint8Array, signerSk: Uint8Array): Promise<Uint8Array> {
  const u = await umbral();
  const signer = new u.Signer(u.SecretKey.fromBEBytes(signerSk));
  const [kfrag] = u.generateKFrags(u.SecretKey.fromBEBytes(facilitySk), u.PublicKey.fromCompressedBytes(designeePk), signer, 1, 1, true, true);
  return kfrag.toBytes();
}

/** Box: checks a kfrag was made by the key holder for exactly this facility key and designee. @throws Error when not. */
export async function verifyKfrag(kfrag: Uint8Array, keys: { verifyingPk: Uint8Array; facilityPk: Uint8Array; designeePk: Uint8Array }): Promise<void> {
  const u = await umbral();
  const k = u.KeyFrag.fromBytes(kfrag);
  const v = k.verify(u.PublicKey.fromCompressedBytes(keys.verifyingPk), u.PublicKey.fromCompressedBytes(keys.facilityPk), u.PublicKey.fromCompressedBytes(keys.designeePk));
  v.free();
}

/**
 * Re-encrypts capsules with one kfrag: the proxy's whole work. Parses the kfrag once (it was
 * verified when the box accepted it) and each capsule (Capsule.fromBytes checks it is well formed).
 */
export class Reencryptor {
  private constructor(
    private readonly u: Umbral,
    private readonly kfrag: import("@nucypher/umbral-pre").VerifiedKeyFrag,
  ) {}

  /** @throws Error on a kfrag that does not parse. */
  static async of(kfrag: Uint8Array): Promise<Reencryptor> {
    const u = await umbral();
    return new Reencryptor(u, u.KeyFrag.fromBytes(kfrag).skipVerification());
  }

  /** The capsule fragment for `capsule`. @throws Error on a malformed capsule. */
  reencrypt(capsule: Uint8Array): Uint8Array {
    const c = this.u.Capsule.fromBytes(capsule);
    try {
      const cf = this.u.reencrypt(c, this.kfrag);
      const bytes = cf.toBytes();
      cf.free();
      return bytes;
    } finally {
      c.free();
    }
  }

  free(): void {
    this.kfrag.free();
  }
}

/**
 * Designee: verifies the box's capsule fragment (made from the key holder's kfrag for this
 * designee) and opens the CEK. @throws Error when the fragment does not verify or the key is wrong.
 */
export async function openReencrypted(p: {
  designeeSk: Uint8Array; facilityPk: Uint8Array; verifyingPk: Uint8Array;
  capsule: Uint8Array; cfrag: Uint8Array; encryptedKey: Uint8Array;
}): Promise<Uint8Array> {
  const u = await umbral();
  const sk = u.SecretKey.fromBEBytes(p.designeeSk);
  const facilityPk = u.PublicKey.fromCompressedBytes(p.facilityPk);
  const capsule = u.Capsule.fromBytes(p.capsule);
  const v = u.CapsuleFrag.fromBytes(p.cfrag).verify(capsule, u.PublicKey.fromCompressedBytes(p.verifyingPk), facilityPk, sk.publicKey());
  return u.decryptReencrypted(sk, facilityPk, capsule, [v], p.encryptedKey);
}

/** The organisation key holder opening a capsule directly (no re-encryption). */
export async function openOriginal(facilitySk: Uint8Array, capsule: Uint8Array, encryptedKey: Uint8Array): Promise<Uint8Array> {
  const u = await umbral();
  return u.decryptOriginal(u.SecretKey.fromBEBytes(facilitySk), u.Capsule.fromBytes(capsule), encryptedKey);
}
