/**
 * The card at the handover desk (issue 12 §7; HPKI-PROFILE §9.3 step 6): what the page shows of
 * the card handed over (label, card serial, the certificates on it) and the receipt QR. The QR on
 * the printed receipt (src/ia/delivery-documents.ts) encodes the receipt number; a USB scanner
 * types it into a text field and presses Enter. Scanned on the deliveries page it opens that
 * card's handover page; scanned on the handover page it must be this card's receipt, so the
 * wrong card is never handed over.
 */
import type { Router } from "express";
import { z } from "zod";
import { parseInput, ValidationError } from "../pipeline/errors.ts";
import type { Row } from "../pipeline/machine.ts";
import type { OperatorRole } from "../pipeline/operator.ts";
import type { Db } from "../store/db.ts";
import type { ConsoleKit } from "../web/console/kit.ts";
import { displayDate } from "./application-format.ts";
import { readApplication } from "./application-queries.ts";

/** A scanned receipt number as printed (NFKC: a scanner in a Japanese IME types full width). */
export function normaliseReceiptNo(s: unknown): string {
  return String(s ?? "").normalize("NFKC").replace(/\s+/g, "").replace(/[ー‐−–—]/g, "-").toUpperCase();
}

const PROFILE_NAMES: Record<string, { ja: string; en: string }> = {
  sign: { ja: "署名用証明書", en: "signature certificate" },
  "auth-person": { ja: "認証用証明書", en: "authentication certificate" },
};

/** The card bound to an application's issuance request and the certificates issued onto it. */
export async function cardOfApplication(db: Db, applicationId: number, lang: "ja" | "en"): Promise<Record<string, unknown> | null> {
  const ir = (await db("issuance_requests").where({ application_id: applicationId }).first("card_label")) as Row | undefined;
  if (!ir?.card_label) return null;
  const card = (await db("cards").where({ label: ir.card_label }).first("label", "card_serial", "status")) as Row | undefined;
  const certs = (await db("certificates as c")
    .join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .where({ "c.card_label": ir.card_label, "c.status": "issued" })
    .orderBy("c.id")
    .select("c.profile", "c.serial_hex", "c.not_after", "ca.name as ca_name")) as Row[];
  return {
    label: ir.card_label,
    serial: card?.card_serial ?? null,
    certificates: certs.map((c) => ({ profile: c.profile, profileText: PROFILE_NAMES[String(c.profile)]?.[lang] ?? c.profile, serialHex: c.serial_hex, caName: c.ca_name, notAfterText: displayDate(c.not_after, lang) })),
  };
}

/**
 * Refuses a handover whose scanned receipt QR is not this application's receipt (400, field
 * receiptNo). No scan (API clients) is not checked here: the handover service checks the rest.
 */
export function assertScannedReceipt(body: Record<string, unknown>, receipt: Row | undefined): void {
  if (body.receiptNo === undefined) return;
  const scanned = normaliseReceiptNo(body.receiptNo);
  if (!scanned || !receipt || scanned !== normaliseReceiptNo(receipt.receipt_no)) {
    throw new ValidationError([{
      field: "receiptNo",
      message: `The scanned receipt (${scanned || "none"}) is not this card's receipt ${receipt?.receipt_no ?? ""}: check that the card and the receipt belong to the applicant.`,
      messageJa: `読み取った受領書番号（${scanned || "なし"}）はこのカードの受領書（${receipt?.receipt_no ?? "—"}）ではありません。カードと受領書が申請者本人のものか確認してください。`,
    }]);
  }
}

const scanSchema = z.object({ receiptNo: z.string().trim().min(1).max(100) });

/**
 * GET /handover/scan?receiptNo=… — the receipt QR scanned at the desk opens the handover page of
 * its card (scope-checked as the application page is); an unknown number goes back to the
 * deliveries with a message.
 */
export function mountReceiptScan(router: Router, kit: ConsoleKit, readers: readonly OperatorRole[]): void {
  router.get("/handover/scan", kit.requireRole(...readers), async (req, res) => {
    const { receiptNo } = parseInput(scanSchema, req.query);
    const receipt = (await kit.deps.db("receipts").where({ receipt_no: normaliseReceiptNo(receiptNo) }).first("application_id")) as Row | undefined;
    if (!receipt) {
      kit.flash(req, "error", `No receipt ${receiptNo}.`, `受領書番号 ${normaliseReceiptNo(receiptNo)} は見つかりません。`);
      res.redirect(303, kit.url("/deliveries"));
      return;
    }
    const app = await readApplication(kit.deps.db, kit.operator(req), Number(receipt.application_id));
    res.redirect(303, kit.url(`/applications/${Number(app.id)}/handover`));
  });
}
