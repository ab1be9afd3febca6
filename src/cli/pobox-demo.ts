/**
 * `hpki pobox demo` (issue 15 §9): the medical PO box end to end on the demo's state ($HPKI_HOME:
 * the managed PostgreSQL and SoftHSM of `npm run demo`), in its own command so it cannot break
 * the main demo. Each run uses fresh names (a run id) and:
 *   1. runs the key ceremony if needed (idempotent) and issues `enc` certificates from the demo
 *      encryption CA for four professionals (software P-256 keys here — on real cards the key is
 *      made on the card, issue 15 §3, tested in card-decrypt.test.ts);
 *   2. serves the PO box role on a free local port; professionals are signed in by recording the
 *      sign-in the SSO center would (completeSignIn — the card sign-in itself is tested in
 *      pobox-box.test.ts);
 *   3. a referral letter with an image: hospital doctor → specialist, forwarded to a second
 *      specialist (content key re-wrapped, encrypted content byte-identical);
 *   4. a prescription to a pharmacy (組織暗号), re-encrypted by the box to the pharmacist on duty;
 *   5. a patient registers with a JPKI 利用者証明用電子証明書 of a simulated JPKI CA (a revoked one is
 *      refused first) and receives a diagnosis only their key opens;
 *   6. checks that no plaintext marker is in the box's rows and the audit chain is intact.
 * The last line is one JSON object (`--json`: only that line).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { verifyAuditChain } from "../audit/verify.ts";
import { certificateUrls, loadConfig } from "../config.ts";
import { readCeremonyFile } from "../ia/ceremony-file.ts";
import { runCeremony } from "../ia/ceremony.ts";
import { openIaContext, type IaContext } from "../ia/context.ts";
import { readAuthEnvelopedData } from "../pki/envelope-asn1.ts";
import { addRecipient, sealEnvelope, softwareKeyAgent, unwrapContentKey, type RecipientKeyAgent } from "../pki/envelope.ts";
import { sealForOrganisations } from "../pki/envelope-organisation.ts";
import { JPKI_AUTH_POLICY } from "../pki/jpki.ts";
import { createKfrag, generatePreKeyPair } from "../pki/pre.ts";
import { parseSubscriberSubject } from "../pki/subject.ts";
import { addFacilityMember } from "../pobox/organisation.ts";
import { completeSignIn } from "../pobox/sso-rp.ts";
import { openDatabase } from "../store/db.ts";
import { freePort } from "../web/free-port.ts";
import { simulatedJpkiCa } from "./demo-jpki.ts";
import { boxCall, PoboxClientError, type PoboxSession } from "./pobox-client.ts";
import { receiveDocument, registerOwnPreKey, sendDocument } from "./pobox-ops.ts";
import { registerPatientAt, softwareJpkiSigner } from "./pobox-patient.ts";
import { startServer } from "./role-factories.ts";
import { printJson, runCommand, table } from "./run.ts";

/** A 1×1 PNG: the "image" attached to the referral letter. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");

interface Professional {
  subscriberId: string;
  hcRole: string;
  name: { latin: string; kanji: string };
  organization: { latin: string; kanji: string };
  encCert?: Buffer;
  agent?: RecipientKeyAgent;
  session?: PoboxSession;
}

/** Issues an `enc` certificate from the demo encryption CA for a software P-256 key. */
async function issueEnc(ctx: IaContext, p: Professional, run: string): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const profile = ctx.policies.profiles.get("enc")!;
  const subject = parseSubscriberSubject({ hcRole: p.hcRole, subscriberId: p.subscriberId, name: p.name, organization: p.organization }, profile, ctx.policies.hcRoles);
  const issued = await ctx.issuance.issue({ profile: "enc", subject, subjectPublicKeyInfo: publicKey.export({ format: "der", type: "spki" }), requestKey: `pobox-demo:${run}:${p.subscriberId}` }, { actor: "pobox-demo", role: "ia" });
  p.encCert = issued.der;
  p.agent = await softwareKeyAgent(issued.der, privateKey.export({ format: "der", type: "pkcs8" }));
}

const mime = (parts: { type: string; body: Buffer }[]) => Buffer.concat(parts.flatMap((x, i) => [
  Buffer.from(`--demo\r\nContent-Type: ${x.type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${x.body.toString("base64")}\r\n${i === parts.length - 1 ? "--demo--\r\n" : ""}`),
]));

export function registerPoboxDemoCommand(pobox: Command): void {
  pobox.command("demo")
    .description("the medical PO box end to end on the demo's state: referral with an image forwarded, prescription re-encrypted to the pharmacist on duty, diagnosis to a patient (JPKI)")
    .option("--json", "print only the JSON summary")
    .action(async (o: { json?: boolean }) => runCommand(o, () => runPoboxDemo(o.json ? () => undefined : (s) => process.stdout.write(`${s}\n`))));
}

async function runPoboxDemo(log: (s: string) => void): Promise<{ text: string; json: unknown }> {
  const cfg = loadConfig();
  const run = randomBytes(2).toString("hex").toUpperCase();
  const dir = path.join(cfg.home, "pobox-demo", run);
  const db = await openDatabase(cfg);
  const ctx = await openIaContext(cfg, { db });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    log(`== 1. Encryption certificates (demo-enc-ca), run ${run}`);
    await runCeremony({ db, keys: ctx.keys, profiles: ctx.policies.profiles, repoDir: cfg.repoDir, urls: certificateUrls(cfg) }, readCeremonyFile(path.join(cfg.policiesDir, "ceremony.demo.yaml")), { actor: "pobox-demo", role: "ia" });
    const hospital = { latin: "Tokyo Chuo Hospital", kanji: "東京中央病院" };
    const p: Record<string, Professional> = {
      doctor: { subscriberId: `PBX${run}01`, hcRole: "Medical Doctor", name: { latin: "Taro Yamada", kanji: "山田　太郎" }, organization: hospital },
      specialist: { subscriberId: `PBX${run}02`, hcRole: "Medical Doctor", name: { latin: "Keiko Mori", kanji: "森　恵子" }, organization: { latin: "Osaka Heart Clinic", kanji: "大阪心臓クリニック" } },
      second: { subscriberId: `PBX${run}03`, hcRole: "Medical Doctor", name: { latin: "Goro Ito", kanji: "伊藤　五郎" }, organization: { latin: "Kyoto Imaging Center", kanji: "京都画像診断センター" } },
      pharmacist: { subscriberId: `PBX${run}04`, hcRole: "Pharmacist", name: { latin: "Hanako Sato", kanji: "佐藤　花子" }, organization: { latin: "Sakura Pharmacy", kanji: "さくら薬局" } },
      admin: { subscriberId: `PBX${run}05`, hcRole: "Pharmacist", name: { latin: "Ichiro Suzuki", kanji: "鈴木　一郎" }, organization: { latin: "Sakura Pharmacy", kanji: "さくら薬局" } },
    };
    for (const k of ["doctor", "specialist", "second", "pharmacist"]) await issueEnc(ctx, p[k], run);
    log(table([["subscriber", "hcRole", "name", "enc certificate"], ...Object.values(p).map((x) => [x.subscriberId, x.hcRole, x.name.kanji, x.encCert ? `${x.encCert.length} bytes` : "(none: administrator)"])]));

    log("\n== 2. The PO box, and a simulated JPKI CA for the patient");
    const jpki = simulatedJpkiCa(path.join(dir, "jpki"));
    const patientJpki = jpki.issue("patient");
    const revokedJpki = jpki.issue("revoked");
    jpki.revoke(revokedJpki);
    jpki.gencrl();
    const port = await freePort();
    server = await startServer({ cfg: { ...cfg, pobox: { ...cfg.pobox, jpkiAnchorFiles: [jpki.rootFile], jpkiCrls: [jpki.crlFile] } }, db, roles: ["pobox"], port, host: "127.0.0.1" });
    const box = `${server.url}/pobox`;
    for (const x of Object.values(p)) {
      const { account, token } = await completeSignIn(db, { subscriberId: x.subscriberId, name: x.name.kanji, hcRole: x.hcRole, organization: x.organization.kanji }, true);
      x.session = { box, token: token!, account };
    }
    log(`box ${box}; JPKI anchor ${jpki.rootFile}`);

    log("\n== 3. Referral letter with an image: doctor → specialist, forwarded to a second specialist");
    const referral = mime([{ type: "text/plain; charset=utf-8", body: Buffer.from(`紹介状 referral-${run}: 胸部CTにて異常陰影。ご高診をお願いします。`) }, { type: "image/png", body: PNG }]);
    const envelope = await sealEnvelope(referral, [p.specialist.encCert!]);
    const sent = await boxCall<{ id: string }>(p.doctor.session!, "POST", "/messages", { recipients: [{ subscriberId: p.specialist.subscriberId }], documentClass: "referral", forwardAllowed: true, envelope: Buffer.from(envelope).toString("base64") });
    const opened = await receiveDocument(p.specialist.session!, sent.id, p.specialist.agent!);
    const original = new Uint8Array(await boxCall<Buffer>(p.specialist.session!, "GET", `/messages/${sent.id}/envelope`));
    const cek = await unwrapContentKey(original, p.specialist.agent!);
    const forwarded = await addRecipient(original, cek, p.second.encCert!);
    cek.fill(0);
    const fwd = await boxCall<{ id: string }>(p.specialist.session!, "POST", `/messages/${sent.id}/forward`, { recipients: [{ subscriberId: p.second.subscriberId }], envelope: Buffer.from(forwarded).toString("base64") });
    const openedBySecond = await receiveDocument(p.second.session!, fwd.id, p.second.agent!);
    const sameContent = Buffer.from(readAuthEnvelopedData(forwarded).encryptedContentInfoDer).equals(Buffer.from(readAuthEnvelopedData(original).encryptedContentInfoDer));
    log(`sent ${sent.id}, opened by ${p.specialist.name.kanji} (${opened.content.length} bytes, image included: ${Buffer.from(opened.content).includes(PNG.toString("base64"))})`);
    log(`forwarded ${fwd.id} to ${p.second.name.kanji}: opened ${Buffer.from(openedBySecond.content).equals(Buffer.from(referral))}, encrypted content unchanged ${sameContent}`);

    log("\n== 4. Prescription to the pharmacy (組織暗号), re-encrypted to the pharmacist on duty");
    const facility = `PHX${run}`;
    await addFacilityMember(db, facility, p.admin.subscriberId, "admin", "pobox-demo");
    await addFacilityMember(db, facility, p.pharmacist.subscriberId, "staff", "pobox-demo");
    const orgKeys = await generatePreKeyPair();
    const holder = await generatePreKeyPair();
    await boxCall(p.admin.session!, "POST", `/facilities/${facility}/key`, { prePublicKey: Buffer.from(orgKeys.publicKey).toString("base64"), verifyingKey: Buffer.from(holder.publicKey).toString("base64") });
    await registerOwnPreKey(p.pharmacist.session!, p.pharmacist.encCert!);
    const designee = await boxCall<{ publicKey: string }>(p.admin.session!, "GET", `/people/${p.pharmacist.subscriberId}/pre-key`);
    const kfrag = await createKfrag(orgKeys.secretKey, Buffer.from(designee.publicKey, "base64"), holder.secretKey);
    await boxCall(p.admin.session!, "POST", "/designations", { facility, documentClass: "prescription", designee: p.pharmacist.subscriberId, kfrag: Buffer.from(kfrag).toString("base64") });
    orgKeys.secretKey.fill(0);
    holder.secretKey.fill(0);
    const rxText = `処方箋 prescription-${run}: アムロジピン錠5mg 1日1回 朝食後 28日分`;
    const rxEnvelope = await sealForOrganisations(Buffer.from(rxText), [], [orgKeys.publicKey]);
    const rx = await boxCall<{ id: string }>(p.doctor.session!, "POST", "/messages", { recipients: [{ kind: "facility", subscriberId: facility }], documentClass: "prescription", envelope: Buffer.from(rxEnvelope).toString("base64") });
    const rxOpened = await receiveDocument(p.pharmacist.session!, rx.id, p.pharmacist.agent!);
    log(`sent ${rx.id} to facility ${facility}; ${p.pharmacist.name.kanji} opened it as ${rxOpened.as}: ${Buffer.from(rxOpened.content).toString() === rxText}`);

    log("\n== 5. Diagnosis to a patient registered with the My Number card (simulated JPKI)");
    const signer = (f: string) => softwareJpkiSigner(createPrivateKey(fs.readFileSync(f)));
    let revokedRefused = false;
    try {
      await registerPatientAt({ box, jpkiCertificate: revokedJpki.der, signJpki: signer(revokedJpki.keyFile), keyDir: path.join(dir, "revoked-patient") });
    } catch (e) {
      revokedRefused = e instanceof PoboxClientError && e.code === "JPKI_REFUSED";
      log(`revoked JPKI certificate refused: ${(e as Error).message}`);
    }
    const patient = await registerPatientAt({ box, jpkiCertificate: patientJpki.der, signJpki: signer(patientJpki.keyFile), keyDir: path.join(dir, "patient") });
    const boxNumber = patient.account!.subscriberId;
    const diagnosisText = `診断書 diagnosis-${run}: 検査の結果、治療を要する所見はありません。`;
    const dx = await sendDocument(p.doctor.session!, { repoUrl: server.url, anchors: [], policy: JPKI_AUTH_POLICY }, { content: Buffer.from(diagnosisText), to: [{ kind: "patient", subscriberId: boxNumber }], documentClass: "diagnosis", forwardAllowed: false });
    const patientAgent = await softwareKeyAgent(patient.certificate, pkcs8Of(path.join(dir, "patient", "patient-enc-key.pem")));
    const dxOpened = await receiveDocument(patient, dx.id, patientAgent);
    log(`patient box number ${boxNumber} (pseudonym; no name, no 個人番号); diagnosis ${dx.id} opened by the patient: ${Buffer.from(dxOpened.content).toString() === diagnosisText}`);

    log("\n== 6. What the box holds");
    const markers = [`referral-${run}`, `prescription-${run}`, `diagnosis-${run}`].map((m) => Buffer.from(m));
    const rows = await db("pobox_messages").whereIn("id", [sent.id, fwd.id, rx.id, dx.id]).select("envelope");
    const plaintextAtBox = rows.some((r) => markers.some((m) => Buffer.from(r.envelope).includes(m)));
    const audit = await verifyAuditChain(db);
    log(`plaintext in the box's envelopes: ${plaintextAtBox}; audit log ${audit.records} records, ${audit.ok ? "chain intact" : "BROKEN"}`);
    const ok = opened.content.length > 0 && sameContent && rxOpened.as === "designee" && revokedRefused && !plaintextAtBox && audit.ok;
    if (!ok) process.exitCode = 1;
    const json = { run, ok, referral: { id: sent.id, forwardedId: fwd.id, contentUnchanged: sameContent }, prescription: { id: rx.id, facility, openedAs: rxOpened.as }, diagnosis: { id: dx.id, patient: boxNumber }, revokedJpkiRefused: revokedRefused, plaintextAtBox, auditChainIntact: audit.ok };
    return { text: `${ok ? "PO box demo: all steps done / 私書箱デモ完了" : "PO box demo: a step failed / 失敗した手順があります"}\n${JSON.stringify(json)}`, json };
  } finally {
    await server?.close();
    await ctx.close();
    await db.destroy();
  }
}

function pkcs8Of(file: string): Buffer {
  return createPrivateKey(fs.readFileSync(file)).export({ format: "der", type: "pkcs8" });
}
