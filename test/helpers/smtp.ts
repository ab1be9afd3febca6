/** A real SMTP server (smtp-server) on 127.0.0.1 for tests of the mail path: no TLS, no AUTH. */
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The message as received (headers and body). */
  raw: string;
}

export interface TestSmtp {
  /** smtp://127.0.0.1:<port>, for HPKI_SMTP_URL. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the server on a free port. `refuse(address)` true answers RCPT TO with 550; `onMessage`
 * gets each message once it is taken, before the server answers it (250 follows its return).
 */
export async function startTestSmtp(o: { onMessage(mail: ReceivedMail): void; refuse?(address: string): boolean }): Promise<TestSmtp> {
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onRcptTo(address, _session, cb) {
      if (o.refuse?.(address.address)) cb(Object.assign(new Error("mailbox unavailable"), { responseCode: 550 }));
      else cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        o.onMessage({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()));
  const port = ((smtp as unknown as { server: { address(): { port: number } } }).server.address()).port;
  return { url: `smtp://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => smtp.close(() => resolve())) };
}
