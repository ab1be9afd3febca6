/**
 * Outgoing mail for notices to subscribers (DESIGN §9: mail written to $HPKI_HOME/mail in the
 * embedded default, SMTP in production), with nodemailer:
 *
 * - HPKI_SMTP_URL set (e.g. smtp://relay.example.jp:587, smtps://user:pass@host): SMTP;
 * - otherwise each message is rendered to RFC 5322 bytes (streamTransport, buffer) and written as
 *   one .eml file under $HPKI_HOME/mail/notices/ (mode 0640), where an operator or a test reads it.
 *
 * HPKI_MAIL_FROM sets the sender (default "HPKI 認証局 <no-reply@hpki-ca.invalid>").
 */
import fs from "node:fs";
import path from "node:path";
import nodemailer from "nodemailer";
import type { Config } from "../config.ts";

export const DEFAULT_MAIL_FROM = '"HPKI 認証局" <no-reply@hpki-ca.invalid>';

/** One message: plain text (UTF-8), no attachments. */
export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

export interface SentMail {
  messageId: string;
  /** The .eml file written (embedded default only). */
  file?: string;
}

export interface Mailer {
  /** "smtp://host:port" or "file:<dir>", for logs and CLI output (no credentials). */
  readonly describe: string;
  /** Sends one message. @throws on a transport error (SMTP refusal, unreachable host, disk full). */
  send(mail: OutgoingMail): Promise<SentMail>;
  close(): void;
}

/**
 * The mailer of this process: SMTP when `env.HPKI_SMTP_URL` is set, else .eml files under
 * `cfg.mailDir`/notices. @throws when HPKI_SMTP_URL is not a smtp: / smtps: URL.
 */
export function createMailer(cfg: Pick<Config, "mailDir">, env: NodeJS.ProcessEnv = process.env): Mailer {
  const from = env.HPKI_MAIL_FROM || DEFAULT_MAIL_FROM;
  const url = env.HPKI_SMTP_URL;
  if (url) {
    const u = new URL(url);
    if (u.protocol !== "smtp:" && u.protocol !== "smtps:") throw new Error(`HPKI_SMTP_URL must be a smtp: or smtps: URL, not ${u.protocol}`);
    const transport = nodemailer.createTransport(url);
    return {
      describe: `${u.protocol}//${u.host}`,
      async send(m) {
        const info = await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text });
        return { messageId: info.messageId };
      },
      close: () => transport.close(),
    };
  }
  const dir = path.join(cfg.mailDir, "notices");
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    describe: `file:${dir}`,
    async send(m) {
      const info = await transport.sendMail({ from, to: m.to, subject: m.subject, text: m.text });
      fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
      const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
      const id = info.messageId.replace(/[^A-Za-z0-9.@-]/g, "").replace(/@.*/, "");
      const file = path.join(dir, `${stamp}-${id}.eml`);
      fs.writeFileSync(file, info.message as Buffer, { mode: 0o640 });
      return { messageId: info.messageId, file };
    },
    close: () => transport.close(),
  };
}
