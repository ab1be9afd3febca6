/**
 * Issue 15 §2 interop: `openssl cms -decrypt` opens the AuthEnvelopedData (RFC 5083) we seal for an
 * EC P-256 reader (RFC 5753 ECDH) and an RSA reader (RSAES-OAEP-SHA-256); we open what
 * `openssl cms -encrypt -aes-256-gcm` seals; a tampered envelope fails authentication; a forward
 * keeps the content ciphertext byte for byte. Certificates and keys are made by OpenSSL itself.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  addRecipient, envelopeRecipients, envelopeSummary, EnvelopeError, forwardedRecipients, isAddressedTo, openEnvelope, recipientKeyOfCertificate,
  sealEnvelope, softwareKeyAgent, unwrapContentKey,
} from "../../src/pki/envelope.ts";
import { keyAgreementHelperOnline } from "../../src/pki/key-agreement-pool.ts";
import { tempDir } from "../helpers/openssl.ts";

const MARKER = "紹介状 referral letter 患者 marker-7f3a";
let dir: string;

interface Reader {
  certPem: string;
  keyPem: string;
  cert: Buffer;
  pkcs8: Buffer;
}

function openssl(...args: string[]): Buffer {
  return execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
}

/** A self-signed reader certificate from OpenSSL, with the key usage a CMS reader needs. */
function makeReader(name: string, kind: "ec" | "rsa"): Reader {
  const keyPem = path.join(dir, `${name}.key`);
  const certPem = path.join(dir, `${name}.pem`);
  const keyArgs = kind === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
  const ku = kind === "ec" ? "critical,keyAgreement" : "critical,keyEncipherment";
  openssl("req", "-x509", ...keyArgs, "-nodes", "-keyout", keyPem, "-out", certPem, "-days", "30", "-subj", `/C=JP/CN=${name}`, "-addext", `keyUsage=${ku}`, "-addext", "subjectKeyIdentifier=hash");
  return {
    keyPem,
    certPem,
    cert: openssl("x509", "-in", certPem, "-outform", "DER"),
    pkcs8: openssl("pkcs8", "-topk8", "-nocrypt", "-in", keyPem, "-outform", "DER"),
  };
}

function opensslDecrypt(envelope: Uint8Array, r: Reader): { ok: boolean; out: Buffer; err: string } {
  const file = path.join(dir, `in-${Math.random().toString(36).slice(2)}.der`);
  fs.writeFileSync(file, envelope);
  const p = spawnSync("openssl", ["cms", "-decrypt", "-inform", "DER", "-in", file, "-recip", r.certPem, "-inkey", r.keyPem]);
  return { ok: p.status === 0, out: p.stdout, err: p.stderr.toString() };
}

function opensslEncrypt(content: Buffer, r: Reader, keyopts: string[]): Buffer {
  const file = path.join(dir, `plain-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, content);
  return openssl("cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER", "-in", file, "-recip", r.certPem, ...keyopts.flatMap((k) => ["-keyopt", k]));
}

let ec: Reader;
let rsa: Reader;
let ec2: Reader;
const content = Buffer.concat([Buffer.from(MARKER), Buffer.alloc(70_000, 0x5a)]);

beforeAll(() => {
  dir = tempDir("hpki-envelope-");
  ec = makeReader("ec-reader", "ec");
  ec2 = makeReader("ec-second", "ec");
  rsa = makeReader("rsa-reader", "rsa");
});

describe("openssl cms -decrypt opens what we seal", () => {
  it("for an EC P-256 reader (ECDH ephemeral-static, SHA-256 KDF, AES-256 wrap)", async () => {
    const env = await sealEnvelope(content, [ec.cert]);
    const r = opensslDecrypt(env, ec);
    expect(r.err).toBe("");
    expect(r.ok).toBe(true);
    expect(r.out.equals(content)).toBe(true);
    expect(openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", writeTemp(env)).toString()).toMatch(/authEnvelopedData[\s\S]*dhSinglePass-stdDH-sha256kdf-scheme[\s\S]*id-aes256-wrap[\s\S]*aes-256-gcm/);
  });

  it("for an RSA reader (RSAES-OAEP with SHA-256)", async () => {
    const env = await sealEnvelope(content, [rsa.cert]);
    const r = opensslDecrypt(env, rsa);
    expect(r.err).toBe("");
    expect(r.out.equals(content)).toBe(true);
  });

  it("for each of several readers of one envelope, EC and RSA mixed", async () => {
    const env = await sealEnvelope(content, [ec.cert, rsa.cert, ec2.cert]);
    for (const r of [ec, rsa, ec2]) expect(opensslDecrypt(env, r).out.equals(content)).toBe(true);
    expect(envelopeRecipients(env).map((x) => x.kind).sort()).toEqual(["kari", "kari", "ktri"]);
  });

  it("for many readers, whose key agreements are shared with the helper thread (src/pki/key-agreement-pool.ts)", async () => {
    const more = [ec, ec2, ...Array.from({ length: 5 }, (_, i) => makeReader(`ec-many-${i}`, "ec"))];
    for (let waited = 0; !keyAgreementHelperOnline() && waited < 30_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(keyAgreementHelperOnline()).toBe(true);
    const env = await sealEnvelope(content, [more[0].cert, rsa.cert, ...more.slice(1).map((r) => r.cert)]);
    expect(envelopeRecipients(env).map((x) => x.kind).sort()).toEqual([...more.map(() => "kari"), "ktri"]);
    for (const r of [...more, rsa]) expect(opensslDecrypt(env, r).out.equals(content)).toBe(true);
    for (const r of more) expect(Buffer.from(await openEnvelope(env, await softwareKeyAgent(r.cert, r.pkcs8))).equals(content)).toBe(true);
  });

  it("with readers named by subjectKeyIdentifier (rKeyId / [0] SKI)", async () => {
    const env = await sealEnvelope(content, [ec.cert, rsa.cert], { recipientIdentifier: "subjectKeyIdentifier" });
    for (const r of [ec, rsa]) expect(opensslDecrypt(env, r).out.equals(content)).toBe(true);
    expect(envelopeRecipients(env).every((x) => x.rid.type === "subjectKeyIdentifier")).toBe(true);
    expect(Buffer.from(await openEnvelope(env, await softwareKeyAgent(ec.cert, ec.pkcs8))).equals(content)).toBe(true);
  });
});

function writeTemp(b: Uint8Array): string {
  const file = path.join(dir, `t-${Math.random().toString(36).slice(2)}.der`);
  fs.writeFileSync(file, b);
  return file;
}

describe("we open what openssl cms -encrypt -aes-256-gcm seals", () => {
  it("EC reader, OpenSSL's default KDF (dhSinglePass-stdDH-sha1kdf-scheme)", async () => {
    const env = opensslEncrypt(content, ec, []);
    expect(Buffer.from(await openEnvelope(env, await softwareKeyAgent(ec.cert, ec.pkcs8))).equals(content)).toBe(true);
  });

  it("EC reader with ecdh_kdf_md:sha256 (dhSinglePass-stdDH-sha256kdf-scheme)", async () => {
    const env = opensslEncrypt(content, ec, ["ecdh_kdf_md:sha256"]);
    expect(envelopeRecipients(env)[0].keyEncryptionAlgorithm).toBe("1.3.132.1.11.1");
    expect(Buffer.from(await openEnvelope(env, await softwareKeyAgent(ec.cert, ec.pkcs8))).equals(content)).toBe(true);
  });

  it("RSA reader with rsa_padding_mode:oaep (OAEP-SHA-1 default) and with rsa_oaep_md:sha256", async () => {
    const agent = await softwareKeyAgent(rsa.cert, rsa.pkcs8);
    for (const opts of [["rsa_padding_mode:oaep"], ["rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha256"]]) {
      const env = opensslEncrypt(content, rsa, opts);
      expect(Buffer.from(await openEnvelope(env, agent)).equals(content)).toBe(true);
    }
  });

  it("refuses RSA PKCS#1 v1.5 key transport (OpenSSL's default for RSA)", async () => {
    const env = opensslEncrypt(content, rsa, []);
    await expect(openEnvelope(env, await softwareKeyAgent(rsa.cert, rsa.pkcs8))).rejects.toMatchObject({ code: "UNSUPPORTED_ALGORITHM" });
  });
});

describe("tampering and addressing", () => {
  it("a flipped ciphertext, mac or wrapped-key byte fails authentication, here and in OpenSSL", async () => {
    const env = Buffer.from(await sealEnvelope(content, [ec.cert]));
    const agent = await softwareKeyAgent(ec.cert, ec.pkcs8);
    const idx = env.length - 5000; // inside the encryptedContent (the mac is the last 18 bytes)
    for (const at of [idx, env.length - 3]) {
      const bad = Buffer.from(env);
      bad[at] ^= 0x01;
      await expect(openEnvelope(bad, agent)).rejects.toMatchObject({ code: "AUTHENTICATION_FAILED" });
      expect(opensslDecrypt(bad, ec).ok).toBe(false);
    }
  });

  it("a reader not addressed gets NO_RECIPIENT_INFO; a certificate without keyAgreement is refused at seal", async () => {
    const env = await sealEnvelope(content, [ec.cert]);
    await expect(openEnvelope(env, await softwareKeyAgent(ec2.cert, ec2.pkcs8))).rejects.toMatchObject({ code: "NO_RECIPIENT_INFO" });
    const signer = path.join(dir, "signer.pem");
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, "signer.key"), "-out", signer, "-subj", "/CN=signer", "-addext", "keyUsage=critical,digitalSignature");
    await expect(sealEnvelope(content, [openssl("x509", "-in", signer, "-outform", "DER")])).rejects.toBeInstanceOf(EnvelopeError);
  });
});

describe("forwarding (issue 15 §6)", () => {
  it("adds a RecipientInfo for a new reader; the encrypted content and mac stay byte-identical", async () => {
    const env = await sealEnvelope(content, [ec.cert]);
    const cek = await unwrapContentKey(env, await softwareKeyAgent(ec.cert, ec.pkcs8));
    const fwd = await addRecipient(env, cek, rsa.cert);
    const before = envelopeSummary(env);
    const after = envelopeSummary(fwd);
    expect(after.contentDigest).toBe(before.contentDigest);
    // The ciphertext bytes themselves: the longest common run covers the whole encryptedContent.
    const ct = Buffer.from(env).subarray(Buffer.from(env).length - 16 - 2 - content.length, Buffer.from(env).length - 18);
    expect(Buffer.from(fwd).includes(ct)).toBe(true);
    expect(forwardedRecipients(env, fwd).map((r) => r.key)).toEqual([recipientKeyOfCertificate(rsa.cert)]);
    expect(isAddressedTo(fwd, rsa.cert) && isAddressedTo(fwd, ec.cert)).toBe(true);
    expect(opensslDecrypt(fwd, rsa).out.equals(content)).toBe(true);
    expect(opensslDecrypt(fwd, ec).out.equals(content)).toBe(true);
    await expect(addRecipient(fwd, cek, rsa.cert)).rejects.toMatchObject({ code: "RECIPIENT_EXISTS" });
    await expect(addRecipient(env, Buffer.alloc(32), ec2.cert)).rejects.toMatchObject({ code: "AUTHENTICATION_FAILED" });
  });

  it("forwardedRecipients refuses an envelope whose content was replaced", async () => {
    const a = await sealEnvelope(content, [ec.cert]);
    const b = await sealEnvelope(content, [ec.cert, rsa.cert]);
    expect(() => forwardedRecipients(a, b)).toThrow(/content/);
  });

  it("forwards an envelope OpenSSL sealed, and OpenSSL opens the forward", async () => {
    const env = opensslEncrypt(content, ec, ["ecdh_kdf_md:sha256"]);
    const cek = await unwrapContentKey(env, await softwareKeyAgent(ec.cert, ec.pkcs8));
    const fwd = await addRecipient(env, cek, ec2.cert);
    expect(envelopeSummary(fwd).contentDigest).toBe(envelopeSummary(env).contentDigest);
    expect(opensslDecrypt(fwd, ec2).out.equals(content)).toBe(true);
  });
});
