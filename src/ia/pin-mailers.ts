/**
 * PIN mailers (暗証番号通知書, issue 13 §8): printed from the IA console as a PDF in a sealed-mailer
 * layout (IPAex Gothic, like the receipts: delivery-documents.ts) and tracked — printed (who, when),
 * sent (on which day; sent apart from the card and on another day: a mailer sent on the day the card
 * was shipped is recorded and flagged). The PIN is held only until printed: an unblock mailer's
 * PIN sealed in pin_mailers (the sealed value set to NULL in the same transaction that records the
 * printing), an initial mailer's PIN in the mailer file the IA keeps until then (deleted after
 * the printing is recorded; printable once the card is personalised, which reads it). The PIN is
 * never in the database in the clear, never in the audit log, and is printed once.
 */
import fs from "node:fs";
import type { Knex } from "knex";
import { z } from "zod";
import { appendAudit } from "../audit/log.ts";
import { ConflictError, NotFoundError, parseInput } from "../pipeline/errors.ts";
import type { Operator } from "../pipeline/operator.ts";
import { cardPinKey, mailerPinAad } from "./card-pins.ts";
import { readPinMailer } from "./card-personalisation.ts";
import { pinMailerPath } from "./cards.ts";
import type { IaContext } from "./context.ts";
import { dateJa, newDocument, type PdfOptions } from "./delivery-documents.ts";

/** One PIN mailer as listed in the console (never the PIN). */
export interface PinMailerItem {
  mailerNo: string;
  kind: "initial" | "unblock";
  state: "pending" | "printed" | "sent";
  cardLabel: string;
  cardSerial: string;
  cardState: string;
  holder: string | null;
  createdAt: Date;
  printedBy: string | null;
  printedAt: Date | null;
  sentOn: string | null;
  /** The day (Japan) the card was shipped, from its history; null when not shipped. */
  cardShippedOn: string | null;
  /** True when the mailer was (or, if sent today, would be) sent on the card's shipping day. */
  sameDayAsCard: boolean;
}

/** YYYY-MM-DD in Japan time. */
function dayJst(d: Date): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
}

/** PIN mailers, pending first, then newest. */
export async function listPinMailers(db: Knex, o: { state?: string; limit?: number } = {}): Promise<PinMailerItem[]> {
  const shipped = db("card_events").where({ transition: "ship" }).groupBy("card_id").select("card_id", db.raw("max(at) AS shipped_at"));
  const q = db("pin_mailers as m").join("cards as c", "c.id", "m.card_id").leftJoin(shipped.as("s"), "s.card_id", "c.id")
    .orderByRaw("CASE m.state WHEN 'pending' THEN 0 ELSE 1 END").orderBy("m.id", "desc").limit(o.limit ?? 500)
    .select("m.*", "c.label", "c.card_serial", "c.status as card_state", "s.shipped_at",
      db.raw(`(SELECT a.name_kanji FROM issuance_requests ir JOIN applications a ON a.id = ir.application_id WHERE ir.card_label = c.label ORDER BY ir.id DESC LIMIT 1) AS holder`));
  if (o.state) q.where("m.state", o.state);
  return (await q).map((r) => {
    const shippedOn = r.shipped_at ? dayJst(new Date(r.shipped_at)) : null;
    const sentOn = r.sent_on ? (r.sent_on instanceof Date ? dayJst(r.sent_on) : String(r.sent_on).slice(0, 10)) : null;
    return {
      mailerNo: r.mailer_no, kind: r.kind, state: r.state, cardLabel: r.label, cardSerial: r.card_serial, cardState: r.card_state, holder: r.holder ?? null,
      createdAt: new Date(r.created_at), printedBy: r.printed_by ?? null, printedAt: r.printed_at ? new Date(r.printed_at) : null, sentOn,
      cardShippedOn: shippedOn, sameDayAsCard: shippedOn != null && (sentOn ?? dayJst(new Date())) === shippedOn,
    };
  });
}

/** The PIN mailer page as a PDF: the sealed-mailer layout (address side, fold line, PIN inside). */
export async function pinMailerPdf(m: { mailerNo: string; cardSerial: string; holder: string | null; kind: string; pin: string; printedAt: Date }, opts: PdfOptions = {}): Promise<Buffer> {
  const { doc, bytes } = newDocument(`PIN mailer ${m.mailerNo}`, opts);
  const width = doc.page.width - 96;
  doc.fontSize(10).text("親展 / Confidential", { align: "right" });
  doc.moveDown(0.5).fontSize(14).text(`${m.holder ?? ""} 様`);
  doc.moveDown(0.5).fontSize(9).text(`通知書番号 / mailer no.: ${m.mailerNo}    発行日 / printed: ${dateJa(m.printedAt)}`);
  doc.moveDown(1).fontSize(9).text("- - - - - - - - - - - - ここから折り、封をしてください / fold and seal here - - - - - - - - - - - -", { align: "center", width });
  doc.moveDown(1).fontSize(16).text("HPKIカード 暗証番号（PIN）通知書", { align: "center" });
  doc.fontSize(11).text("HPKI card PIN mailer", { align: "center" });
  doc.moveDown(1).fontSize(11).text(m.kind === "unblock" ? "PINロック解除により、新しい暗証番号を設定しました。/ Your PIN was unblocked and replaced." : "カードの暗証番号をお知らせします。/ The PIN of your card.");
  doc.moveDown(0.5).text(`カード番号 / card serial: ${m.cardSerial}`);
  doc.moveDown(1).fontSize(22).text(`暗証番号 / PIN:  ${m.pin}`, { align: "center" });
  doc.moveDown(1).fontSize(10).text("この通知書は他人に見せず、カードとは別に保管してください。暗証番号は `hpki card change-pin` 等で変更できます。");
  doc.text("Keep this notice secret and apart from the card; you can change the PIN.");
  doc.moveDown(1).fontSize(9).text("- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -", { align: "center", width });
  doc.end();
  return bytes;
}

/**
 * Prints PIN mailer `mailerNo` once: opens its PIN (sealed value, or the initial mailer file),
 * renders the PDF, then in one transaction records it printed (who, when) and erases the sealed
 * PIN — audited "pin_mailer.printed" without the PIN — and deletes an initial mailer's file.
 * @throws NotFoundError; ConflictError (already printed; an initial mailer of a card not yet personalised).
 */
export async function printPinMailer(ctx: IaContext, op: Operator, mailerNo: string): Promise<Buffer> {
  const m = await ctx.db("pin_mailers as m").join("cards as c", "c.id", "m.card_id").where("m.mailer_no", mailerNo)
    .first("m.*", "c.label", "c.card_serial", "c.status as card_state");
  if (!m) throw new NotFoundError(`PIN mailer ${mailerNo} not found`, `PIN通知書が見つかりません（${mailerNo}）`);
  if (m.state !== "pending") throw new ConflictError(`PIN mailer ${mailerNo} was already printed (the PIN is erased)`, `PIN通知書 ${mailerNo} は印刷済みです（暗証番号は消去済み）`);
  if (m.kind === "initial" && m.card_state === "blank") {
    throw new ConflictError(`card ${m.label} is not personalised yet: print its PIN mailer afterwards`, `カード ${m.label} は未発行です。発行（書込み）後に印刷してください`);
  }
  const file = pinMailerPath(ctx.cfg.mailDir, m.label);
  const pin = m.kind === "unblock"
    ? (await (await cardPinKey(ctx)).open(m.pin_sealed, mailerPinAad(mailerNo))).toString("utf8")
    : readPinMailer(file);
  const holder = await ctx.db("issuance_requests as ir").join("applications as a", "a.id", "ir.application_id").where("ir.card_label", m.label)
    .orderBy("ir.id", "desc").first("a.name_kanji");
  const printedAt = new Date();
  const pdf = await pinMailerPdf({ mailerNo, cardSerial: m.card_serial, holder: holder?.name_kanji ?? null, kind: m.kind, pin, printedAt }, { fontPath: ctx.cfg.pdfFont });
  await ctx.db.transaction(async (trx) => {
    const n = await trx("pin_mailers").where({ id: m.id, state: "pending" }).update({ state: "printed", pin_sealed: null, printed_by: op.username, printed_at: printedAt });
    if (n !== 1) throw new ConflictError(`PIN mailer ${mailerNo} was printed by someone else meanwhile`, `PIN通知書 ${mailerNo} は他の担当者が印刷しました`);
    await appendAudit(trx, [{ actor: op.username, role: op.role, action: "pin_mailer.printed", objectType: "pin_mailer", objectId: mailerNo, details: { card: m.label, kind: m.kind, pinErased: true } }]);
  });
  if (m.kind === "initial") fs.rmSync(file, { force: true });
  return pdf;
}

const sentSchema = z.object({ sentOn: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional() });

/**
 * Records PIN mailer `mailerNo` as sent on `sentOn` (YYYY-MM-DD, default today in Japan). Sent on
 * the day the card was shipped is recorded with sent_same_day_as_card = true and returned as a
 * warning (the mailer and the card travel apart and on different days).
 */
export async function recordPinMailerSent(db: Knex, op: Operator, mailerNo: string, input: unknown): Promise<{ mailerNo: string; sentOn: string; sameDayAsCard: boolean }> {
  const v = parseInput(sentSchema, input);
  const sentOn = v.sentOn ?? dayJst(new Date());
  return db.transaction(async (trx) => {
    const m = await trx("pin_mailers").where({ mailer_no: mailerNo }).forUpdate().first("id", "state", "card_id");
    if (!m) throw new NotFoundError(`PIN mailer ${mailerNo} not found`, `PIN通知書が見つかりません（${mailerNo}）`);
    if (m.state !== "printed") throw new ConflictError(`PIN mailer ${mailerNo} is ${m.state}; print it first`, `PIN通知書 ${mailerNo} は印刷後に発送を記録してください`);
    const ship = await trx("card_events").where({ card_id: m.card_id, transition: "ship" }).max({ at: "at" }).first();
    const sameDay = ship?.at ? dayJst(new Date(ship.at)) === sentOn : false;
    await trx("pin_mailers").where({ id: m.id }).update({ state: "sent", sent_by: op.username, sent_on: sentOn, sent_same_day_as_card: sameDay });
    await appendAudit(trx, [{ actor: op.username, role: op.role, action: "pin_mailer.sent", objectType: "pin_mailer", objectId: mailerNo, details: { sentOn, sameDayAsCard: sameDay } }]);
    return { mailerNo, sentOn, sameDayAsCard: sameDay };
  });
}
