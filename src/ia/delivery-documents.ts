/**
 * The printed papers of a delivery batch (issue 3 item 5; HPKI-PROFILE §9.3 step 5): the packing
 * list that travels with the cards, and one receipt form (受領書) per card that the applicant
 * signs at the desk of the regional association (or of the RA). Both are PDFs in Japanese, set in
 * IPAex Gothic (Debian fonts-ipaexfont-gothic, embedded as a subset); each receipt form carries a
 * QR code of its receipt number, which the desk scans when it records the signed form.
 *
 * Input is plain data (DeliveryDocumentData): this module reads nothing from the database. Nothing
 * secret is printed — no PIN (the PIN mailer travels separately), no key material.
 */
import fs from "node:fs";
import PDFDocument from "pdfkit";
import QRCode from "qrcode";

/** Debian's IPAex Gothic (fonts-ipaexfont-gothic, installed by scripts/setup.sh). */
export const IPAEX_GOTHIC = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";

/** One card of a delivery batch, as printed. */
export interface DeliveryItem {
  applicationNo: string;
  nameKanji: string;
  nameKana: string;
  /** Qualification in Japanese (hcRole table `ja`), e.g. "医師"; manager role appended by the caller. */
  qualificationJa: string;
  organizationKanji: string | null;
  cardLabel: string;
  cardSerial: string;
  receiptNo: string;
}

/** A delivery batch with its destination and cards, as printed. */
export interface DeliveryDocumentData {
  batchNo: string;
  /** Destination: the regional association ("13-001", "東京都医師会"), or the RA desk. */
  destination: { code: string; name: string };
  createdAt: Date;
  items: DeliveryItem[];
}

export interface PdfOptions {
  /** TrueType/OpenType font with Japanese glyphs (cfg.pdfFont, HPKI_PDF_FONT); default IPAEX_GOTHIC. */
  fontPath?: string;
}

const A4 = { width: 595.28, height: 841.89 };
const MARGIN = 48;
const FONT = "jp";

/** Date as 2026年11月22日 in Japan time (also used by the PIN mailer, pin-mailer-pdf.ts). */
export function dateJa(d: Date): string {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo", year: "numeric", month: "numeric", day: "numeric" }).formatToParts(d).map((x) => [x.type, x.value]),
  );
  return `${p.year}年${p.month}月${p.day}日`;
}

function resolveFont(opts: PdfOptions): string {
  const font = opts.fontPath ?? IPAEX_GOTHIC;
  if (!fs.existsSync(font)) {
    throw new Error(`Japanese font ${font} not found: install Debian's fonts-ipaexfont-gothic (scripts/setup.sh) or set HPKI_PDF_FONT`);
  }
  return font;
}

/** A new A4 document with the Japanese font registered and selected; resolves to the PDF bytes. */
export function newDocument(title: string, opts: PdfOptions): { doc: PDFKit.PDFDocument; bytes: Promise<Buffer> } {
  const font = resolveFont(opts);
  const doc = new PDFDocument({ size: "A4", margin: MARGIN, info: { Title: title, Author: "hpki-ca", Creator: "hpki-ca" }, lang: "ja-JP" });
  const chunks: Buffer[] = [];
  doc.on("data", (c: Buffer) => chunks.push(c));
  const bytes = new Promise<Buffer>((resolve, reject) => {
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });
  doc.registerFont(FONT, font);
  doc.font(FONT);
  return { doc, bytes };
}

/** A horizontal rule across the text width at `y`. */
function rule(doc: PDFKit.PDFDocument, y: number, width = 0.5): void {
  doc.save().lineWidth(width).moveTo(MARGIN, y).lineTo(A4.width - MARGIN, y).stroke().restore();
}

const COLUMNS = [
  { title: "No.", width: 22 },
  { title: "申込番号", width: 78 },
  { title: "氏名", width: 82 },
  { title: "フリガナ", width: 92 },
  { title: "カード番号／ラベル", width: 118 },
  { title: "受領書番号", width: 107.28 },
] as const;

/**
 * The packing list (配送明細) of a delivery batch: batch number, destination, date and count, one
 * row per card (application number, applicant in kanji and kana, card serial and label, receipt
 * number) and the packer's and receiver's check lines. @returns the PDF bytes.
 */
export async function packingListPdf(data: DeliveryDocumentData, opts: PdfOptions = {}): Promise<Buffer> {
  const { doc, bytes } = newDocument(`配送明細 ${data.batchNo}`, opts);
  const bottom = A4.height - MARGIN - 90;

  const header = (continued: boolean) => {
    doc.fontSize(18).text(`HPKI カード配送明細（梱包リスト）${continued ? "（続き）" : ""}`, MARGIN, MARGIN, { align: "center" });
    doc.moveDown(0.6).fontSize(10.5);
    doc.text(`配送バッチ番号: ${data.batchNo}`);
    doc.text(`送付先: ${data.destination.name}（${data.destination.code}）`);
    doc.text(`作成日: ${dateJa(data.createdAt)}　　枚数: ${data.items.length} 枚`);
    doc.moveDown(0.6);
    let x = MARGIN;
    const y = doc.y;
    doc.fontSize(9);
    for (const c of COLUMNS) {
      doc.text(c.title, x + 2, y, { width: c.width - 4 });
      x += c.width;
    }
    rule(doc, y + 15, 1);
    doc.y = y + 20;
  };

  header(false);
  data.items.forEach((it, i) => {
    const cells = [String(i + 1), it.applicationNo, it.nameKanji, it.nameKana, `${it.cardSerial}\n${it.cardLabel}`, it.receiptNo];
    doc.fontSize(9);
    const height = Math.max(...cells.map((c, k) => doc.heightOfString(c, { width: COLUMNS[k].width - 4 }))) + 8;
    if (doc.y + height > bottom) {
      doc.addPage();
      header(true);
    }
    const y = doc.y;
    let x = MARGIN;
    cells.forEach((c, k) => {
      doc.text(c, x + 2, y + 3, { width: COLUMNS[k].width - 4 });
      x += COLUMNS[k].width;
    });
    rule(doc, y + height);
    doc.y = y + height + 2;
  });

  // Check lines: the issuing office packs, the destination checks the contents on arrival.
  const y = bottom + 12; // rows never pass `bottom`
  doc.fontSize(10);
  doc.text("梱包確認（発行局）　　確認日：　　　年　　月　　日　　担当者署名：", MARGIN, y);
  rule(doc, y + 34);
  doc.text("内容確認（受領窓口）　確認日：　　　年　　月　　日　　担当者署名：", MARGIN, y + 44);
  rule(doc, y + 78);
  doc.end();
  return bytes;
}

/**
 * One receipt form (受領書) per card, one A4 page each: title 「HPKI カード受領書」, receipt
 * number as text and as QR code, the applicant (kanji, kana), qualification in Japanese,
 * organisation, card serial and label, the statement that the card was received in person after
 * an identity check, date and signature lines, and the desk's identity-check box.
 * @returns the PDF bytes.
 */
export async function receiptFormsPdf(data: DeliveryDocumentData, opts: PdfOptions = {}): Promise<Buffer> {
  const qrs = await Promise.all(data.items.map((it) => QRCode.toBuffer(it.receiptNo, { type: "png", errorCorrectionLevel: "M", margin: 1, scale: 6 })));
  const { doc, bytes } = newDocument(`受領書 ${data.batchNo}`, opts);
  const width = A4.width - 2 * MARGIN;

  data.items.forEach((it, i) => {
    if (i > 0) doc.addPage();
    const qrSize = 96;
    doc.image(qrs[i], A4.width - MARGIN - qrSize, MARGIN, { width: qrSize, height: qrSize });
    doc.fontSize(8.5).text("受領書番号（QR）", A4.width - MARGIN - qrSize, MARGIN + qrSize + 2, { width: qrSize, align: "center" });

    doc.fontSize(11).text("保健医療福祉分野PKI認証局　御中", MARGIN, MARGIN);
    doc.fontSize(10).text(`受領書番号: ${it.receiptNo}`, MARGIN, MARGIN + 22);
    doc.text(`配送バッチ: ${data.batchNo}　　受付窓口: ${data.destination.name}`, MARGIN, MARGIN + 38, { width: width - qrSize - 10 });

    doc.fontSize(22).text("HPKI カード受領書", MARGIN, MARGIN + 130, { width, align: "center" });

    const rows: [string, string][] = [
      ["申込番号", it.applicationNo],
      ["氏名", it.nameKanji],
      ["フリガナ", it.nameKana],
      ["資格", it.qualificationJa],
      ["所属", it.organizationKanji ?? "—"],
      ["カード番号", it.cardSerial],
      ["カードラベル", it.cardLabel],
    ];
    let y = MARGIN + 185;
    const labelWidth = 110;
    rule(doc, y, 1);
    for (const [label, value] of rows) {
      doc.fontSize(11).text(label, MARGIN + 8, y + 8, { width: labelWidth - 16 });
      doc.fontSize(label === "氏名" ? 14 : 11).text(value, MARGIN + labelWidth, y + (label === "氏名" ? 6 : 8), { width: width - labelWidth - 8 });
      y += 30;
      rule(doc, y);
    }

    y += 22;
    doc.fontSize(11).text(
      "私は、上記の HPKI カード（保健医療福祉分野の公開鍵基盤による電子証明書を格納した IC カード）を、" +
        "窓口において本人確認を受けたうえで、本人が直接受け取りました。" +
        "カードおよび暗証番号（PIN）は他人に貸与・開示せず、紛失した場合は直ちに届け出ます。",
      MARGIN, y, { width, lineGap: 4 },
    );

    y = doc.y + 30;
    doc.fontSize(12).text("受領日　　　　　　年　　　月　　　日", MARGIN + 8, y);
    y += 44;
    doc.text("受領者署名（自署）", MARGIN + 8, y);
    doc.save().lineWidth(0.8).moveTo(MARGIN + 150, y + 18).lineTo(A4.width - MARGIN - 8, y + 18).stroke().restore();

    // The desk fills this in at handover (the identity check it records in the LRA console).
    y += 56;
    doc.save().lineWidth(0.8).rect(MARGIN, y, width, 118).stroke().restore();
    doc.fontSize(10).text("窓口記入欄", MARGIN + 8, y + 8);
    doc.text("本人確認書類：　□ マイナンバーカード　□ 運転免許証　□ 旅券　□ 在留カード　□ その他", MARGIN + 8, y + 30, { width: width - 16 });
    doc.text("書類番号（下4桁）：　　　　　　　　　顔写真と本人の照合：　□ 確認済", MARGIN + 8, y + 56, { width: width - 16 });
    doc.text("交付日：　　　　年　　月　　日　　　交付担当者署名：", MARGIN + 8, y + 84, { width: width - 16 });

    doc.fontSize(8.5).text(
      "署名済みの受領書は窓口でスキャンして登録し、原本は所定の期間保管してください。QR コードは受領書番号を表します。",
      MARGIN, A4.height - MARGIN - 24, { width, align: "center" },
    );
  });
  if (data.items.length === 0) doc.fontSize(12).text("この配送バッチにはカードがありません。");
  doc.end();
  return bytes;
}
