/**
 * The CA chain on the card (issue 13 §7; JAHIS HPKI IC card implementation guideline): besides
 * the subscriber's certificates the card carries the issuing CA certificate, labelled
 * "HPKI CA CERTIFICATE", and the root CA certificate, labelled "HPKI ROOT CA CERTIFICATE", as
 * public CKO_CERTIFICATE objects, so HPKI middleware builds the chain from the card alone. CKA_ID
 * is the CA's subject key identifier. A certificate already on the card (same DER) is not written again.
 */
import type { Knex } from "knex";
import type { CardSession } from "../hsm/cards.ts";
import { toBuffer } from "../store/rows.ts";

/** CKA_LABEL of an issuing CA certificate on the card (JAHIS guideline). */
export const CARD_CA_CERTIFICATE_LABEL = "HPKI CA CERTIFICATE";
/** CKA_LABEL of the root CA certificate on the card (JAHIS guideline). */
export const CARD_ROOT_CERTIFICATE_LABEL = "HPKI ROOT CA CERTIFICATE";

/**
 * Writes the certificate of CA `caName` and of each CA above it up to the root onto `card`,
 * unless already there. @returns the labels written now.
 */
export async function writeCaChainOnCard(db: Knex, card: CardSession, caName: string): Promise<string[]> {
  const onCard = await card.listCertificates();
  const written: string[] = [];
  let ca = await db("certificate_authorities").where({ name: caName }).first("id", "kind", "parent_id", "ski", "certificate");
  while (ca) {
    const der = toBuffer(ca.certificate);
    const label = ca.kind === "root" || ca.parent_id == null ? CARD_ROOT_CERTIFICATE_LABEL : CARD_CA_CERTIFICATE_LABEL;
    if (!onCard.some((c) => c.der.equals(der))) {
      await card.writeCertificate(toBuffer(ca.ski), der, label);
      written.push(label);
    }
    if (ca.parent_id == null) break;
    ca = await db("certificate_authorities").where({ id: ca.parent_id }).first("id", "kind", "parent_id", "ski", "certificate");
  }
  return written;
}
