/**
 * `hpki pobox patient register|sign-in|receive` (issue 15 §8): the patient's side of the PO box.
 * The JPKI authentication key signs the box's challenge: here from a PEM key file (--jpki-key: the
 * simulated JPKI CA of tests and the demo); signing with a real My Number card through J-LIS's
 * PKCS #11 module is not built.
 */
import { createPrivateKey } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { softwareKeyAgent } from "../pki/envelope.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { readSession, sessionFile, writeSession } from "./pobox-client.ts";
import { receiveDocument } from "./pobox-ops.ts";
import { patientKeyFiles, registerPatientAt, signInPatientAt, softwareJpkiSigner } from "./pobox-patient.ts";
import { runCommand } from "./run.ts";

interface JpkiOptions {
  box: string;
  jpkiCert: string;
  jpkiKey: string;
  keyDir?: string;
  session?: string;
  json?: boolean;
}

const keyDirOf = (o: { keyDir?: string }) => o.keyDir ?? path.join(loadConfig().home, "pobox-patient");
const jpkiOf = (o: JpkiOptions) => ({
  cert: fromPemOrDer(fs.readFileSync(o.jpkiCert)),
  signer: softwareJpkiSigner(createPrivateKey(fs.readFileSync(o.jpkiKey))),
});

export function registerPatientCommands(pobox: Command): void {
  const patient = pobox.command("patient").description("patients: register with the My Number card's authentication certificate (JPKI) and receive documents");
  const withJpki = (c: Command) => c
    .requiredOption("--box <url>", "the PO box, e.g. https://pobox.example/pobox")
    .requiredOption("--jpki-cert <file>", "the JPKI 利用者証明用電子証明書 (PEM or DER)")
    .requiredOption("--jpki-key <file>", "its private key (PEM; simulated JPKI only)")
    .option("--session <file>", "session file (default $HPKI_HOME/pobox-session.json)")
    .option("--json", "print one JSON object");

  withJpki(patient.command("register"))
    .description("make an encryption key here and register it at the box after the JPKI proof; prints your box number (私書箱番号)")
    .option("--key-dir <dir>", "where the encryption key is kept (default $HPKI_HOME/pobox-patient)")
    .option("--link", "link a renewed JPKI certificate to the box number of the current session")
    .action(async (o: JpkiOptions & { link?: boolean }) =>
      runCommand(o, async () => {
        const file = sessionFile(loadConfig().home, o.session);
        const j = jpkiOf(o);
        const s = await registerPatientAt({ box: o.box.replace(/\/+$/, ""), jpkiCertificate: j.cert, signJpki: j.signer, keyDir: keyDirOf(o), session: o.link ? readSession(file) : undefined });
        writeSession(file, { box: s.box, token: s.token, account: s.account });
        return { text: `registered; your box number / 私書箱番号: ${s.account?.subscriberId}`, json: { box: s.box, account: s.account, keyDir: keyDirOf(o) } };
      }));

  withJpki(patient.command("sign-in"))
    .description("sign in again with the JPKI proof (a new session token)")
    .action(async (o: JpkiOptions) =>
      runCommand(o, async () => {
        const j = jpkiOf(o);
        const s = await signInPatientAt(o.box.replace(/\/+$/, ""), j.cert, j.signer);
        writeSession(sessionFile(loadConfig().home, o.session), s);
        return { text: `signed in as ${s.account?.subscriberId} / サインインしました`, json: { box: s.box, account: s.account } };
      }));

  patient.command("receive")
    .description("fetch message ID and open it with your encryption key; writes the document to --out")
    .argument("<id>", "message id")
    .requiredOption("--out <file>", "where to write the document")
    .option("--key-dir <dir>", "where the encryption key is kept (default $HPKI_HOME/pobox-patient)")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (id: string, o: { out: string; keyDir?: string; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const f = patientKeyFiles(keyDirOf(o));
        const agent = await softwareKeyAgent(fromPemOrDer(fs.readFileSync(f.cert)), fromPemOrDer(fs.readFileSync(f.key)));
        const r = await receiveDocument(readSession(sessionFile(loadConfig().home, o.session)), id, agent);
        fs.writeFileSync(o.out, r.content, { mode: 0o600 });
        return { text: `opened ${id}: ${r.content.length} bytes → ${o.out} / 復号しました`, json: { id, bytes: r.content.length, out: o.out } };
      }));
}
