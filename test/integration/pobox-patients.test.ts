/**
 * Issue 15 §8 against a real `hpki serve --role sso,pobox` (our Postgres): patients register an
 * encryption key after proving themselves with a JPKI 利用者証明用電子証明書 of a simulated JPKI CA
 * (OpenSSL, test/helpers/jpki-sim.ts; OpenSSL also verifies that chain and CRL independently).
 * Shows: registration through `hpki pobox patient register` (a CLI process); a revoked, an untrusted
 * and a wrongly signed JPKI proof refused (audited); a replayed challenge refused; only signed-in
 * professionals look a patient up (audited); a hospital doctor sends a diagnosis that only the
 * patient's key opens (`hpki pobox patient receive`, and `openssl cms -decrypt`) — another patient's
 * key cannot; a renewed JPKI certificate keeps the box number; the box's database holds no
 * plaintext, no JPKI serial number or subject.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boxCall, loginWithCard, type PoboxSession } from "../../src/cli/pobox-client.ts";
import { sendDocument } from "../../src/cli/pobox-ops.ts";
import { patientKeyFiles, registerPatientAt, signInPatientAt, softwareJpkiSigner } from "../../src/cli/pobox-patient.ts";
import { openEnvelope, softwareKeyAgent } from "../../src/pki/envelope.ts";
import { AUTH_PERSON_POLICY } from "../../src/pki/path-validation.ts";
import { fromPemOrDer } from "../../src/pki/pem.ts";
import { openTestIa, runDemoCeremony, type TestIa } from "../helpers/ia.ts";
import { simulatedJpkiCa, type JpkiSim, type JpkiUser } from "../helpers/jpki-sim.ts";
import { tempDir as makeTempDir } from "../helpers/openssl.ts";
import { personWithCard, servePobox, type TestPerson } from "../helpers/pobox.ts";
import { childEnv } from "../helpers/sso-serve.ts";
import { buildTestChain } from "../unit/helpers/pki-fixtures.ts";

const MARKER = "診断書 diagnosis-marker-5d21 鈴木様";
const repo = path.resolve(import.meta.dirname, "../..");
let ia: TestIa;
let home: string;
let jpki: JpkiSim;
let other: JpkiSim;
const u: Record<string, JpkiUser> = {};
let child: { url: string; stop(): Promise<number | null> } | undefined;
let box: string;
let doctor: TestPerson;
let doctorSession: PoboxSession;
const chain = buildTestChain(new Date(), "p256");
const signer = (x: JpkiUser) => softwareJpkiSigner(createPrivateKey(fs.readFileSync(x.keyFile)));
const trust = { repoUrl: "http://127.0.0.1:9/unused", anchors: [], policy: AUTH_PERSON_POLICY };

const temps: string[] = [];
/** A temp directory removed after the tests. */
function tempDir(prefix: string): string {
  const d = makeTempDir(prefix);
  temps.push(d);
  return d;
}

/**
 * `hpki …` as a patient's own process: its own HPKI_HOME, no database. Asynchronous, so this
 * process's keep-alive connections to the box are not left to go stale while it runs.
 */
function patientCli(patientHome: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string; json(): any }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(repo, "bin/hpki.js"), ...args], { cwd: repo, env: childEnv(patientHome, undefined) });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, out, err, json: () => JSON.parse(out.trim().split("\n").at(-1)!) }));
  });
}

beforeAll(async () => {
  ia = await openTestIa("pobox-pt");
  await runDemoCeremony(ia.ctx, { actor: "test", role: "ia" });
  doctor = await personWithCard(ia, chain, "PTD0000001", "Medical Doctor", { latin: "Jiro Tanaka", kanji: "田中　次郎" });
  home = tempDir("pobox-pt-child-");
  jpki = simulatedJpkiCa(path.join(home, "..", `${path.basename(home)}-jpki`));
  other = simulatedJpkiCa(path.join(home, "..", `${path.basename(home)}-fake`));
  u.alice = jpki.issue("alice");
  u.bob = jpki.issue("bob");
  u.revoked = jpki.issue("revoked");
  u.renewed = jpki.issue("alice-renewed");
  u.fake = other.issue("fake");
  jpki.revoke(u.revoked);
  jpki.gencrl();
  child = await servePobox(ia, { ...childEnv(home, ia.databaseUrl), HPKI_JPKI_ANCHORS: jpki.rootFile, HPKI_JPKI_CRLS: jpki.crlFile }, "sso,pobox");
  box = `${child.url}/pobox`;
  doctorSession = await loginWithCard(box, ia.ctx.cards, doctor.card);
}, 300_000);

afterAll(async () => {
  await child?.stop();
  await ia?.cleanup();
  for (const d of [home, jpki?.dir, other?.dir, ...temps]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe("patients at the PO box (JPKI 利用者証明用電子証明書)", () => {
  let aliceHome: string;
  let alice: PoboxSession;
  let boxNumber: string;
  let bob: PoboxSession & { certificate: Buffer };
  let diagnosisId: string;

  it("OpenSSL verifies the simulated JPKI chain and CRL on its own; the auth certificate names no one", () => {
    const verify = (f: string) => spawnSync("openssl", ["verify", "-x509_strict", "-crl_check", "-policy", "1.2.392.200149.8.5.1.3.30", "-explicit_policy", "-CAfile", jpki.rootFile, "-CRLfile", jpki.crlFile, f], { encoding: "utf8" });
    expect(verify(u.alice.certFile).status).toBe(0);
    const r = verify(u.revoked.certFile);
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/revoked/);
    const text = execFileSync("openssl", ["x509", "-in", u.alice.certFile, "-noout", "-subject", "-ext", "keyUsage"], { encoding: "utf8" });
    expect(text).toMatch(new RegExp(`subject=C ?= ?JP, CN ?= ?${u.alice.cn}`));
    expect(text).toMatch(/critical\s+Digital Signature/);
  });

  it("a patient registers with `hpki pobox patient register`: a box number (pseudonym), a key of their own, audited", async () => {
    aliceHome = tempDir("pobox-pt-alice-");
    const r = await patientCli(aliceHome, "pobox", "patient", "register", "--box", box, "--jpki-cert", u.alice.certFile, "--jpki-key", u.alice.keyFile, "--json");
    expect(r.code, r.err).toBe(0);
    boxNumber = r.json().account.subscriberId;
    expect(boxNumber).toMatch(/^PT[0-9A-F]{24}$/);
    expect(r.json().account.kind).toBe("patient");
    const files = patientKeyFiles(path.join(aliceHome, "pobox-patient"));
    expect(fs.statSync(files.key).mode & 0o077).toBe(0);
    alice = JSON.parse(fs.readFileSync(path.join(aliceHome, "pobox-session.json"), "utf8"));
    expect(alice.account?.subscriberId).toBe(boxNumber);
    const audit = await ia.ctx.db("audit_log").where({ action: "pobox.patient.registered", object_id: `patient:${boxNumber}` }).first();
    expect(audit.details).toMatchObject({ via: "jpki", newCertificate: true, keyReplaced: false });
  });

  it("refuses a revoked JPKI certificate, one from another CA, a signature by another key, a replayed challenge (audited)", async () => {
    const keyDir = tempDir("pobox-pt-x-");
    await expect(registerPatientAt({ box, jpkiCertificate: u.revoked.der, signJpki: signer(u.revoked), keyDir })).rejects.toMatchObject({ status: 403, code: "JPKI_REFUSED" });
    await expect(registerPatientAt({ box, jpkiCertificate: u.fake.der, signJpki: signer(u.fake), keyDir })).rejects.toMatchObject({ status: 403, code: "JPKI_REFUSED" });
    await expect(registerPatientAt({ box, jpkiCertificate: u.bob.der, signJpki: signer(u.alice), keyDir })).rejects.toMatchObject({ status: 403, code: "JPKI_REFUSED" });
    const refused = await ia.ctx.db("audit_log").where({ action: "pobox.patient.registration-refused" }).orderBy("seq").select("details");
    expect(refused.map((a) => a.details.code)).toEqual(["revoked", expect.stringMatching(/untrusted-issuer|bad-signature/), "bad-challenge-signature"]);
    // A challenge is good once.
    const { challenge } = await (await fetch(`${box}/patient/challenge`, { method: "POST" })).json() as { challenge: string };
    const { patientChallengeMessage } = await import("../../src/pki/jpki.ts");
    const sig = await signer(u.alice)(patientChallengeMessage({ box, challenge }));
    const body = JSON.stringify({ challenge, jpkiCertificate: u.alice.der.toString("base64"), signature: Buffer.from(sig).toString("base64") });
    const post = () => fetch(`${box}/patient/sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect((await post()).status).toBe(200);
    const again = await post();
    expect(again.status).toBe(401);
    expect((await again.json()).error).toBe("CHALLENGE_INVALID");
  });

  it("only a signed-in professional looks a patient up, by box number; audited", async () => {
    const k = await boxCall<{ certificate: string }>(doctorSession, "GET", `/patients/${boxNumber}/key`);
    expect(Buffer.from(k.certificate, "base64").equals(fromPemOrDer(fs.readFileSync(patientKeyFiles(path.join(aliceHome, "pobox-patient")).cert)))).toBe(true);
    await expect(boxCall(alice, "GET", `/patients/${boxNumber}/key`)).rejects.toMatchObject({ status: 403 });
    await expect(boxCall(doctorSession, "GET", `/patients/PT000000000000000000000000/key`)).rejects.toMatchObject({ status: 404 });
    const audit = await ia.ctx.db("audit_log").where({ action: "pobox.patient.key-looked-up", object_id: `patient:${boxNumber}` }).first();
    expect(audit.actor).toBe("person:PTD0000001");
  });

  it("a hospital doctor sends a diagnosis; only the patient's key opens it (CLI and openssl cms), not another patient's", async () => {
    const bobDir = tempDir("pobox-pt-bob-");
    bob = await registerPatientAt({ box, jpkiCertificate: u.bob.der, signJpki: signer(u.bob), keyDir: bobDir });
    const sent = await sendDocument(doctorSession, trust, { content: Buffer.from(MARKER), to: [{ kind: "patient", subscriberId: boxNumber }], documentClass: "diagnosis", forwardAllowed: false });
    diagnosisId = sent.id;
    // An unregistered box number is refused.
    await expect(boxCall(doctorSession, "POST", "/messages", { recipients: [{ kind: "patient", subscriberId: "PT0000000000000000000000AA" }], documentClass: "diagnosis", envelope: "MAA=" }))
      .rejects.toMatchObject({ status: 422 });

    const out = path.join(aliceHome, "diagnosis.txt");
    const r = await patientCli(aliceHome, "pobox", "patient", "receive", diagnosisId, "--out", out, "--json");
    expect(r.code, r.err).toBe(0);
    expect(fs.readFileSync(out, "utf8")).toBe(MARKER);

    const envelope = new Uint8Array(await boxCall<Buffer>(alice, "GET", `/messages/${diagnosisId}/envelope`));
    const envFile = path.join(aliceHome, "diagnosis.der");
    fs.writeFileSync(envFile, envelope);
    const files = patientKeyFiles(path.join(aliceHome, "pobox-patient"));
    const o = spawnSync("openssl", ["cms", "-decrypt", "-inform", "DER", "-in", envFile, "-recip", files.cert, "-inkey", files.key], { encoding: "utf8" });
    expect(o.status, o.stderr).toBe(0);
    expect(o.stdout).toBe(MARKER);

    // Bob's key (another patient) cannot open it; Bob cannot even fetch it.
    const bobAgent = await softwareKeyAgent(bob.certificate, fromPemOrDer(fs.readFileSync(patientKeyFiles(bobDir).key)));
    await expect(openEnvelope(envelope, bobAgent)).rejects.toThrow();
    await expect(boxCall(bob, "GET", `/messages/${diagnosisId}/envelope`)).rejects.toMatchObject({ status: 404 });
    const receipt = await boxCall<{ messages: { id: string; deliveries: { state: string }[] }[] }>(doctorSession, "GET", "/messages?box=sent");
    expect(receipt.messages.find((m) => m.id === diagnosisId)?.deliveries[0].state).toBe("read");
  });

  it("a renewed JPKI certificate, registered while signed in with the old one, keeps the box number", async () => {
    // With an unknown (expired) token, linking is refused rather than making a new box number.
    await expect(registerPatientAt({ box, jpkiCertificate: u.renewed.der, signJpki: signer(u.renewed), keyDir: tempDir("pobox-pt-alice2-"), session: { box, token: "expired" } }))
      .rejects.toMatchObject({ status: 401 });
    const signedIn = await signInPatientAt(box, u.alice.der, signer(u.alice));
    expect(signedIn.account?.subscriberId).toBe(boxNumber);
    const renewed = await registerPatientAt({ box, jpkiCertificate: u.renewed.der, signJpki: signer(u.renewed), keyDir: tempDir("pobox-pt-alice2-"), session: signedIn });
    expect(renewed.account?.subscriberId).toBe(boxNumber);
    const again = await signInPatientAt(box, u.renewed.der, signer(u.renewed));
    expect(again.account?.subscriberId).toBe(boxNumber);
    const ids = await ia.ctx.db("pobox_patient_identities as i").join("pobox_accounts as a", "a.id", "i.account_id").where("a.subscriber_id", boxNumber).select("i.pseudonym");
    expect(ids).toHaveLength(2);
    const registered = await ia.ctx.db("audit_log").where({ action: "pobox.patient.registered", object_id: `patient:${boxNumber}` }).orderBy("seq").select("details");
    expect(registered.map((a) => [a.details.newCertificate, a.details.linkedCertificate, a.details.keyReplaced])).toEqual([[true, false, false], [true, true, true]]);
  });

  it("the box's database holds no plaintext, no JPKI serial number and no JPKI subject", () => {
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", ia.databaseUrl!], { maxBuffer: 512 * 1024 * 1024 }).toString("utf8");
    expect(dump).toContain("pobox_patient_identities");
    for (const m of [MARKER, ...Object.values(u).flatMap((x) => [x.cn, x.serialHex, x.serialHex.toLowerCase()])]) {
      expect(dump.includes(m), m).toBe(false);
      expect(dump.toLowerCase().includes(Buffer.from(m).toString("hex")), m).toBe(false);
    }
    for (const x of Object.values(u)) expect(dump.includes(x.der.toString("hex")), "JPKI certificate stored").toBe(false);
  });
});

