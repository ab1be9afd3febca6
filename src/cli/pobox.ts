/**
 * `hpki pobox login|send|list|receive|forward|pre-key|patient|demo` (issue 15 §5–§9): the medical PO box
 * client. Sign-in goes through the SSO center with the card; documents are encrypted and opened
 * here, never at the box. Readers' certificates come from the repository's directory and are
 * validated (chain to --anchor, policy, validity, CRL) before anything is encrypted.
 */
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { CardStation } from "../hsm/cards.ts";
import { cardKeyAgent } from "../hsm/card-decrypt.ts";
import { Pkcs11Module } from "../hsm/module.ts";
import { ensureSoftHsmConfig } from "../hsm/softhsm.ts";
import { softwareKeyAgent, type RecipientKeyAgent } from "../pki/envelope.ts";
import { OID } from "../pki/oids.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { decodeKeyUsage, parseCertificate } from "../pki/x509-parse.ts";
import { loadPolicies } from "../policies.ts";
import { boxCall, loginWithCard, readSession, sessionFile, writeSession } from "./pobox-client.ts";
import { forwardDocument, parseTo, receiveDocument, registerOwnPreKey, sendDocument, type DirectoryTrust } from "./pobox-ops.ts";
import { registerPoboxDemoCommand } from "./pobox-demo.ts";
import { registerPatientCommands } from "./pobox-patient-commands.ts";
import { encryptionPolicy } from "./pobox-recipients.ts";
import { askSecret, runCommand, table } from "./run.ts";

interface KeyOptions {
  card?: string;
  pinFile?: string;
  key?: string;
  cert?: string;
}

/**
 * Runs `body` with the private-key side: the card (--card, PIN asked or --pin-file; the ECDH
 * happens on the card with its `enc` key, issue 15 §3) or a software key (--key PKCS#8 + --cert,
 * e.g. a facility's key kept outside a card).
 */
async function withKeyAgent<T>(o: KeyOptions, body: (agent: RecipientKeyAgent) => Promise<T>): Promise<T> {
  if (o.key && o.cert) return body(await softwareKeyAgent(fromPemOrDer(fs.readFileSync(o.cert)), fromPemOrDer(fs.readFileSync(o.key))));
  if (!o.card) throw new Error("give --card (or --key and --cert) / --card（または --key と --cert）を指定してください");
  const cfg = loadConfig();
  const pin = o.pinFile ? fs.readFileSync(o.pinFile, "utf8").trim() : await askSecret({ en: "PIN", ja: "暗証番号" }, "--pin-file");
  ensureSoftHsmConfig(cfg);
  const mod = Pkcs11Module.open(cfg.pkcs11Module);
  try {
    const card = await new CardStation(mod).openCard(o.card, pin);
    try {
      const enc = (await card.listCertificates()).find((c) => {
        const ku = parseCertificate(c.der).extensions.get(OID.keyUsage);
        return ku !== undefined && decodeKeyUsage(ku.value).has("keyAgreement");
      });
      if (!enc) throw new Error(`card "${o.card}" holds no encryption certificate / 暗号化用証明書がカードにありません`);
      return await body(cardKeyAgent(card, enc.id, enc.der));
    } finally {
      card.close();
    }
  } finally {
    mod.close();
  }
}

function trustOf(o: { repo: string; anchor: string[] }): DirectoryTrust {
  const cfg = loadConfig();
  const anchors = (o.anchor.length ? o.anchor : fs.readdirSync(cfg.repoDir).filter((f) => /root.*\.pem$/.test(f)).map((f) => path.join(cfg.repoDir, f)))
    .map((f) => new Uint8Array(fromPemOrDer(fs.readFileSync(f))));
  if (anchors.length === 0) throw new Error("no trust anchor: give --anchor ROOT.pem / 信頼の起点（ルート証明書）を --anchor で指定してください");
  return { repoUrl: o.repo, anchors, policy: encryptionPolicy(loadPolicies(cfg.policiesDir).profiles.get("enc")) };
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerPoboxCommands(program: Command): void {
  const pobox = program.command("pobox").description("medical PO box (医療用私書箱): encrypted documents between professionals, facilities and patients");
  const session = (o: { session?: string }) => readSession(sessionFile(loadConfig().home, o.session));

  pobox.command("login")
    .description("sign in at a PO box through the SSO center with the card (asks for the PIN)")
    .requiredOption("--box <url>", "the PO box, e.g. https://pobox.example/pobox")
    .requiredOption("--card <label>", "card token label (card-…)")
    .option("--pin-file <file>", "read the PIN from this file instead of asking")
    .option("--session <file>", "session file (default $HPKI_HOME/pobox-session.json)")
    .option("--json", "print one JSON object")
    .action(async (o: { box: string; card: string; pinFile?: string; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const cfg = loadConfig();
        const pin = o.pinFile ? fs.readFileSync(o.pinFile, "utf8").trim() : await askSecret({ en: "PIN", ja: "暗証番号" }, "--pin-file");
        ensureSoftHsmConfig(cfg);
        const mod = Pkcs11Module.open(cfg.pkcs11Module);
        try {
          const s = await loginWithCard(o.box.replace(/\/+$/, ""), new CardStation(mod), { label: o.card, pin });
          writeSession(sessionFile(cfg.home, o.session), s);
          return { text: `signed in at ${s.box} as ${s.account?.subscriberId} / サインインしました`, json: { box: s.box, account: s.account } };
        } finally {
          mod.close();
        }
      }));

  pobox.command("send")
    .description("encrypt FILE here for the readers (certificates from the directory, validated and revocation-checked first) and send it")
    .argument("<file>", "the document")
    .requiredOption("--to <list>", "subscriber ids, comma-separated; facility:ID for a facility, patient:BOX-NUMBER for a patient")
    .requiredOption("--class <documentClass>", "document class, e.g. referral, prescription, diagnosis")
    .requiredOption("--repo <url>", "repository base URL (directory and CRLs)")
    .option("--anchor <file>", "trust anchor (root certificate); repeatable; default the roots in $HPKI_HOME/repo", collect, [])
    .option("--no-forward", "forbid recipients to forward it")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (file: string, o: { to: string; class: string; repo: string; anchor: string[]; forward: boolean; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const r = await sendDocument(session(o), trustOf(o), { content: fs.readFileSync(file), to: parseTo(o.to), documentClass: o.class, forwardAllowed: o.forward });
        return { text: `sent ${r.id} (kept until ${r.expiresAt}) / 送信しました`, json: r };
      }));

  pobox.command("list")
    .description("the inbox (or --sent, with delivery and read receipts)")
    .option("--sent", "what you sent")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (o: { sent?: boolean; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const r = await boxCall<{ messages: { id: string; sender: { subscriberId: string }; documentClass: string; size: number; createdAt: string; deliveries: { subscriberId: string; state: string }[] }[] }>(session(o), "GET", `/messages?box=${o.sent ? "sent" : "inbox"}`);
        const rows = [["id", "from", "class", "bytes", "at", "receipts"], ...r.messages.map((m) => [m.id, m.sender.subscriberId, m.documentClass, String(m.size), m.createdAt, m.deliveries.map((d) => `${d.subscriberId}:${d.state}`).join(" ")])];
        return { text: table(rows), json: r };
      }));

  pobox.command("receive")
    .description("fetch message ID and open it here (as a reader, or as a designee of a facility); writes the document to --out")
    .argument("<id>", "message id")
    .requiredOption("--out <file>", "where to write the document")
    .option("--card <label>", "card token label (card-…): decrypt on the card")
    .option("--pin-file <file>", "read the PIN from this file instead of asking")
    .option("--key <file>", "private key (PKCS#8) of a software encryption key")
    .option("--cert <file>", "its encryption certificate")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (id: string, o: KeyOptions & { out: string; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const r = await withKeyAgent(o, (agent) => receiveDocument(session(o), id, agent));
        fs.writeFileSync(o.out, r.content, { mode: 0o600 });
        return { text: `opened ${id} as ${r.as}: ${r.content.length} bytes → ${o.out} / 復号しました`, json: { id, as: r.as, bytes: r.content.length, out: o.out } };
      }));

  pobox.command("forward")
    .description("forward message ID: re-wrap its content key for new readers (validated first); the encrypted content is not changed")
    .argument("<id>", "message id")
    .requiredOption("--to <list>", "subscriber ids, comma-separated")
    .requiredOption("--repo <url>", "repository base URL")
    .option("--anchor <file>", "trust anchor; repeatable", collect, [])
    .option("--card <label>", "card token label (card-…): decrypt on the card")
    .option("--pin-file <file>", "read the PIN from this file instead of asking")
    .option("--key <file>", "private key (PKCS#8) of a software encryption key")
    .option("--cert <file>", "its encryption certificate")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (id: string, o: KeyOptions & { to: string; repo: string; anchor: string[]; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const r = await withKeyAgent(o, (agent) => forwardDocument(session(o), trustOf(o), id, agent, parseTo(o.to)));
        return { text: `forwarded ${id} as ${r.id} / 転送しました`, json: r };
      }));

  registerPatientCommands(pobox);
  registerPoboxDemoCommand(pobox);

  pobox.command("pre-key")
    .description("create your re-encryption (組織暗号) key here and register it; its secret is sealed to your encryption certificate")
    .requiredOption("--cert <file>", "your encryption certificate")
    .option("--session <file>", "session file")
    .option("--json", "print one JSON object")
    .action(async (o: { cert: string; session?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const pk = await registerOwnPreKey(session(o), fromPemOrDer(fs.readFileSync(o.cert)));
        return { text: `PRE key registered / 再暗号化用の鍵を登録しました: ${Buffer.from(pk).toString("hex")}`, json: { publicKey: Buffer.from(pk).toString("base64") } };
      }));
}
