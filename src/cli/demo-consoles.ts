/**
 * The steps `hpki demo` takes over the consoles' HTTP interface, shared by its first part (new
 * applications to handover, demo-pipeline.ts) and the part after handover (demo-after-handover.ts):
 * one signed-in session per demo login (a TOTP code is accepted once, so sessions are kept), the
 * IA's issuance job, delivery batches with their receipt forms, and the handover at the desk with
 * the signed receipt (HPKI-PROFILE §9.3 steps 4–6).
 */
import type { OperatorRole } from "../pipeline/operator.ts";
import { totpCodeAt } from "../operators/operators.ts";
import { ConsoleClient, type ConsoleResponse } from "../web/console/client.ts";

/** A demo sign-in, kept in $HPKI_HOME/demo-logins.json (0600) so later runs and people can sign in. */
export interface DemoLogin {
  username: string;
  displayName: string;
  role: OperatorRole;
  /** Console path below the server URL. */
  console: "lra" | "ra" | "ia" | "sso/admin";
  lraCode?: string;
  password: string;
  totpSecret: string;
}

/** The demo logins' console sessions on the server at `origin`, each signed in (password + TOTP) when first used. */
export class DemoConsoles {
  private readonly clients = new Map<string, ConsoleClient>();

  constructor(
    readonly origin: string,
    private readonly logins: DemoLogin[],
  ) {}

  /** The signed-in session of demo login `username`. */
  async as(username: string): Promise<ConsoleClient> {
    let c = this.clients.get(username);
    if (!c) {
      const l = this.logins.find((x) => x.username === username);
      if (!l) throw new Error(`no demo login "${username}"`);
      c = new ConsoleClient(this.origin, `/${l.console}`);
      await c.signIn(l.username, l.password, await totpCodeAt(l.totpSecret));
      this.clients.set(username, c);
    }
    return c;
  }

  /** Signs every session out (errors ignored: the server may be closing). */
  async signOutAll(): Promise<void> {
    for (const c of this.clients.values()) await c.post("/logout").catch(() => undefined);
    this.clients.clear();
  }
}

/** Throws with the server's message unless `r` has status `expected`; else the JSON body. */
export function ok(r: ConsoleResponse, expected: number, what: string): any {
  if (r.status !== expected) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 500)}`);
  return r.json();
}

/** The Japanese reason of a refused step: the error and each field issue. */
export function reasonOf(r: ConsoleResponse): string {
  const body = r.json() as { errorJa?: string; error?: string; issues?: { messageJa: string }[] };
  const issues = body.issues?.map((i) => i.messageJa).join(" / ");
  return [body.errorJa ?? body.error, issues].filter(Boolean).join("：");
}

/** A one-page PDF standing in for a scanned document (the consoles sniff the bytes: it must be a PDF). */
export function demoScanPdf(title: string): Buffer {
  const text = title.replace(/[()\\]/g, "");
  const content = `BT /F1 18 Tf 72 760 Td (${text}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let pdf = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, "latin1");
}

/** Uploads a scan of document `kind` to application `id` at the desk `c`. */
export async function uploadScan(c: ConsoleClient, id: number, no: string, kind: string): Promise<number> {
  const r = ok(await c.upload(`/applications/${id}/documents`, { kind }, { filename: `${kind}.pdf`, bytes: demoScanPdf(`${no} ${kind} (scan)`), type: "application/pdf" }), 201, `upload ${kind} to ${no}`);
  return Number((r.document as { id: number }).id);
}

/** Records the face-to-face identity check (a driving licence shown, photo matching) for application `id`. */
export async function checkIdentityAtDesk(c: ConsoleClient, id: number, documentNumber: string): Promise<void> {
  const expiry = new Date(Date.now() + 3 * 365 * 86_400_000).toISOString().slice(0, 10);
  ok(await c.postJson(`/applications/${id}/identity-check`, {
    documentType: "driver_licence", documentNumber, expiryDate: expiry, method: "face_to_face", photoMatches: true,
  }), 200, "identity check");
}

/**
 * Polls `probe` every `intervalMs` until it returns a value. Generous by design (the demo must
 * hold on a busy machine): gives up only after `limitMs` (10 minutes), naming `what`.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, o: { intervalMs?: number; limitMs?: number } = {}): Promise<T> {
  const until = Date.now() + (o.limitMs ?? 600_000);
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 250));
  }
}

/** Starts the IA's issuance job (every approved issuance request: keys made on the card) and waits for it. */
export async function runIssuanceJob(ia: ConsoleClient, log: (s: string) => void): Promise<void> {
  const started = ok(await ia.postJson("/jobs", {}), 202, "start issuance").job as { id: string };
  const job = await waitFor("the issuance job", async () => {
    const j = ok(await ia.getJson(`/jobs/${started.id}`), 200, "issuance progress").job as { state: string; done: number; total: number; failed?: unknown[] };
    return j.state === "finished" ? j : undefined;
  });
  log(`  ${job.done}/${job.total} cards done${job.failed?.length ? `, ${job.failed.length} failed` : ""}`);
  if (job.failed?.length) throw new Error(`issuance failed for ${job.failed.length} card(s): ${JSON.stringify(job.failed).slice(0, 500)}`);
}

/** The IA prepares a delivery batch per desk waiting for cards, fetches its receipt forms (受領書) and ships it. */
export async function shipWaitingDeliveries(ia: ConsoleClient, log: (s: string) => void): Promise<void> {
  const { waiting } = ok(await ia.getJson("/deliveries"), 200, "deliveries") as { waiting: { lraId: number | null; lraCode?: string | null; count: number }[] };
  for (const w of waiting) {
    const { batch } = ok(await ia.postJson("/deliveries", { lraId: w.lraId ?? "" }), 201, "prepare delivery") as { batch: { id: number; batchNo?: string; batch_no?: string } };
    const pdf = await ia.bytes("GET", `/deliveries/${batch.id}/receipts.pdf`);
    if (pdf.status !== 200) throw new Error(`receipt forms of delivery ${batch.id}: HTTP ${pdf.status}`);
    ok(await ia.postJson(`/deliveries/${batch.id}/ship`, {}), 200, "ship");
    log(`  ${batch.batchNo ?? batch.batch_no}: ${w.count} cards to ${w.lraCode ?? "登録局窓口"}`);
  }
}

/** The desk `c` receives every delivery batch shipped to it. */
export async function receiveShippedDeliveries(c: ConsoleClient): Promise<void> {
  const { deliveries } = ok(await c.getJson("/deliveries"), 200, "deliveries to receive") as { deliveries: { id: number; state: string }[] };
  for (const b of deliveries.filter((x) => x.state === "shipped")) ok(await c.postJson(`/deliveries/${b.id}/receive`, {}), 200, "receive delivery");
}

/**
 * The handover at desk `c`: the subscriber signs the receipt (its scan uploaded) and shows a
 * マイナンバーカード — recorded by at most its last 4 digits (番号法).
 */
export async function handOverAtDesk(c: ConsoleClient, id: number, no: string, documentNumber: string): Promise<void> {
  const doc = ok(await c.upload(`/applications/${id}/documents`, { kind: "signed_receipt" }, {
    filename: "signed-receipt.pdf", bytes: demoScanPdf(`${no} receipt signed by the subscriber (scan)`), type: "application/pdf",
  }), 201, "upload signed receipt").document as { id: number };
  ok(await c.postJson(`/applications/${id}/handover`, {
    documentType: "my_number_card", documentNumber: documentNumber.slice(-4), photoMatches: true, signedReceiptDocumentId: doc.id,
  }), 200, `handover of ${no}`);
}

/** The RA officer reviews (accepts) every recorded signed receipt; returns how many. */
export async function acceptRecordedReceipts(officer: ConsoleClient): Promise<number> {
  const { receipts } = ok(await officer.getJson("/receipts?state=recorded"), 200, "receipts") as { receipts: { id: number }[] };
  for (const r of receipts) ok(await officer.postJson(`/receipts/${r.id}/review`, { decision: "accept" }), 200, "receipt review");
  return receipts.length;
}
