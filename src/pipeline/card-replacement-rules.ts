/**
 * The rules of records that replace a subscriber's card (issue 13 §3–§5; DESIGN §3,
 * HPKI-PROFILE §9.4–§9.6): which documents an approval needs for each kind, the reason the
 * replaced card's certificates are revoked with (RFC 5280 §5.3.1), and the guard that a card
 * reported lost or stolen is revoked before its replacement is issued. Used by the application
 * machine (application.ts) and the IA's claim (issuance-requests.ts).
 */
import type { Knex } from "knex";
import type { CrlReason } from "../pki/crl.ts";
import { ConflictError } from "./errors.ts";
import type { Row } from "./machine.ts";

/** What a pipeline record is: a first application, or one replacing a card. */
export const APPLICATION_KINDS = {
  new: { ja: "新規", en: "new" },
  renewal: { ja: "更新", en: "renewal" },
  reissue: { ja: "再発行（紛失・盗難）", en: "reissue (loss or theft)" },
  change: { ja: "記載事項変更", en: "change of particulars" },
} as const;
export type ApplicationKind = keyof typeof APPLICATION_KINDS;

/**
 * Why a card is replaced, and the RFC 5280 §5.3.1 reason its certificates are revoked with:
 * a lost or stolen card's key may be in other hands (keyCompromise); a changed name or a lost
 * manager role is "the subject's name or other information in the certificate has been
 * modified" (affiliationChanged); a renewal or a gained manager role replaces certificates that
 * are still true (superseded).
 */
export const CHANGE_REASONS = {
  loss: { ja: "紛失", en: "loss", kind: "reissue", oldCardReason: "keyCompromise" },
  theft: { ja: "盗難", en: "theft", kind: "reissue", oldCardReason: "keyCompromise" },
  name_change: { ja: "氏名の変更", en: "name change", kind: "change", oldCardReason: "affiliationChanged" },
  role_gained: { ja: "管理者資格の追加", en: "manager role gained", kind: "change", oldCardReason: "superseded" },
  role_lost: { ja: "管理者資格の喪失", en: "manager role lost", kind: "change", oldCardReason: "affiliationChanged" },
  renewal: { ja: "更新", en: "renewal", kind: "renewal", oldCardReason: "superseded" },
} as const satisfies Record<string, { ja: string; en: string; kind: ApplicationKind; oldCardReason: CrlReason }>;
export type ChangeReason = keyof typeof CHANGE_REASONS;

/**
 * Documents an approval needs (HPKI-PROFILE §9.2): a first application or a renewal the form, an
 * identity document and the licence (managers also proof of their position); a reissue after
 * loss none — the verified data are reused, identity and licence are checked again; a name
 * change the document proving it; a gained manager role the proof of the position.
 */
export function requiredDocumentsFor(row: Record<string, unknown>): string[] {
  const director = row.manager_role != null;
  switch (row.kind) {
    case "reissue":
      return [];
    case "change":
      if (row.change_reason === "name_change") return ["name_change_proof", ...(director ? ["director_proof"] : [])];
      if (row.change_reason === "role_gained") return ["director_proof"];
      return [];
    default:
      return director ? ["application_form", "identity_document", "licence_copy", "director_proof"] : ["application_form", "identity_document", "licence_copy"];
  }
}

/**
 * SQL condition (on a row of `certificates as c`) that the certificate is still usable: issued and
 * neither revoked nor on hold for good — a hold (certificateHold, not released) still counts as
 * live, because it can be released.
 */
export const LIVE_CERTIFICATE_SQL = `c.status = 'issued' AND NOT EXISTS (
  SELECT 1 FROM revocations r WHERE r.certificate_id = c.id AND r.released_at IS NULL AND r.reason <> 'certificateHold')`;

/**
 * SQL condition (on `issuance_requests`) that its application is not a loss reissue whose replaced
 * card still holds a live certificate: the IA's claim skips such requests.
 */
export const REPLACED_CARD_REVOKED_SQL = `NOT EXISTS (
  SELECT 1 FROM applications ra JOIN certificates c ON c.card_label = ra.replaces_card_label
  WHERE ra.id = issuance_requests.application_id AND ra.kind = 'reissue' AND ${LIVE_CERTIFICATE_SQL})`;

/**
 * Guard (issue 13 §3): a card reported lost or stolen has every certificate revoked — not merely
 * held — before its replacement is requested, approved or issued. Other kinds pass.
 * @throws ConflictError naming the certificates still live.
 */
export async function assertReplacedCardRevoked(row: Row, trx: Knex.Transaction): Promise<void> {
  if (row.kind !== "reissue" || !row.replaces_card_label) return;
  const live = await trx("certificates as c").where("c.card_label", row.replaces_card_label).whereRaw(LIVE_CERTIFICATE_SQL).select("c.serial_hex");
  if (live.length) {
    throw new ConflictError(
      `the lost card ${row.replaces_card_label} still has ${live.length} certificate(s) not revoked (${live.map((c) => c.serial_hex).join(", ")}): revoke them (keyCompromise) before the new card is issued`,
      `紛失・盗難カード ${row.replaces_card_label} の証明書 ${live.length} 件が失効していません。新しいカードの発行前に失効（鍵の危殆化）させてください`,
    );
  }
}
